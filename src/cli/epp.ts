/**
 * @module cli/epp
 * `llmisvc epp`: runs the Endpoint Picker with the upstream EPP's flag names. Static mode (`--endpoints`) for local
 * use; Kubernetes mode (`--pool-name`, `--pool-namespace`) inside a cluster.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { pino } from 'pino';
import { LlmisvcError } from '../errors/index.js';
import {
  DEFAULT_BODY_LIMIT,
  parseDurationMs,
  parseEndpointList,
  startEpp,
  type ModelDirectory,
} from '../epp/index.js';

interface EppFlags {
  grpcPort: string;
  grpcHealthPort: string;
  metricsPort: string;
  host: string;
  poolName?: string;
  poolNamespace: string;
  endpoints?: string;
  configFile?: string;
  configText?: string;
  refreshMetricsInterval: string;
  bodyLimit: string;
  maxConnections: string;
  maxConnectionsPerAddress: string;
  certPath?: string;
  secureServing?: string | boolean;
  kubeconfig?: string;
  objective: string[];
  logLevel: string;
  drainTimeout: string;
  transport: string;
  servedByHeader?: boolean;
}

function port(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new LlmisvcError('LLMISVC_ERR_CONFIG', `${flag} ${value}: not a port number`, {
      hint: 'Use 0–65535 (0 = any free port).',
    });
  }
  return n;
}

function wholeNumber(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new LlmisvcError('LLMISVC_ERR_CONFIG', `${flag} ${value}: expected a whole number of at least 1`);
  }
  return n;
}

/** Bytes from `16777216`, `16Mi`, `16MiB`, `512Ki`, `1Gi`. */
export function parseByteSize(value: string): number | undefined {
  const m = /^(\d+)\s*(Ki|Mi|Gi|K|M|G)?(?:B)?$/i.exec(value.trim());
  if (!m) return undefined;
  const unit = (m[2] ?? '').toLowerCase();
  const factor = unit.startsWith('k')
    ? 1024
    : unit.startsWith('m')
      ? 1024 ** 2
      : unit.startsWith('g')
        ? 1024 ** 3
        : 1;
  return Number(m[1]) * factor;
}

function parseBool(flag: string, value: string | boolean | undefined): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new LlmisvcError('LLMISVC_ERR_CONFIG', `${flag}=${value}: expected true or false`);
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function objectives(list: string[]): ModelDirectory {
  const priorities = new Map<string, number>();
  for (const item of list) {
    const m = /^([^=]+)=(-?\d+)$/.exec(item);
    if (!m)
      throw new LlmisvcError('LLMISVC_ERR_CONFIG', `--objective ${item}: expected name=priority`, {
        hint: 'Example: --objective batch=-1 (negative = sheddable).',
      });
    priorities.set(m[1]!, Number(m[2]));
  }
  return { models: new Map(), objectives: priorities };
}

export function register(program: Command): void {
  program
    .command('epp')
    .description('run the Endpoint Picker: an Envoy ext_proc server choosing a model server per request')
    .option('--grpc-port <port>', 'ext_proc gRPC port', '9002')
    .option('--grpc-health-port <port>', 'gRPC health port', '9003')
    .option('--metrics-port <port>', 'Prometheus metrics port', '9090')
    .option('--host <address>', 'address to listen on', '0.0.0.0')
    .option('--pool-name <name>', 'Kubernetes mode: the InferencePool to serve')
    .option('--pool-namespace <namespace>', 'namespace of the InferencePool', 'default')
    .option('--endpoints <list>', 'static mode: host:port[,role=prefill|decode],...')
    .option('--config-file <path>', 'EndpointPickerConfig YAML file')
    .option('--config-text <yaml>', 'EndpointPickerConfig YAML inline')
    .option('--refresh-metrics-interval <duration>', 'how often to scrape model-server metrics', '50ms')
    .option('--body-limit <bytes>', 'largest request body accepted (e.g. 16Mi)', String(DEFAULT_BODY_LIMIT))
    .option('--max-connections <n>', 'connections each gRPC server holds at once', '4096')
    .option(
      '--max-connections-per-address <n>',
      'of those, from one client address (raise to --max-connections behind a sidecar that hides addresses)',
      '256',
    )
    .option('--cert-path <dir>', 'serve TLS with tls.crt and tls.key from this folder')
    .option('--served-by-header', 'name the serving pod in an x-served-by response header')
    .option(
      '--secure-serving [bool]',
      'serve TLS (self-signed without --cert-path); default true with --pool-name, false with --endpoints',
    )
    .option('--kubeconfig <path>', 'kubeconfig for Kubernetes mode (default: in-cluster or ~/.kube/config)')
    .option(
      '--objective <name=priority>',
      'static mode: InferenceObjective priority for header x-gateway-inference-objective (repeatable)',
      collect,
      [],
    )
    .option('--log-level <level>', 'log level (debug shows every decision)', 'info')
    .option(
      '--drain-timeout <duration>',
      'on SIGTERM, how long open ext_proc streams may finish after GOAWAY (below the pod grace period); a second signal stops at once',
      '25s',
    )
    .option(
      '--transport <ours|node>',
      'HTTP/2 under the gRPC servers: ours, or node (node:http2; needs Node >= 22.10, refused on older Node)',
      'ours',
    )
    .action(async (flags: EppFlags) => {
      if (flags.configFile && flags.configText) {
        throw new LlmisvcError(
          'LLMISVC_ERR_CONFIG',
          '--config-file and --config-text are mutually exclusive',
        );
      }
      if (Boolean(flags.endpoints) === Boolean(flags.poolName)) {
        throw new LlmisvcError(
          'LLMISVC_ERR_CONFIG',
          'give exactly one of --endpoints (static mode) or --pool-name (Kubernetes mode)',
          {
            hint: 'Example: llmisvc epp --endpoints 127.0.0.1:8001,127.0.0.1:8002',
          },
        );
      }
      let configText = flags.configText;
      if (flags.configFile) {
        try {
          configText = readFileSync(flags.configFile, 'utf8');
        } catch (error) {
          throw new LlmisvcError(
            'LLMISVC_ERR_INPUT',
            `--config-file ${flags.configFile}: ${(error as Error).message}`,
          );
        }
      }
      const refresh = parseDurationMs(flags.refreshMetricsInterval);
      if (refresh === undefined || refresh <= 0) {
        throw new LlmisvcError(
          'LLMISVC_ERR_CONFIG',
          `--refresh-metrics-interval ${flags.refreshMetricsInterval}: expected a duration like 50ms`,
        );
      }
      const bodyLimit = parseByteSize(flags.bodyLimit);
      if (bodyLimit === undefined || bodyLimit <= 0) {
        throw new LlmisvcError(
          'LLMISVC_ERR_CONFIG',
          `--body-limit ${flags.bodyLimit}: expected bytes like 16777216 or 16Mi`,
        );
      }
      const maxConnections = wholeNumber('--max-connections', flags.maxConnections);
      const maxConnectionsPerAddress = wholeNumber(
        '--max-connections-per-address',
        flags.maxConnectionsPerAddress,
      );
      if (maxConnectionsPerAddress > maxConnections) {
        throw new LlmisvcError(
          'LLMISVC_ERR_CONFIG',
          `--max-connections-per-address ${maxConnectionsPerAddress} is above --max-connections ${maxConnections}`,
          { hint: 'Give at most --max-connections.' },
        );
      }
      const drainMs = parseDurationMs(flags.drainTimeout);
      if (drainMs === undefined || drainMs < 0) {
        throw new LlmisvcError(
          'LLMISVC_ERR_CONFIG',
          `--drain-timeout ${flags.drainTimeout}: expected a duration like 25s (0: stop at once)`,
        );
      }
      const secure =
        parseBool('--secure-serving', flags.secureServing) ??
        (flags.certPath !== undefined || flags.poolName !== undefined);
      if (flags.transport !== 'ours' && flags.transport !== 'node') {
        throw new LlmisvcError(
          'LLMISVC_ERR_CONFIG',
          `--transport ${flags.transport}: expected ours or node`,
          {
            hint: "ours (default) is the EPP's own HTTP/2; node is node:http2, for Node >= 22.10.",
          },
        );
      }
      const logger = pino({ level: flags.logLevel });
      const epp = await startEpp({
        grpcPort: port('--grpc-port', flags.grpcPort),
        grpcHealthPort: port('--grpc-health-port', flags.grpcHealthPort),
        metricsPort: port('--metrics-port', flags.metricsPort),
        host: flags.host,
        ...(flags.endpoints ? { endpoints: parseEndpointList(flags.endpoints) } : {}),
        ...(flags.poolName
          ? { pool: { name: flags.poolName, namespace: flags.poolNamespace, kubeconfig: flags.kubeconfig } }
          : {}),
        ...(configText !== undefined ? { configText } : {}),
        ...(flags.configFile ? { configSource: `--config-file ${flags.configFile}` } : {}),
        refreshMetricsIntervalMs: refresh,
        bodyLimitBytes: bodyLimit,
        connectionLimits: { maxConnections, maxConnectionsPerAddress },
        servedByHeader: flags.servedByHeader === true,
        tls: secure ? { certPath: flags.certPath } : undefined,
        directory: objectives(flags.objective),
        processMetrics: true,
        transport: flags.transport,
        logger,
      });
      await new Promise<void>((resolve) => {
        let stopping = false;
        // The first signal drains (requests already routed finish, new ones go to the other replicas); a second one
        // stops at once.
        const stop = () => {
          if (stopping) {
            logger.info('second signal: stopping at once');
            void epp.close().then(resolve);
            return;
          }
          stopping = true;
          logger.info({ drainMs }, 'shutting down: draining open ext_proc streams');
          void epp.drain(drainMs).then(() => resolve());
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
