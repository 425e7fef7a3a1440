/**
 * @module controller/run
 * Puts the controller together: Kubernetes client, probe + metrics server, webhook server with its certificate
 * keeper, leader election, and the reconcile loop. Everything is configured through `RunOptions` (flags enter in the
 * CLI); the returned handle stops it all gracefully.
 */
import { isIP } from 'node:net';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { KubeClientOptions } from '../kube/index.js';
import { LlmisvcError } from '../errors/index.js';
import { KubeClient, LeaderElector } from '../kube/index.js';
import { CertKeeper } from './cert-keeper.js';
import { serviceDnsNames } from '../certs/index.js';
import type { ServiceEngine } from './controller.js';
import { Controller, SERVICE_RESOURCE } from './controller.js';
import { configUsers } from './status.js';
import { startProbeServer } from './http-server.js';
import { missingNamespace, systemNamespaceAdvice } from './failures.js';
import { createMetrics } from './metrics.js';
import { ensureSystemNamespace } from './system-namespace.js';
import type { WebhookEngine } from './webhook.js';
import { startWebhookServer } from './webhook.js';

export interface WebhookRunOptions {
  port: number;
  host?: string;
  /** Use tls.crt/tls.key from this folder (cert-manager) instead of the self-managed certificate. */
  certDir?: string;
  /** The Service in front of the webhook; its DNS names go into the certificate. */
  serviceName: string;
  secretName: string;
  /** Extra IP SANs (for example 127.0.0.1 when the API server calls the webhook on loopback). */
  ipAddresses?: string[];
  webhookConfigurations: string[];
  crds: string[];
  /**
   * Where the API server reaches the webhooks when not through the Service (`https://127.0.0.1:9443`: a controller
   * run outside the cluster, as in development): the self-managed certificate names its host, and the webhook
   * configurations and CRD conversions are pointed at it.
   */
  url?: string;
}

export interface RunOptions {
  kube: KubeClientOptions;
  engine: ServiceEngine & WebhookEngine;
  logger: Logger;
  namespace?: string;
  /** Where the controller runs: presets, the lease and the webhook Secret live here. */
  systemNamespace: string;
  leaderElect: boolean;
  leaseName?: string;
  identity?: string;
  probePort?: number;
  probeHost?: string;
  webhook?: WebhookRunOptions;
  workers?: number;
  resyncMs?: number;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

export interface RunningController {
  client: KubeClient;
  controller: Controller;
  probePort: number;
  webhookPort: number | undefined;
  /** Resolves when the controller stopped (after `stop()` or lost leadership). */
  done: Promise<void>;
  stop(): Promise<void>;
}

/** Starts the controller; resolves once its servers listen (leadership and cache sync may come later). */
export async function runController(options: RunOptions): Promise<RunningController> {
  const log = options.logger;
  const identity = options.identity ?? `${hostname()}_${process.pid}`;
  const client = await KubeClient.create({ userAgent: `llmisvc-controller/${identity}`, ...options.kube });
  try {
    await checkSystemNamespace(client, options, log);
  } catch (error) {
    client.close();
    throw error;
  }
  // The queue-depth gauge reads the controller created just below.
  const metrics = createMetrics({ queueDepth: () => active.queue.length, defaults: true });
  const active: Controller = new Controller({
    client,
    engine: options.engine,
    logger: log,
    namespace: options.namespace,
    systemNamespace: options.systemNamespace,
    workers: options.workers,
    resyncMs: options.resyncMs,
    identity,
    metrics,
  });
  const abort = new AbortController();
  let standby = options.leaderElect;

  const probes = await startProbeServer({
    registry: metrics.registry,
    healthy: () => !abort.signal.aborted,
    // A standby replica is ready: it serves webhooks. The leader is ready once its caches synced.
    ready: () => standby || active.hasSynced,
    port: options.probePort ?? 0,
    host: options.probeHost,
  });

  let webhookPort: number | undefined;
  let webhookClose: (() => Promise<void>) | undefined;
  let certTimer: NodeJS.Timeout | undefined;
  try {
    if (options.webhook) {
      const w = options.webhook;
      const urlHost = w.url === undefined ? undefined : new URL(w.url).hostname.replace(/^\[(.*)\]$/, '$1');
      const loadCert = async (): Promise<{ cert: string; key: string; caBundle?: string }> => {
        if (w.certDir)
          return {
            cert: await readFile(join(w.certDir, 'tls.crt'), 'utf8'),
            key: await readFile(join(w.certDir, 'tls.key'), 'utf8'),
          };
        return keeper!.ensure();
      };
      const keeper = w.certDir
        ? undefined
        : new CertKeeper({
            client,
            namespace: options.systemNamespace,
            secretName: w.secretName,
            dnsNames: [
              ...serviceDnsNames(w.serviceName, options.systemNamespace),
              ...(urlHost && !isIP(urlHost) ? [urlHost] : []),
            ],
            ipAddresses: [...(w.ipAddresses ?? []), ...(urlHost && isIP(urlHost) ? [urlHost] : [])],
            webhookConfigurations: w.webhookConfigurations,
            crds: w.crds,
            url: w.url,
            logger: log,
          });
      const first = await loadCert().catch((error: unknown) => {
        // Reached when the controller may not read namespaces (so it could not check at start).
        if (missingNamespace(error) !== options.systemNamespace) throw error;
        throw new LlmisvcError(
          'LLMISVC_ERR_CONFIG',
          `the system namespace "${options.systemNamespace}" does not exist; the webhook certificate Secret must live there`,
          { hint: systemNamespaceAdvice(options.systemNamespace), cause: error },
        );
      });
      if (keeper && first.caBundle) await keeper.inject(first.caBundle);
      const server = await startWebhookServer({
        engine: options.engine,
        configUsers: async (config) => {
          // A system config may serve services in any watched namespace; any other only its own namespace's.
          const scope = config.namespace === options.systemNamespace ? options.namespace : config.namespace;
          const services = await client.list(SERVICE_RESOURCE, scope);
          return configUsers(config, services.items, options.systemNamespace);
        },
        cert: first.cert,
        key: first.key,
        port: w.port,
        host: w.host,
        logger: log,
      });
      webhookPort = server.port;
      webhookClose = server.close;
      let current = first.cert;
      // Re-check hourly: rotate before expiry, pick up a certificate another replica or cert-manager rotated.
      certTimer = setInterval(() => {
        loadCert()
          .then(async (next) => {
            if (keeper && next.caBundle) await keeper.inject(next.caBundle);
            if (next.cert !== current) {
              server.setCertificate(next.cert, next.key);
              current = next.cert;
              log.info('webhook serving certificate reloaded');
            }
          })
          .catch((error: Error) => log.error({ err: error.message }, 'webhook certificate check failed'));
      }, 3600_000);
      certTimer.unref();
    }
  } catch (error) {
    // Nothing may keep running after a failed start: the caller gets the error and exits.
    await probes.close();
    client.close();
    throw error;
  }

  const lead = async (signal: AbortSignal): Promise<void> => {
    standby = false;
    metrics.leader.set(1);
    await active.start();
    await new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
    metrics.leader.set(0);
    await active.stop();
  };

  const done = (async () => {
    try {
      if (options.leaderElect) {
        const elector = new LeaderElector(client, {
          namespace: options.systemNamespace,
          name: options.leaseName ?? 'llmisvc-controller',
          identity,
          leaseDurationMs: options.leaseDurationMs,
          renewDeadlineMs: options.renewDeadlineMs,
          retryPeriodMs: options.retryPeriodMs,
          logger: log,
        });
        log.info({ identity }, 'waiting for leadership');
        await elector.run(abort.signal, lead);
        // Leadership ended without a stop request: exit non-zero so the replica restarts and campaigns afresh
        // (as controller-runtime does) instead of idling as a former leader.
        if (!abort.signal.aborted)
          throw new LlmisvcError('LLMISVC_ERR_KUBE', 'lost the leader-election lease; exiting', {
            hint: 'the API server was unreachable for longer than --leader-elect-renew-deadline',
          });
      } else {
        const leadership = new AbortController();
        abort.signal.addEventListener('abort', () => leadership.abort(), { once: true });
        await lead(leadership.signal);
      }
    } catch (error) {
      log.error({ err: (error as Error).message }, 'controller stopped with an error');
      throw error;
    } finally {
      abort.abort();
      if (certTimer) clearInterval(certTimer);
      await webhookClose?.();
      await probes.close();
      client.close();
    }
  })();
  done.catch(() => undefined);

  return {
    client,
    controller: active,
    probePort: probes.port,
    webhookPort,
    done,
    async stop() {
      abort.abort();
      await done.catch(() => undefined);
    },
  };
}

/**
 * Makes sure the system namespace is there before anything is written into it (see system-namespace.ts). Without it
 * and without the right to create it, the self-managed webhook certificate and the leader-election Lease cannot
 * work: stop at once, saying what to do. Reconciling alone can: services that need the namespace (for the default
 * Gateway) report it in their status.
 */
async function checkSystemNamespace(client: KubeClient, options: RunOptions, log: Logger): Promise<void> {
  const namespace = options.systemNamespace;
  const state = await ensureSystemNamespace(client, namespace, log);
  if (state !== 'missing') return;
  const needs = [
    ...(options.webhook && !options.webhook.certDir ? ['the webhook certificate Secret'] : []),
    ...(options.leaderElect ? ['the leader-election Lease'] : []),
  ];
  if (needs.length)
    throw new LlmisvcError(
      'LLMISVC_ERR_CONFIG',
      `the system namespace "${namespace}" does not exist and this identity may not create it; ${needs.join(' and ')} must live there`,
      { hint: systemNamespaceAdvice(namespace) },
    );
  log.warn(
    { namespace },
    `the system namespace "${namespace}" does not exist and this identity may not create it: services that use the default Gateway report it in their status; ${systemNamespaceAdvice(namespace)}`,
  );
}
