/**
 * @module test/controller-support
 * Shared pieces of the controller integration tests: a client for the shared test API server, namespaces per test,
 * installing this project's CRDs and presets, starting a controller in-process, and polling helpers.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { parseAllDocuments } from 'yaml';
import type { RunningController } from '../src/controller/index.js';
import { CONFIG_RESOURCE, defaultEngine, runController } from '../src/controller/index.js';
import type { KubeObject, ResourceRef } from '../src/kube/index.js';
import { CORE_RESOURCES, Discovery, isNotFound, KubeApiError, KubeClient } from '../src/kube/index.js';
import { waitFor as waitUntil } from '../src/process/index.js';
import { DEFAULT_RENDER_OPTIONS, type RenderOptions } from '../src/render/index.js';

export const root = fileURLToPath(new URL('../..', import.meta.url));

/** The shared API server's kubeconfig; undefined outside `npm test` (the tests then skip). */
export const kubeconfig = process.env['LLMISVC_TEST_KUBECONFIG'];
export const skip = kubeconfig ? false : 'needs LLMISVC_TEST_KUBECONFIG (run through npm test)';

export function readYaml(path: string): KubeObject[] {
  return parseAllDocuments(readFileSync(path, 'utf8'))
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => Boolean(o));
}

export async function client(): Promise<KubeClient> {
  return KubeClient.create({ kubeconfig: kubeconfig!, qps: 1000, burst: 1000 });
}

export async function resourceOf(
  c: KubeClient,
  object: { apiVersion: string; kind: string },
): Promise<ResourceRef> {
  const ref = await new Discovery(c).resourceFor(object.apiVersion, object.kind);
  if (!ref) throw new Error(`${object.apiVersion} ${object.kind} is not served`);
  return ref;
}

/** Server-side applies objects as the test (field manager `test`), like `kubectl apply --server-side`. */
export async function apply(c: KubeClient, objects: KubeObject[], namespace?: string): Promise<KubeObject[]> {
  const out: KubeObject[] = [];
  for (const o of objects) {
    const ref = await resourceOf(c, o);
    const object = ref.namespaced && namespace ? { ...o, metadata: { ...o.metadata, namespace } } : o;
    out.push(await c.apply(ref, object, { fieldManager: 'test', force: true }));
  }
  return out;
}

export async function createNamespace(c: KubeClient, prefix: string): Promise<string> {
  const name = `${prefix}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  await c.create(CORE_RESOURCES.namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  return name;
}

export async function ensureNamespace(c: KubeClient, name: string): Promise<void> {
  try {
    await c.create(CORE_RESOURCES.namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  } catch (error) {
    if (!(error instanceof KubeApiError && error.status === 409)) throw error;
  }
}

/** Installs deploy/crds and the presets into `systemNamespace`. */
export async function installProject(
  c: KubeClient,
  systemNamespace: string,
  _kubeconfig?: string,
): Promise<void> {
  const crdDir = join(root, 'deploy/crds');
  for (const file of readdirSync(crdDir).filter((f) => f.startsWith('serving.kserve.io_')))
    await apply(c, readYaml(join(crdDir, file)));
  await waitFor(
    'project CRDs served',
    async () =>
      (await new Discovery(c).resourceFor('serving.kserve.io/v1alpha2', 'LLMInferenceService')) !== undefined,
  );
  await ensureNamespace(c, systemNamespace);
  const presetDir = join(root, 'deploy/presets');
  for (const file of readdirSync(presetDir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml'))
    await apply(c, readYaml(join(presetDir, file)), systemNamespace);
  void CONFIG_RESOURCE;
}

/** Polls `check` until it returns a value (or throws the last error after `timeoutMs`). */
export function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 60_000,
): Promise<T> {
  return waitUntil(check, { what, timeoutMs, intervalMs: 100 });
}

export async function getOrUndefined<T extends KubeObject>(
  c: KubeClient,
  ref: ResourceRef,
  namespace: string | undefined,
  name: string,
): Promise<T | undefined> {
  try {
    return await c.get<T>(ref, namespace, name);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

export function renderOptions(systemNamespace: string): RenderOptions {
  return {
    ...DEFAULT_RENDER_OPTIONS,
    systemNamespace,
    gateway: { ...DEFAULT_RENDER_OPTIONS.gateway, namespace: systemNamespace },
  };
}

/** A controller in this process, watching one namespace, without webhooks or leader election unless asked. */
export async function startController(options: {
  namespace?: string;
  systemNamespace: string;
  webhook?: Parameters<typeof runController>[0]['webhook'];
  leaderElect?: boolean;
  identity?: string;
  kubeconfig?: string;
  impersonate?: { user: string; groups?: string[] };
  workers?: number;
  /** Client-side API rate limit; tests default to effectively none. */
  qps?: number;
}): Promise<RunningController> {
  const running = await runController({
    kube: {
      kubeconfig: options.kubeconfig ?? kubeconfig!,
      qps: 1000,
      burst: 1000,
      impersonate: options.impersonate,
    },
    engine: defaultEngine(renderOptions(options.systemNamespace)),
    logger: pino({ level: process.env['LLMISVC_TEST_LOG'] ?? 'silent' }),
    namespace: options.namespace,
    systemNamespace: options.systemNamespace,
    leaderElect: options.leaderElect ?? false,
    identity: options.identity,
    webhook: options.webhook,
    probeHost: '127.0.0.1',
    workers: options.workers ?? 4,
    resyncMs: 0,
  });
  return running;
}

export const SERVICE = {
  group: 'serving.kserve.io',
  version: 'v1alpha2',
  kind: 'LLMInferenceService',
  plural: 'llminferenceservices',
  namespaced: true,
} satisfies ResourceRef;
