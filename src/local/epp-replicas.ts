/**
 * @module local/epp-replicas
 * Active-active Endpoint Picker replicas for `llmisvc up --epp-replicas N` (N > 1): N `llmisvc epp` processes under
 * the stack's supervisor, each in static mode over the same model servers, each scraping them and keeping its own
 * prefix index — nothing shared, as N pods of the scheduler Deployment. Separate processes rather than N servers
 * in one: a replica can then be killed (SIGKILL) or drained (SIGTERM) on its own, which is what the kill test and
 * `npm run chaos` do, and the supervisor restarts it as a Deployment would.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freeLoopbackPort } from '../process/index.js';
import { LlmisvcError } from '../errors/index.js';
import { withKvEventsEndpoint } from './kv-events-relay.js';
import type { Supervisor } from './supervisor.js';

/** One EPP replica process of the local stack. */
export interface LocalEppReplica {
  /** Supervisor name (`epp-0` …): its pid is `stack.pids()[name]`. */
  name: string;
  /** ext_proc address, `127.0.0.1:port`. */
  address: string;
  grpcPort: number;
  healthPort: number;
  metricsPort: number;
  /** The replica's own KV-events socket (`tcp://127.0.0.1:port`), with `kvEvents`; the relay connects to it. */
  eventsEndpoint: string | undefined;
}

const CLI_ENTRY = fileURLToPath(new URL('../../../bin/llmisvc.js', import.meta.url));

/**
 * How long a replica the stack stops (SIGTERM) may drain: below the supervisor's 3 s grace before SIGKILL. The gateway
 * is closed first, so no stream is open by then anyway.
 */
const LOCAL_DRAIN_TIMEOUT = '2500ms';

/** The number of endpoints with fresh metrics in an EPP's Prometheus text (`llm_d_epp_ready_endpoints`). */
export function readyEndpointsOf(metricsText: string): number | undefined {
  const m = /^llm_d_epp_ready_endpoints(?:\{[^}]*\})? (\d+)/m.exec(metricsText);
  return m ? Number(m[1]) : undefined;
}

async function scrapedAll(metricsPort: number, endpoints: number): Promise<boolean> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(1000) });
  const text = await res.text();
  return res.ok && readyEndpointsOf(text) === endpoints;
}

/**
 * Starts `count` replicas side by side and resolves once every one holds fresh metrics of all `endpointCount`
 * model servers (the same condition as the in-process EPP's start: a gateway opened earlier would route past them).
 */
export async function startEppReplicas(options: {
  supervisor: Supervisor;
  count: number;
  /** `--endpoints` of `llmisvc epp`, read at every start of a replica (a restarted model server may move). */
  endpoints: () => string;
  endpointCount: number;
  configText: string;
  /**
   * Each replica binds its own KV-events socket (the config's `kvEventsConfig.zmqEndpoint`, given a port per
   * replica), for kv-events-relay.ts to reach; refused when no precise-prefix-cache-producer binds one.
   */
  kvEvents?: boolean;
  logDir: string;
  onReady?: (replica: LocalEppReplica, ms: number) => void;
}): Promise<LocalEppReplica[]> {
  const configPath = join(options.logDir, 'epp-config.yaml');
  writeFileSync(configPath, options.configText);
  const configPathOf = (r: LocalEppReplica): string => {
    if (r.eventsEndpoint === undefined) return configPath;
    const text = withKvEventsEndpoint(options.configText, r.eventsEndpoint);
    if (text === undefined)
      throw new LlmisvcError(
        'LLMISVC_ERR_CONFIG',
        '--model-server-cmd uses {kv-events-endpoint}, but no precise-prefix-cache-producer binds a socket',
        {
          hint: 'Give the EndpointPickerConfig a precise-prefix-cache-producer with kvEventsConfig.zmqEndpoint, e.g. tcp://127.0.0.1:0 (--epp-config).',
        },
      );
    const path = join(options.logDir, `epp-config-${r.name}.yaml`);
    writeFileSync(path, text);
    return path;
  };
  const taken: number[] = [];
  const replicas: LocalEppReplica[] = [];
  for (let i = 0; i < options.count; i++) {
    const port = async () => {
      const p = await freeLoopbackPort(undefined, taken);
      taken.push(p);
      return p;
    };
    const grpcPort = await port();
    replicas.push({
      name: `epp-${i}`,
      address: `127.0.0.1:${grpcPort}`,
      grpcPort,
      healthPort: await port(),
      metricsPort: await port(),
      eventsEndpoint: options.kvEvents ? `tcp://127.0.0.1:${await port()}` : undefined,
    });
  }
  const configPaths = replicas.map(configPathOf);
  await Promise.all(
    replicas.map(async (r, i) => {
      const started = performance.now();
      await options.supervisor.start({
        name: r.name,
        command: process.execPath,
        args: () => [
          CLI_ENTRY,
          'epp',
          '--endpoints',
          options.endpoints(),
          '--host',
          '127.0.0.1',
          '--grpc-port',
          String(r.grpcPort),
          '--grpc-health-port',
          String(r.healthPort),
          '--metrics-port',
          String(r.metricsPort),
          '--config-file',
          configPaths[i]!,
          '--drain-timeout',
          LOCAL_DRAIN_TIMEOUT,
          '--log-level',
          'warn',
        ],
        logPath: join(options.logDir, `${r.name}.log`),
        probe: () => scrapedAll(r.metricsPort, options.endpointCount),
        readyTimeoutMs: 30_000,
      });
      options.onReady?.(r, Math.round(performance.now() - started));
    }),
  );
  return replicas;
}
