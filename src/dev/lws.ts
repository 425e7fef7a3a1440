/**
 * @module dev/lws
 * The LeaderWorkerSet controller of `llmisvc dev cluster` as a process: upstream's manager (`sigs.k8s.io/lws/cmd`)
 * with its webhooks served on loopback under a certificate made here and trusted by the API server through the
 * webhook configurations' caBundle, authenticating as its own user bound to upstream's manager role. Its
 * StatefulSets then go through the real StatefulSet controller, and their pods through the scheduler to KWOK nodes.
 */
import { writeFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent } from 'undici';
import { issueBundle } from '../certs/index.js';
import { LWS_WEBHOOK_CONFIGURATIONS } from '../deps/index.js';
import { LlmisvcError } from '../errors/index.js';
import { statusMessage, type KubeClient } from '../kube/index.js';
import type { DevApiServer } from './apiserver.js';
import type { LwsAssets } from './cluster-assets.js';
import { renderDevKubeconfig } from './kubeconfig.js';
import { lwsConfiguration, lwsRbac, lwsWebhookConfigurations } from './lws-config.js';
import { DEV_FIELD_MANAGER } from './manifests.js';
import { startOnFreePorts, startProcess, type ManagedProcess } from '../process/index.js';

export interface RunningLws {
  process: ManagedProcess;
  /** Removes the webhook configurations (so the API server stops calling a server that is going away), then stops. */
  stop(): Promise<void>;
}

/**
 * Starts the LWS manager and resolves once its webhooks answer and are registered with the API server.
 * `waitReady(process, url, agent)` is the cluster's health wait, so failures read like the other parts'.
 */
export async function startLeaderWorkerSet(input: {
  dir: string;
  apiServer: DevApiServer;
  assets: LwsAssets;
  client: KubeClient;
  log: (message: string) => void;
  waitReady: (
    process: ManagedProcess,
    url: string,
    dispatcher: Agent,
    accept?: (status: number) => boolean,
  ) => Promise<void>;
}): Promise<RunningLws> {
  const { dir, apiServer, assets, client, log } = input;
  const home = join(dir, 'lws');
  const certDir = join(home, 'certs');
  await mkdir(certDir, { recursive: true, mode: 0o700 });
  // A new CA and certificate on every start: they live as long as this run, like its port.
  const bundle = issueBundle({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], days: 30, caDays: 30 });
  await writeFile(join(certDir, 'tls.crt'), bundle.cert);
  await writeFile(join(certDir, 'tls.key'), bundle.key, { mode: 0o600 });

  const configPath = join(home, 'config.yaml');
  const kubeconfig = join(apiServer.pki.dir, 'lws-controller-manager.kubeconfig');
  await writeFile(
    kubeconfig,
    renderDevKubeconfig({
      server: apiServer.server,
      caPem: apiServer.caPem,
      token: apiServer.pki.componentTokens.leaderWorkerSet,
    }),
    { mode: 0o600 },
  );

  const read = (file: string) => readFile(join(assets.configDir, file), 'utf8');
  for (const object of lwsRbac(await read('config/rbac/role.yaml'))) await apply(client, object);

  // Its ports go in its config file up front: on a lost port race it starts again on others (process/ports.ts).
  const insecure = new Agent({ connect: { rejectUnauthorized: false } });
  const trusting = new Agent({ connect: { ca: bundle.caCert } });
  let lws: ManagedProcess;
  let webhookPort: number;
  try {
    const started = await startOnFreePorts(
      2,
      ([webhook, health]) => {
        writeFileSync(configPath, lwsConfiguration({ webhookPort: webhook!, healthPort: health!, certDir }));
        const p = startProcess({
          name: 'lws-controller-manager',
          command: assets.manager,
          args: [`--config=${configPath}`, `--kubeconfig=${kubeconfig}`],
          logPath: join(dir, 'logs', 'lws-controller-manager.log'),
          env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
          cwd: home,
        });
        log(`started the LeaderWorkerSet controller (pid ${p.pid})`);
        return p;
      },
      async (p, [webhook, health]) => {
        await input.waitReady(p, `http://127.0.0.1:${health}/readyz`, insecure);
        // The webhook server starts beside the controllers and serves only its webhook paths: any HTTP answer over a
        // TLS connection the CA verifies shows it is up with the right certificate.
        await input.waitReady(p, `https://127.0.0.1:${webhook}/`, trusting, (status) => status > 0);
      },
    );
    lws = started.process;
    webhookPort = started.ports[0]!;
  } finally {
    await Promise.all([insecure.close(), trusting.close()]);
  }
  try {
    const webhooks = lwsWebhookConfigurations({
      manifests: await read('config/webhook/manifests.yaml'),
      mutatingPatch: await read('config/webhook/mutating-patch.yaml'),
      validatingPatch: await read('config/webhook/validating-patch.yaml'),
      baseUrl: `https://127.0.0.1:${webhookPort}`,
      caPem: bundle.caCert,
    });
    for (const object of webhooks) await apply(client, object as unknown as Record<string, unknown>);
  } catch (error) {
    await lws.stop();
    throw error;
  }
  log('the LeaderWorkerSet controller and its webhooks are ready');
  return {
    process: lws,
    async stop() {
      await removeLwsWebhooks(client).catch(() => {});
      await lws.stop();
    },
  };
}

/** Deletes the LWS webhook configurations (a run without LWS must not send LeaderWorkerSets to a dead server). */
export async function removeLwsWebhooks(client: KubeClient): Promise<void> {
  for (const { kind, name } of LWS_WEBHOOK_CONFIGURATIONS) {
    const response = await client.send('DELETE', `/apis/admissionregistration.k8s.io/v1/${kind}/${name}`);
    if (response.status >= 300 && response.status !== 404) {
      throw new LlmisvcError(
        'LLMISVC_ERR_KUBE',
        `deleting ${kind}/${name} failed: HTTP ${response.status}: ${statusMessage(response)}`,
      );
    }
  }
}

async function apply(client: KubeClient, object: Record<string, unknown>): Promise<void> {
  const kind = String(object['kind']);
  const name = (object['metadata'] as { name: string }).name;
  const paths: Record<string, string> = {
    ClusterRole: '/apis/rbac.authorization.k8s.io/v1/clusterroles',
    ClusterRoleBinding: '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
    MutatingWebhookConfiguration: '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations',
    ValidatingWebhookConfiguration: '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations',
  };
  const base = paths[kind];
  if (!base) throw new LlmisvcError('LLMISVC_ERR_CONFIG', `no API path known for ${kind}`);
  const response = await client.send(
    'PATCH',
    `${base}/${name}?fieldManager=${DEV_FIELD_MANAGER}&force=true`,
    object,
    'application/apply-patch+yaml',
  );
  if (response.status >= 300) {
    throw new LlmisvcError(
      'LLMISVC_ERR_KUBE',
      `applying ${kind} ${name} failed: HTTP ${response.status}: ${statusMessage(response)}`,
    );
  }
}
