/**
 * @module test/controller-support
 * Shared pieces of the controller integration tests: a client for the shared test API server, namespaces per test,
 * installing this project's CRDs and presets, starting a controller in-process, and polling helpers.
 */
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { RunningController } from '../src/controller/index.js';
import { defaultEngine, runController } from '../src/controller/index.js';
import type { KubeObject, ResourceRef } from '../src/kube/index.js';
import { isNotFound, KubeClient } from '../src/kube/index.js';
import {
  applyObjects,
  createNamespace,
  ensureNamespace,
  installProject,
  readYaml,
  renderOptionsFor,
  resourceOf,
} from '../src/dev/index.js';
import { waitFor as waitUntil } from '../src/process/index.js';

// The project-install helpers live in dev/ (the chaos benchmark uses them too); the tests import them from here.
export { createNamespace, ensureNamespace, installProject, readYaml, resourceOf };

export const root = fileURLToPath(new URL('../..', import.meta.url));

/** apps/v1 Deployments: the workload the controller writes for a single-node service. */
export const DEPLOYMENT: ResourceRef = {
  group: 'apps',
  version: 'v1',
  kind: 'Deployment',
  plural: 'deployments',
  namespaced: true,
};

/** The shared API server's kubeconfig; undefined outside `npm test` (the tests then skip). */
export const kubeconfig = process.env['LLMISVC_TEST_KUBECONFIG'];
export const skip = kubeconfig ? false : 'needs LLMISVC_TEST_KUBECONFIG (run through npm test)';

export async function client(): Promise<KubeClient> {
  return KubeClient.create({ kubeconfig: kubeconfig!, qps: 1000, burst: 1000 });
}

/** Server-side applies objects as the test, like `kubectl apply --server-side`. */
export const apply = applyObjects;

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

export const renderOptions = renderOptionsFor;

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

/** A port free right now on loopback (for the webhook server the API server calls back). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** The shipped webhook configuration (deploy/controller/webhook.yaml), calling `port` on loopback, for `namespaces`. */
export function shippedWebhooks(name: string, port: number, namespaces: readonly string[]): KubeObject {
  const [shipped] = readYaml(join(root, 'deploy/controller/webhook.yaml'));
  const webhooks = (shipped!['webhooks'] as Record<string, unknown>[]).map((w) => {
    const { service } = w['clientConfig'] as { service: { path: string } };
    return {
      ...w,
      clientConfig: { url: `https://127.0.0.1:${port}${service.path}` },
      namespaceSelector: {
        matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [...namespaces] }],
      },
    };
  });
  return { ...shipped!, metadata: { name }, webhooks };
}

/** The controller's webhook options for a server on loopback `port`, its certificate valid for 127.0.0.1. */
export function loopbackWebhook(
  port: number,
  webhookConfigurations: string[],
  crds: string[] = [],
): NonNullable<Parameters<typeof runController>[0]['webhook']> {
  return {
    port,
    host: '127.0.0.1',
    serviceName: 'llmisvc-webhook',
    secretName: 'llmisvc-webhook-cert',
    ipAddresses: ['127.0.0.1'],
    webhookConfigurations,
    crds,
  };
}
