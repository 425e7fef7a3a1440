/**
 * @module dev/project
 * Installing this project into a development API server the way `kubectl apply -k deploy/` would, minus the
 * controller's Deployment: the CRDs from deploy/crds and the presets from deploy/presets into the system namespace,
 * server-side applied. Shared by the integration tests and the chaos benchmark, which run the controller themselves.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import {
  CORE_RESOURCES,
  Discovery,
  KubeApiError,
  type KubeClient,
  type KubeObject,
  type ResourceRef,
} from '../kube/index.js';
import { waitFor } from '../process/index.js';
import { DEFAULT_RENDER_OPTIONS, type RenderOptions } from '../render/index.js';
import { repoRoot } from './paths.js';

/** Every object of a YAML file (empty documents skipped). */
export function readYaml(path: string): KubeObject[] {
  return parseAllDocuments(readFileSync(path, 'utf8'))
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => Boolean(o));
}

/** The resource an object's apiVersion and kind are served as; throws when the cluster does not serve it. */
export async function resourceOf(
  c: KubeClient,
  object: { apiVersion: string; kind: string },
): Promise<ResourceRef> {
  const ref = await new Discovery(c).resourceFor(object.apiVersion, object.kind);
  if (!ref) throw new Error(`${object.apiVersion} ${object.kind} is not served`);
  return ref;
}

/** Server-side applies objects (field manager `test`, forced), like `kubectl apply --server-side`. */
export async function applyObjects(
  c: KubeClient,
  objects: KubeObject[],
  namespace?: string,
): Promise<KubeObject[]> {
  const out: KubeObject[] = [];
  for (const o of objects) {
    const ref = await resourceOf(c, o);
    const object = ref.namespaced && namespace ? { ...o, metadata: { ...o.metadata, namespace } } : o;
    out.push(await c.apply(ref, object, { fieldManager: 'test', force: true }));
  }
  return out;
}

/** A new namespace named `<prefix>-<random>`. */
export async function createNamespace(c: KubeClient, prefix: string): Promise<string> {
  const name = `${prefix}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  await c.create(CORE_RESOURCES.namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  return name;
}

/** Creates the namespace unless it exists. */
export async function ensureNamespace(c: KubeClient, name: string): Promise<void> {
  try {
    await c.create(CORE_RESOURCES.namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  } catch (error) {
    if (!(error instanceof KubeApiError && error.status === 409)) throw error;
  }
}

/** Installs deploy/crds and, once they are served, the presets into `systemNamespace`. */
export async function installProject(c: KubeClient, systemNamespace: string): Promise<void> {
  const root = repoRoot();
  const crdDir = join(root, 'deploy/crds');
  for (const file of readdirSync(crdDir).filter((f) => f.startsWith('serving.kserve.io_')))
    await applyObjects(c, readYaml(join(crdDir, file)));
  await waitFor(
    async () =>
      (await new Discovery(c).resourceFor('serving.kserve.io/v1alpha2', 'LLMInferenceService')) !== undefined,
    { what: 'project CRDs served', timeoutMs: 60_000, intervalMs: 100 },
  );
  await ensureNamespace(c, systemNamespace);
  const presetDir = join(root, 'deploy/presets');
  for (const file of readdirSync(presetDir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml'))
    await applyObjects(c, readYaml(join(presetDir, file)), systemNamespace);
}

/** Render options for a controller whose system namespace (and default Gateway's) is `systemNamespace`. */
export function renderOptionsFor(systemNamespace: string): RenderOptions {
  return {
    ...DEFAULT_RENDER_OPTIONS,
    systemNamespace,
    gateway: { ...DEFAULT_RENDER_OPTIONS.gateway, namespace: systemNamespace },
  };
}
