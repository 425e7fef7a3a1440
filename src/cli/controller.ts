/**
 * @module cli/controller
 * `llmisvc controller`: run the LLMInferenceService controller (in a cluster, or against a kubeconfig).
 */
import { hostname } from 'node:os';
import type { Command } from 'commander';
import { Option } from 'commander';
import { LlmisvcError } from '../errors/index.js';
import { DEFAULT_RENDER_OPTIONS } from '../render/index.js';
import { AUTOSCALING_FLAGS, type AutoscalingFlags, autoscalingOptions } from './autoscaling-flags.js';

interface ControllerFlags extends AutoscalingFlags {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  systemNamespace: string;
  leaderElect: boolean;
  leaseName: string;
  leaderElectLeaseDuration: string;
  leaderElectRenewDeadline: string;
  leaderElectRetryPeriod: string;
  probePort: string;
  webhook: boolean;
  webhookPort: string;
  webhookHost?: string;
  webhookCertDir?: string;
  webhookService: string;
  webhookSecret: string;
  webhookConfiguration: string;
  webhookIp: string[];
  webhookUrl?: string;
  workers: string;
  resync: string;
  gatewayName?: string;
  gatewayNamespace?: string;
  gatewayClass?: string;
  schedulerImage?: string;
  kubeApiQps: string;
  kubeApiBurst: string;
  logLevel: string;
}

function int(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new LlmisvcError('LLMISVC_ERR_CONFIG', `${flag} must be a whole number, not "${value}"`);
  return n;
}

/**
 * `--webhook-url`: an https URL of a host and port, nothing else (each webhook adds its own path). It points the
 * webhook configurations at the certificate this controller keeps, so it is refused where that would be ignored:
 * with `--no-webhook` (nothing served) and with `--webhook-cert-dir` (cert-manager's certificate, whose CA its
 * injector writes into the Service-based configurations).
 */
function webhookUrl(value: string, flags: { webhook: boolean; webhookCertDir?: string }): string {
  for (const [given, other] of [
    [!flags.webhook, '--no-webhook'],
    [flags.webhookCertDir !== undefined, '--webhook-cert-dir'],
  ] as const) {
    if (given)
      throw new LlmisvcError('LLMISVC_ERR_CONFIG', `--webhook-url cannot be used with ${other}`, {
        hint:
          other === '--no-webhook'
            ? 'Drop --webhook-url: with --no-webhook nothing serves the webhooks.'
            : '--webhook-url makes the controller keep its own certificate and point the webhook configurations at it; with cert-manager the API server reaches the webhooks through the Service. Drop one of the two.',
      });
  }
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || url.protocol !== 'https:' || url.pathname !== '/' || url.search || url.hash || url.username) {
    throw new LlmisvcError(
      'LLMISVC_ERR_CONFIG',
      `--webhook-url must be https://HOST:PORT (the API server calls the webhooks there), not "${value}"`,
      {
        hint: 'For a controller on this machine: --webhook-url https://127.0.0.1:9443 --webhook-host 127.0.0.1',
      },
    );
  }
  return url.origin;
}

/** "30s", "10m", "1h" or plain milliseconds. */
function duration(value: string, flag: string): number {
  const match = /^(\d+)(ms|s|m|h)?$/.exec(value.trim());
  if (!match)
    throw new LlmisvcError(
      'LLMISVC_ERR_CONFIG',
      `${flag} must be a duration like 30s or 10m, not "${value}"`,
    );
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3600_000 }[match[2] ?? 'ms']!;
  return Number(match[1]) * unit;
}

export function register(program: Command): void {
  program
    .command('controller')
    .description(
      'run the LLMInferenceService controller: reconcile services into workloads, routes and pools, report status, serve the validating and conversion webhooks',
    )
    .option(
      '--kubeconfig <file>',
      'kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, then in-cluster)',
    )
    .option('--context <name>', 'kubeconfig context')
    .option('--namespace <ns>', 'watch only this namespace (default: all namespaces)')
    .addOption(
      new Option(
        '--system-namespace <ns>',
        'where presets, the leader lease and the webhook certificate live',
      )
        .env('POD_NAMESPACE')
        .default(DEFAULT_RENDER_OPTIONS.systemNamespace),
    )
    .option('--leader-elect', 'elect a leader among replicas with a coordination.k8s.io Lease', false)
    .option('--lease-name <name>', 'name of the leader-election Lease', 'llmisvc-controller')
    .option(
      '--leader-elect-lease-duration <duration>',
      'how long standbys wait before taking over an unrenewed lease',
      '15s',
    )
    .option(
      '--leader-elect-renew-deadline <duration>',
      'how long the leader retries renewing before giving up',
      '10s',
    )
    .option('--leader-elect-retry-period <duration>', 'how often candidates try to acquire or renew', '2s')
    .option('--probe-port <port>', 'port for /metrics, /healthz and /readyz', '8080')
    .option('--no-webhook', 'do not serve the validating and conversion webhooks')
    .option('--webhook-port <port>', 'HTTPS port of the webhooks', '9443')
    .option('--webhook-host <host>', 'address the webhook server binds (default: all)')
    .option(
      '--webhook-cert-dir <dir>',
      'use tls.crt/tls.key from this folder (cert-manager) instead of a self-managed cert',
    )
    .option(
      '--webhook-service <name>',
      'the Service in front of the webhooks (certificate names)',
      'llmisvc-webhook',
    )
    .option(
      '--webhook-secret <name>',
      'Secret holding the self-managed webhook certificate',
      'llmisvc-webhook-cert',
    )
    .option(
      '--webhook-configuration <name>',
      'ValidatingWebhookConfiguration to inject the CA into',
      'llmisvc-validating-webhook',
    )
    .option(
      '--webhook-ip <ip>',
      'extra IP address for the webhook certificate (repeatable)',
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option(
      '--webhook-url <url>',
      'for a controller outside the cluster (development): the API server calls the webhooks at https://HOST:PORT instead of through the Service, and the webhook configurations and CRD conversions are pointed there',
    )
    .option('--workers <n>', 'services reconciled in parallel', '4')
    .option('--resync <duration>', 'reconcile every service at least this often', '10m')
    .option('--gateway-name <name>', 'the default Gateway', DEFAULT_RENDER_OPTIONS.gateway.name)
    .option('--gateway-namespace <ns>', 'namespace of the default Gateway (default: the system namespace)')
    .option(
      '--gateway-class <class>',
      'GatewayClass of the default Gateway',
      DEFAULT_RENDER_OPTIONS.gateway.className,
    )
    .option(
      '--scheduler-image <image>',
      'image that runs `llmisvc epp`',
      DEFAULT_RENDER_OPTIONS.schedulerImage,
    )
    .option('--kube-api-qps <n>', 'client-side limit on API requests per second', '100')
    .option('--kube-api-burst <n>', 'burst above --kube-api-qps', '200')
    .option('--log-level <level>', 'trace, debug, info, warn or error', 'info')
    .addOption(AUTOSCALING_FLAGS[0])
    .addOption(AUTOSCALING_FLAGS[1])
    .addOption(AUTOSCALING_FLAGS[2])
    .action(async (flags: ControllerFlags) => {
      const url = flags.webhookUrl === undefined ? undefined : webhookUrl(flags.webhookUrl, flags);
      // Loaded here, not at the top: `llmisvc --help` should not pay for the Kubernetes client.
      const { pino } = await import('pino');
      const { defaultEngine, runController } = await import('../controller/index.js');
      const logger = pino({ level: flags.logLevel, base: { component: 'llmisvc-controller' } });
      const engine = defaultEngine({
        ...DEFAULT_RENDER_OPTIONS,
        systemNamespace: flags.systemNamespace,
        gateway: {
          ...DEFAULT_RENDER_OPTIONS.gateway,
          name: flags.gatewayName ?? DEFAULT_RENDER_OPTIONS.gateway.name,
          namespace: flags.gatewayNamespace ?? flags.systemNamespace,
          className: flags.gatewayClass ?? DEFAULT_RENDER_OPTIONS.gateway.className,
        },
        schedulerImage: flags.schedulerImage ?? DEFAULT_RENDER_OPTIONS.schedulerImage,
        autoscaling: autoscalingOptions(flags),
      });
      const running = await runController({
        kube: {
          kubeconfig: flags.kubeconfig,
          context: flags.context,
          qps: int(flags.kubeApiQps, '--kube-api-qps'),
          burst: int(flags.kubeApiBurst, '--kube-api-burst'),
        },
        engine,
        logger,
        namespace: flags.namespace,
        systemNamespace: flags.systemNamespace,
        leaderElect: flags.leaderElect,
        leaseName: flags.leaseName,
        leaseDurationMs: duration(flags.leaderElectLeaseDuration, '--leader-elect-lease-duration'),
        renewDeadlineMs: duration(flags.leaderElectRenewDeadline, '--leader-elect-renew-deadline'),
        retryPeriodMs: duration(flags.leaderElectRetryPeriod, '--leader-elect-retry-period'),
        identity: process.env['POD_NAME'] ?? `${hostname()}_${process.pid}`,
        probePort: int(flags.probePort, '--probe-port'),
        workers: int(flags.workers, '--workers'),
        resyncMs: duration(flags.resync, '--resync'),
        ...(flags.webhook
          ? {
              webhook: {
                port: int(flags.webhookPort, '--webhook-port'),
                host: flags.webhookHost,
                certDir: flags.webhookCertDir,
                serviceName: flags.webhookService,
                secretName: flags.webhookSecret,
                ipAddresses: flags.webhookIp,
                ...(url !== undefined ? { url } : {}),
                webhookConfigurations: [flags.webhookConfiguration],
                crds: [
                  'llminferenceservices.serving.kserve.io',
                  'llminferenceserviceconfigs.serving.kserve.io',
                ],
              },
            }
          : {}),
      });
      logger.info({ probePort: running.probePort, webhookPort: running.webhookPort }, 'listening');
      const stop = (): void => void running.stop();
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      await running.done;
    });
}
