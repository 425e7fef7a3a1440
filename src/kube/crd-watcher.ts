/**
 * @module kube/crd-watcher
 * Watches CustomResourceDefinitions so that an API installed (or removed) after start is noticed: every change
 * invalidates discovery and tells the controller, which then re-checks dependencies and starts watching kinds that
 * just became available. Only established CRDs count as served.
 */
import type { Logger } from 'pino';
import type { KubeClient } from './client.js';
import type { Discovery } from './discovery.js';
import { Informer } from './informer.js';
import type { KubeObject } from './resources.js';
import { CORE_RESOURCES } from './resources.js';

interface Crd extends KubeObject {
  spec?: { group?: string; names?: { kind?: string }; versions?: { name: string; served?: boolean }[] };
  status?: { conditions?: { type: string; status: string }[] };
}

/** What the controller needs to know about a CRD change. */
export interface CrdChange {
  group: string;
  kind: string;
  /** Served versions when established; [] when removed or not established yet. */
  servedVersions: string[];
}

export function crdState(crd: Crd): CrdChange {
  const established =
    crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false;
  return {
    group: crd.spec?.group ?? '',
    kind: crd.spec?.names?.kind ?? '',
    servedVersions: established
      ? (crd.spec?.versions ?? []).filter((v) => v.served !== false).map((v) => v.name)
      : [],
  };
}

/** Starts a CRD informer; `onChange` runs after discovery was invalidated. */
export function watchCrds(
  client: KubeClient,
  discovery: Discovery,
  onChange: (change: CrdChange) => void,
  logger?: Logger,
): Informer<Crd> {
  const informer = new Informer<Crd>(client, CORE_RESOURCES.crd, { logger });
  const fire = (crd: Crd, removed = false): void => {
    discovery.invalidate();
    const change = removed ? { ...crdState(crd), servedVersions: [] } : crdState(crd);
    onChange(change);
  };
  informer.addHandlers({
    add: (crd) => {
      if (informer.hasSynced) fire(crd);
    },
    update: (crd, old) => {
      if (JSON.stringify(crdState(crd)) !== JSON.stringify(crdState(old))) fire(crd);
    },
    delete: (crd) => fire(crd, true),
  });
  informer.start();
  return informer;
}
