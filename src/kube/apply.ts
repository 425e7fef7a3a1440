/**
 * @module kube/apply
 * Server-side apply that writes only when something changed. An object is (re)applied when
 *  - it does not exist,
 *  - the hash of the desired object differs from the one recorded on the live object (the desired object changed,
 *    including fields that were removed — a subset comparison cannot see removals), or
 *  - the live object no longer contains the desired fields (someone edited a field we own: drift).
 * Fields other managers own (HPA-managed `replicas`, defaulted fields, webhook-injected sidecars) are not in the
 * desired object and are left alone. The comparison tolerates the API server's normalisation of quantities
 * ("1000m" is "1") and numbers sent as strings.
 */
import { createHash } from 'node:crypto';
import { parseQuantity } from '../api/index.js';
import type { KubeClient } from './client.js';
import type { KubeObject, ResourceRef } from './resources.js';

/** The annotation that records which desired object a child was last applied from. */
export const DESIRED_HASH_ANNOTATION = 'serving.kserve.io/desired-hash';
export const FIELD_MANAGER = 'llmisvc';

/** Stable hash of an object (keys sorted), ignoring the hash annotation itself. */
export function desiredHash(object: KubeObject): string {
  const annotations = { ...(object.metadata.annotations ?? {}) };
  delete annotations[DESIRED_HASH_ANNOTATION];
  const copy = { ...object, metadata: { ...object.metadata, annotations } };
  return createHash('sha256').update(stableJson(copy)).digest('hex').slice(0, 16);
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Returns the desired object with its hash annotation set. */
export function withDesiredHash<T extends KubeObject>(object: T): T {
  const hash = desiredHash(object);
  return {
    ...object,
    metadata: {
      ...object.metadata,
      annotations: { ...(object.metadata.annotations ?? {}), [DESIRED_HASH_ANNOTATION]: hash },
    },
  };
}

function scalarEqual(desired: unknown, live: unknown): boolean {
  if (desired === live) return true;
  if (
    (typeof desired === 'string' || typeof desired === 'number') &&
    (typeof live === 'string' || typeof live === 'number')
  ) {
    const a = parseQuantity(desired);
    const b = parseQuantity(live);
    return a !== undefined && b !== undefined && Math.abs(a - b) <= Math.abs(a) * 1e-12;
  }
  return false;
}

/**
 * True when every field set in `desired` has the same value in `live` (objects recursively, lists element by
 * element with equal length). Paths reported in `diffs` explain a mismatch.
 */
export function containsDesired(desired: unknown, live: unknown, path = '', diffs: string[] = []): boolean {
  if (desired === null || desired === undefined) return true;
  if (Array.isArray(desired)) {
    if (!Array.isArray(live) || live.length !== desired.length) {
      diffs.push(
        `${path}: list length ${Array.isArray(live) ? live.length : 'missing'} != ${desired.length}`,
      );
      return false;
    }
    let ok = true;
    desired.forEach((item, i) => {
      if (!containsDesired(item, live[i], `${path}[${i}]`, diffs)) ok = false;
    });
    return ok;
  }
  if (typeof desired === 'object') {
    if (!live || typeof live !== 'object' || Array.isArray(live)) {
      diffs.push(`${path}: missing`);
      return false;
    }
    let ok = true;
    for (const [key, value] of Object.entries(desired as Record<string, unknown>)) {
      if (
        !containsDesired(value, (live as Record<string, unknown>)[key], path ? `${path}.${key}` : key, diffs)
      )
        ok = false;
    }
    return ok;
  }
  if (!scalarEqual(desired, live)) {
    diffs.push(`${path}: ${JSON.stringify(live)} != ${JSON.stringify(desired)}`);
    return false;
  }
  return true;
}

/** Why `desired` must be applied over `live`, or undefined when the live object already matches. */
export function applyReason(desired: KubeObject, live: KubeObject | undefined): string | undefined {
  if (!live) return 'missing';
  const hash = desired.metadata.annotations?.[DESIRED_HASH_ANNOTATION] ?? desiredHash(desired);
  if (live.metadata.annotations?.[DESIRED_HASH_ANNOTATION] !== hash) return 'changed';
  const diffs: string[] = [];
  const { status: _status, ...spec } = desired;
  const { name: _n, namespace: _ns, ...meta } = desired.metadata;
  if (!containsDesired({ ...spec, metadata: meta }, live, '', diffs))
    return `drifted (${diffs.slice(0, 3).join('; ')})`;
  return undefined;
}

/**
 * Applies objects with SSA when `applyReason` says so. It remembers, per object, the resourceVersion its last
 * apply produced: if the API server normalises a value in a way the comparison does not understand, the object is
 * not re-applied until someone else changes it — the memo only ever saves a write, it never changes an outcome.
 */
export class Applier {
  private readonly memo = new Map<string, { hash: string; resourceVersion: string }>();

  constructor(private readonly client: KubeClient) {}

  /** Applies `desired` if needed; returns the reason it was applied, or undefined when nothing was written. */
  async ensure(
    ref: ResourceRef,
    desired: KubeObject,
    live: KubeObject | undefined,
    options: { force: boolean; cacheAuthoritative?: boolean },
  ): Promise<{ reason: string | undefined; object: KubeObject | undefined }> {
    const object = withDesiredHash(desired);
    const hash = object.metadata.annotations![DESIRED_HASH_ANNOTATION]!;
    const key = `${ref.group}/${ref.kind}/${object.metadata.namespace ?? ''}/${object.metadata.name}`;
    const memo = this.memo.get(key);
    // Trusting a cache that has not caught up with our own create yet: the object is in flight, not missing. The
    // owner forgets the memo when a delete event arrives, so a really deleted object is re-created.
    if (!live && options.cacheAuthoritative && memo?.hash === hash)
      return { reason: undefined, object: undefined };
    let reason = applyReason(object, live);
    if (
      reason &&
      live &&
      reason.startsWith('drifted') &&
      memo?.hash === hash &&
      memo.resourceVersion === live.metadata.resourceVersion
    )
      reason = undefined;
    if (!reason) return { reason: undefined, object: live };
    const applied = await this.client.apply<KubeObject>(ref, object, {
      fieldManager: FIELD_MANAGER,
      force: options.force,
    });
    if (applied.metadata.resourceVersion)
      this.memo.set(key, { hash, resourceVersion: applied.metadata.resourceVersion });
    return { reason, object: applied };
  }

  forget(ref: ResourceRef, namespace: string | undefined, name: string): void {
    this.memo.delete(`${ref.group}/${ref.kind}/${namespace ?? ''}/${name}`);
  }
}
