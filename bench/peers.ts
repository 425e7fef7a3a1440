/**
 * @module bench/peers
 * `npm run bench:peers [-- --quick] [--only=<name>,…] [--rates=<req/s>,…] [--cpu-prof=<dir>] [--envoy-hop]`: llmisvc's Endpoint Picker against peer routers, side by side, each on a fresh
 * fleet of llm-d-inference-sim processes (an independent vLLM simulator with a real prefix KV cache) under identical
 * seeded shared-prefix traffic. Peers: vllm-router (round_robin, cache_aware, power_of_two), sglang-router
 * (cache_aware), and the Gateway API Inference Extension's own Endpoint Picker behind the Envoy of GIE's standalone
 * chart (src/bench/gie-epp.ts). Ours: `llmisvc up` itself with `--model-server-cmd` running the same simulators, once with the builtin
 * gateway and once with Envoy, so the EPP runs exactly as users run it (its rendered default config, its metrics
 * scraping). Everything it needs is provisioned once per machine into the llmisvc cache (bench/peers-provision).
 *
 * Measures per router and rate: TTFT/ITL/E2E percentiles on the client, output tokens/s, the fleet's prefix-cache hit
 * ratio (the simulators' vllm:prefix_cache_hits/queries), CPU per request of the router's processes (from
 * /proc/<pid>/stat; the simulators excluded), and the idle added TTFT (sequential single requests through the router,
 * interleaved with the same request direct to one simulator). Writes bench/out/peers/report.md and report.json (raw;
 * curated summary in bench/results/peers/README.md).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import {
  createWorkload,
  machineDescription,
  progressDisplay,
  runLoad,
  summarize,
  type LoadResult,
} from '../src/bench/index.js';
import { applyObjects, ensureNamespace, startDevApiServer } from '../src/dev/index.js';
import { GIE_DEFAULT_PLUGINS, gieEppObjects, gieStandaloneEnvoy } from '../src/bench/gie-epp.js';
import { CORE_RESOURCES, KubeClient } from '../src/kube/index.js';
import {
  GIE_EPP_VERSION,
  GIE_STANDALONE_VALUES,
  INFERENCE_SIM_VERSION,
  SGLANG_ROUTER_VERSION,
  VLLM_ROUTER_VERSION,
  provisionNullExtProcGo,
  provisionPeers,
  type PeerParts,
  type Provisioned,
} from '../src/bench/peers-provision.js';
import {
  envoyHopTables,
  withExtProcAt,
  withListenPort,
  withoutExtProc,
  type HopRow,
} from '../src/bench/envoy-hop.js';
import { defaultCacheDir, ensureEnvoy, startEnvoyWithBootstrap } from '../src/gateway/index.js';
import {
  cpuSecondsFromStat,
  parsePrefixCacheCounters,
  peersIdleTable,
  peersLoadTable,
  targetChecks,
  tokenPacing,
  tokenPacingTable,
  type IdleRow,
  type PeerRow,
  type PrefixCacheCounters,
} from '../src/bench/peers-report.js';
import {
  freeLoopbackPort,
  freeLoopbackPorts,
  killOnExit,
  waitFor as waitUntil,
} from '../src/process/index.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { rawOutputDir } from './output.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const out = rawOutputDir('peers');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
/** `--cpu-prof=<dir>`: `llmisvc up` runs with `node --cpu-prof` and writes its profile there when it stops. */
const cpuProfDir = args.find((a) => a.startsWith('--cpu-prof='))?.slice('--cpu-prof='.length);
const only = args
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',');
/**
 * `--epp-replicas=2,3`: our EPP also as that many active-active replicas (each its own process with its own
 * scraping and prefix index) behind the builtin gateway, to measure what splitting the traffic between independent
 * approximate indexes does to the fleet's prefix-cache hit ratio; with `--cache-pressure`, precise routing too (every
 * replica indexes every server's KV events).
 */
const eppReplicaCounts = (
  args
    .find((a) => a.startsWith('--epp-replicas='))
    ?.slice('--epp-replicas='.length)
    .split(',') ?? []
).map((n) => {
  const count = Number(n);
  if (!Number.isInteger(count) || count < 2 || count > 16)
    throw new Error(`--epp-replicas=${n}: expected whole numbers 2–16, comma-separated`);
  return count;
});

/**
 * `--cache-pressure`: the fleet's KV caches hold about a quarter of the prefixes in play, so the simulators evict all
 * the time; adds our EPP with precise prefix-cache routing (llm-d-router's precise-prefix-cache-producer on the
 * simulators' real KV events) beside the approximate index, and skips the idle-latency and Envoy runs.
 */
const cachePressure = args.includes('--cache-pressure');

/**
 * `--envoy-hop`: instead of the comparison, where the idle latency and the CPU of `llmisvc up --gateway envoy` go
 * (src/bench/envoy-hop.ts). Beside up's own Envoy one more is started in turn with the bootstrap up wrote: with no
 * ext_proc filter, pointing at a do-nothing ext_proc server in Go (grpc-go) and in Node (our transport), and as
 * written (our EPP); then up's own Envoy. Each path gets the idle probes and ENVOY_HOP_LOAD_MS of the traffic at the
 * top rate, over ENVOY_HOP_ROUNDS alternating rounds so that the machine's drift falls on every path alike.
 */
const envoyHop = args.includes('--envoy-hop');
const ENVOY_HOP_ROUNDS = quick ? 1 : 3;
const ENVOY_HOP_LOAD_MS = quick ? 6_000 : 20_000;

const MODEL = 'Qwen/Qwen2.5-0.5B-Instruct';
const REPLICAS = 8;
/** `--rates=32`: only these request rates (to iterate on one row; the committed run uses the defaults). */
const ratesArg = args.find((a) => a.startsWith('--rates='))?.slice('--rates='.length);
const RATES = ratesArg
  ? ratesArg.split(',').map((r) => {
      const rate = Number(r);
      if (!Number.isFinite(rate) || rate <= 0 || rate > 1000)
        throw new Error(`--rates=${r}: expected request rates in (0, 1000], comma-separated`);
      return rate;
    })
  : cachePressure
    ? [32]
    : quick
      ? [8]
      : [8, 32];
/** The highest rate: the warm CPU figure, the token pacing and the targets are taken there. */
const TOP_RATE = Math.max(...RATES);
const DURATION_MS = quick ? 6_000 : 30_000;
const IDLE_SAMPLES = quick ? 20 : 200;
/** Routed probes before the idle samples: at least two per simulator, 100 in a full run (see idleAddedLatency). */
const IDLE_WARMUP = quick ? 2 * REPLICAS : 100;
const SEED = 16;
const IDLE_CPU_MS = quick ? 2_000 : 5_000;
/**
 * After the measured load at the highest rate, every router serves this much more of the same traffic (new prompts)
 * and its CPU per request over that stretch is the warm figure. Each router starts fresh for each rate, so the measured
 * window also holds a JIT runtime's start-up: on `llmisvc up`, V8's helper threads compiled the request path for the
 * first minute of load (14 ms/s at first, under 1 ms/s after 60 s; 127 optimizing compiles in 20 s), a one-off cost
 * that a router serving for hours does not pay per request. The Rust routers have no such phase. Both figures are
 * reported; the warm one is what a running router costs.
 */
const WARM_CPU_MS = quick || cachePressure ? 0 : 30_000;
/**
 * 16 groups × 1024-token system prompts need 1024 blocks of 16: more than one simulator's 512, so placement matters.
 * Under cache pressure: 192 groups × 256-token prompts are 3072 prefix blocks against a fleet of 8 × 128 blocks,
 * of which the running requests (4 per simulator, ~20 blocks each) take a good part: about a quarter fits.
 */
const WORKLOAD_PARAMS = cachePressure
  ? { groups: '192', promptsPerGroup: '32', systemPromptLen: '256', questionLen: '32', outputLen: '32' }
  : { groups: '16', promptsPerGroup: '32', systemPromptLen: '1024', questionLen: '64', outputLen: '32' };
const KV_BLOCKS = cachePressure ? 128 : 512;
const SIM_FLAGS = [
  '--force-dummy-tokenizer',
  '--enable-kvcache',
  `--kv-cache-size ${KV_BLOCKS}`,
  '--block-size 16',
  '--max-model-len 8192',
  '--prefill-overhead 10ms',
  '--prefill-time-per-token 1ms',
  '--inter-token-latency 10ms',
  '--max-num-seqs 4',
];
const NO_EVENTS = "--zmq-endpoint ''";

/**
 * llm-d-router's precise pipeline, as its sample configs spell it (token-producer on the servers' render endpoints,
 * precise-prefix-cache-producer, prefix-cache-scorer reading it), with the default config's load scorers and weights.
 * The EPP binds the events socket; the simulators connect to it (`{kv-events-endpoint}`).
 */
const PRECISE_EPP_CONFIG = `apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: token-producer
  parameters:
    modelName: ${MODEL}
    vllm:
      endpointDiscovery: {}
- type: precise-prefix-cache-producer
  parameters:
    tokenProcessorConfig:
      blockSize: 16
    kvEventsConfig:
      zmqEndpoint: tcp://127.0.0.1:0
    speculativeIndexing: true
- type: prefix-cache-scorer
  parameters:
    prefixMatchInfoProducerName: precise-prefix-cache-producer
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: prefix-cache-scorer
    weight: 3
  - pluginRef: max-score-picker
`;

interface Running {
  url: string;
  /** host:port of each simulator. */
  sims: string[];
  /** The processes whose CPU is the router's (descendants included, simulators excluded). */
  rootPids: number[];
  stop(): Promise<void>;
}

interface RouterSetup {
  name: string;
  /** Which provisioned part it needs besides the simulator, for the "could not run" note. */
  needs: keyof PeerParts | undefined;
  start(parts: Ready, logDir: string): Promise<Running>;
}

interface Ready {
  sim: string;
  vllmRouter?: string;
  sglangRouter?: string;
  gieEpp?: string;
}

function startProcess(
  command: string,
  argv: readonly string[],
  logPath: string,
  env: NodeJS.ProcessEnv = process.env,
): ChildProcess {
  const log = createWriteStream(logPath);
  const child = spawn(command, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  killOnExit(child);
  return child;
}

async function stopProcess(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Polls `check` every 200 ms until it holds (a throw counts as not yet); fails after `timeoutMs` naming `what`. */
async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  await waitUntil(check, { what, timeoutMs, intervalMs: 200 });
}

async function completionOk(base: string): Promise<boolean> {
  const response = await request(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, prompt: 'ready?', max_tokens: 1 }),
    headersTimeout: 5000,
    bodyTimeout: 5000,
  });
  await response.body.text();
  return response.statusCode === 200;
}

/** A fleet of simulators of our own, for the peer routers. */
async function startFleet(sim: string, logDir: string): Promise<{ sims: string[]; stop(): Promise<void> }> {
  const ports = await freeLoopbackPorts(REPLICAS);
  const children = ports.map((port, i) =>
    startProcess('/bin/sh', ['-c', `exec ${simCommand(sim, String(port))}`], join(logDir, `sim-${i}.log`)),
  );
  const sims = ports.map((p) => `127.0.0.1:${p}`);
  await Promise.all(
    sims.map((address) =>
      waitFor(`simulator ${address}`, async () => {
        const r = await request(`http://${address}/health`);
        await r.body.text();
        return r.statusCode === 200;
      }),
    ),
  );
  return { sims, stop: async () => void (await Promise.all(children.map((c) => stopProcess(c)))) };
}

function simCommand(sim: string, port: string): string {
  return `env POD_IP=127.0.0.1 ${sim} --port ${port} --model ${MODEL} ${SIM_FLAGS.join(' ')} ${NO_EVENTS}`;
}

/** A simulator publishing its KV events to the EPP; its topic names it `127.0.0.1:<port>`, its pool address. */
function simWithEventsCommand(sim: string): string {
  return (
    `env POD_IP=127.0.0.1:{port} ${sim} --port {port} --model ${MODEL} ${SIM_FLAGS.join(' ')} ` +
    '--zmq-endpoint {kv-events-endpoint} --event-batch-size 16'
  );
}

function peerRouter(
  name: string,
  binary: (ready: Ready) => string | undefined,
  needs: keyof PeerParts,
  argv: (workers: string[], port: number, metricsPort: number) => string[],
): RouterSetup {
  return {
    name,
    needs,
    async start(ready, logDir) {
      const fleet = await startFleet(ready.sim, logDir);
      const port = await freeLoopbackPort();
      const metricsPort = await freeLoopbackPort(undefined, [port]);
      const command = binary(ready)!;
      const child = startProcess(
        command,
        argv(
          fleet.sims.map((s) => `http://${s}`),
          port,
          metricsPort,
        ),
        join(logDir, 'router.log'),
      );
      const url = `http://127.0.0.1:${port}`;
      try {
        await waitFor(name, async () => {
          if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
          return completionOk(url);
        });
      } catch (error) {
        await stopProcess(child);
        await fleet.stop();
        throw new Error(`${(error as Error).message}; log: ${tail(join(logDir, 'router.log'))}`);
      }
      return {
        url,
        sims: fleet.sims,
        rootPids: [child.pid!],
        stop: async () => {
          await stopProcess(child);
          await fleet.stop();
        },
      };
    },
  };
}

function vllmRouter(policy: string): RouterSetup {
  return peerRouter(
    `vllm-router ${policy}`,
    (r) => r.vllmRouter,
    'vllmRouter',
    (workers, port, metricsPort) => [
      '--worker-urls',
      ...workers,
      '--policy',
      policy,
      '--log-level',
      'warning',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--prometheus-port',
      String(metricsPort),
    ],
  );
}

const sglangRouter = peerRouter(
  'sglang-router cache_aware',
  (r) => r.sglangRouter,
  'sglangRouter',
  (workers, port, metricsPort) => [
    'launch',
    '--worker-urls',
    ...workers,
    '--policy',
    'cache_aware',
    '--log-level',
    'warn',
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--prometheus-port',
    String(metricsPort),
  ],
);

/**
 * `llmisvc up` with the simulators as custom model servers: the EPP and the gateway as users run them; `precise`
 * routes on the simulators' KV events (PRECISE_EPP_CONFIG through `--epp-config`); `eppReplicas` > 1 runs that many
 * active-active EPP processes.
 */
function llmisvcUp(gateway: 'builtin' | 'envoy', { precise = false, eppReplicas = 1 } = {}): RouterSetup {
  return {
    name: `llmisvc EPP${precise ? ' precise' : ''}${eppReplicas > 1 ? ` ×${eppReplicas}` : ''} + ${gateway === 'builtin' ? 'builtin gateway' : 'Envoy'}`,
    needs: undefined,
    async start(ready, logDir) {
      const file = join(logDir, 'service.yaml');
      await writeFile(
        file,
        [
          'apiVersion: serving.kserve.io/v1alpha2',
          'kind: LLMInferenceService',
          'metadata: { name: peers, namespace: default }',
          'spec:',
          `  model: { uri: "hf://${MODEL}", name: "${MODEL}" }`,
          `  replicas: ${REPLICAS}`,
          '  router: { route: {}, gateway: {}, scheduler: {} }',
          '',
        ].join('\n'),
      );
      if (precise) await writeFile(join(logDir, 'epp-config.yaml'), PRECISE_EPP_CONFIG);
      const port = await freeLoopbackPort();
      const child = startProcess(
        process.execPath,
        [
          ...(cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : []),
          join(root, 'bin/llmisvc.js'),
          'up',
          '-f',
          file,
          '--port',
          String(port),
          '--gateway',
          gateway,
          '--model-server-cmd',
          precise ? simWithEventsCommand(ready.sim) : simCommand(ready.sim, '{port}'),
          ...(precise ? ['--epp-config', join(logDir, 'epp-config.yaml')] : []),
          '--epp-replicas',
          String(eppReplicas),
        ],
        join(logDir, 'up.log'),
      );
      let stdout = '';
      child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      try {
        await waitFor(
          'llmisvc up',
          () => {
            if (child.exitCode !== null) throw new Error(`llmisvc up exited with ${child.exitCode}`);
            return stdout.includes('Ctrl-C stops everything.');
          },
          180_000,
        );
      } catch (error) {
        await stopProcess(child);
        throw new Error(`${(error as Error).message}; log: ${tail(join(logDir, 'up.log'))}`);
      }
      const url = /curl -s (\S+)\/v1\/chat\/completions/.exec(stdout)?.[1];
      const sims = [...stdout.matchAll(/^\s+\S+\s+(127\.0\.0\.1:\d+)\s+\S+\s*$/gm)].map((m) => m[1]!);
      if (!url || sims.length !== REPLICAS) throw new Error(`cannot read the stack from:\n${stdout}`);
      await waitFor('llmisvc gateway', () => completionOk(url));
      return { url, sims, rootPids: [child.pid!], stop: () => stopProcess(child, 20_000) };
    },
  };
}

/**
 * GIE's own Endpoint Picker behind the Envoy of GIE's standalone chart, with the chart's default plugins
 * (src/bench/gie-epp.ts). A real API server (the test suite's, cached per machine) holds its InferencePool and the
 * Pod whose ports are the simulators. Its CPU is the EPP's and Envoy's: the API server, which `up` does without, is
 * not counted.
 */
const gieEppBehindEnvoy: RouterSetup = {
  name: `GIE EPP ${GIE_EPP_VERSION} + Envoy`,
  needs: 'gieEpp',
  async start(ready, logDir) {
    const binary = ready.gieEpp!;
    const stops: (() => Promise<void>)[] = [];
    const stopAll = async (): Promise<void> => {
      for (const stop of stops.splice(0).reverse()) await stop();
    };
    try {
      const fleet = await startFleet(ready.sim, logDir);
      stops.push(fleet.stop);
      const apiServer = await startDevApiServer({
        dir: join(logDir, 'apiserver'),
        crds: ['inference-extension'],
      });
      stops.push(() => apiServer.stop());
      const client = await KubeClient.create({ kubeconfig: apiServer.kubeconfigPath });
      stops.push(() => Promise.resolve(client.close()));
      const namespace = 'peers';
      await ensureNamespace(client, namespace);
      const [grpcPort, healthPort, metricsPort] = await freeLoopbackPorts(3);
      const ports = fleet.sims.map((s) => Number(s.slice(s.lastIndexOf(':') + 1)));
      const { pool, pod, podStatus } = gieEppObjects('peers', namespace, ports, grpcPort!);
      await applyObjects(client, [pool, pod], namespace);
      await client.mergePatch(CORE_RESOURCES.pod, namespace, pod.metadata.name, podStatus, 'status');
      const configFile = join(logDir, 'gie-plugins.yaml');
      await writeFile(configFile, GIE_DEFAULT_PLUGINS);
      // The flags of GIE's charts (epplib's Deployment) for a vLLM pool, on ports of our choosing.
      const epp = startProcess(
        binary,
        [
          '--pool-name',
          'peers',
          '--pool-namespace',
          namespace,
          '--pool-group',
          'inference.networking.k8s.io',
          '--grpc-port',
          String(grpcPort),
          '--grpc-health-port',
          String(healthPort),
          '--metrics-port',
          String(metricsPort),
          '--zap-encoder',
          'json',
          '--config-file',
          configFile,
          '--tracing=false',
          '--metrics-endpoint-auth=false',
          // The verbosity GIE's inferencepool chart runs it at; the default (2) logs three lines per request.
          '--v',
          '1',
        ],
        join(logDir, 'epp.log'),
        { ...process.env, KUBECONFIG: apiServer.kubeconfigPath },
      );
      stops.push(() => stopProcess(epp));
      const envoyBinary = await ensureEnvoy({
        cacheDir: defaultCacheDir(process.env),
        searchPath: process.env['PATH'],
      });
      const values = await readFile(join(dirname(binary), GIE_STANDALONE_VALUES), 'utf8');
      // Two workers, as GIE's sidecar gets from --cpuset-threads on this machine and as `up` runs its Envoy.
      const envoy = await startEnvoyWithBootstrap(envoyBinary, gieStandaloneEnvoy(values, grpcPort!), 2);
      stops.push(() => envoy.close());
      const url = `http://127.0.0.1:${envoy.port}`;
      await waitFor(
        'GIE EPP through Envoy',
        () => {
          if (epp.exitCode !== null) throw new Error(`GIE's EPP exited with ${epp.exitCode}`);
          return completionOk(url);
        },
        120_000,
      );
      return { url, sims: fleet.sims, rootPids: [epp.pid!, envoy.pid], stop: stopAll };
    } catch (error) {
      await stopAll();
      throw new Error(`${(error as Error).message}; log: ${tail(join(logDir, 'epp.log'))}`);
    }
  },
};

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').slice(-8).join('\n');
  } catch {
    return '(no log)';
  }
}

/** The Envoy `llmisvc up` started: its binary and the bootstrap it runs, read from its process. */
function upEnvoy(upPid: number): { pid: number; binary: string; bootstrap: Record<string, unknown> } {
  for (const { pid, parent, command } of processTable()) {
    if (parent !== upPid || command !== 'envoy') continue;
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      const config = argv[argv.indexOf('-c') + 1]!;
      return {
        pid,
        binary: readlinkSync(`/proc/${pid}/exe`),
        bootstrap: JSON.parse(readFileSync(config, 'utf8')) as Record<string, unknown>,
      };
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`llmisvc up (pid ${upPid}) runs no Envoy`);
}

/** CPU seconds of one process (all its threads). */
function processCpuSeconds(pid: number): number {
  return cpuSecondsFromStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
}

/** Starts a do-nothing ext_proc server (bench/null-ext-proc*) for `sims`; resolves with its process and port. */
async function startNullExtProc(
  command: string,
  argv: readonly string[],
  logPath: string,
): Promise<{ child: ChildProcess; port: number }> {
  const child = startProcess(command, argv, logPath);
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  await waitFor(`${command} to print its port`, () => {
    if (child.exitCode !== null)
      throw new Error(`${command} exited with ${child.exitCode}: ${tail(logPath)}`);
    return /^\d+\n/.test(stdout);
  });
  return { child, port: Number(stdout.split('\n')[0]) };
}

/** `--envoy-hop`: the rows of src/bench/envoy-hop.ts's report, measured on one `llmisvc up --gateway envoy`. */
async function measureEnvoyHop(
  ready: Ready,
  logRoot: string,
  log: (m: string) => void,
  notRun: string[],
): Promise<HopRow[]> {
  // Without Go (or the module proxy) the Go twin is left out and said so; the other paths still run.
  const goServer = await provisionNullExtProcGo(
    { env: process.env, log },
    join(root, 'bench/null-ext-proc-go/main.go'),
  ).catch((error: unknown) => {
    notRun.push(`the do-nothing ext_proc server in Go: ${(error as Error).message.split('\n')[0]}`);
    log(`not running the Go ext_proc server: ${(error as Error).message}`);
    return undefined;
  });
  const running = await llmisvcUp('envoy').start(ready, logRoot);
  const stops: (() => Promise<void>)[] = [() => running.stop()];
  try {
    const upPid = running.rootPids[0]!;
    const { pid: upEnvoyPid, binary, bootstrap } = upEnvoy(upPid);
    const addresses = running.sims.join(',');
    const go = goServer
      ? await startNullExtProc(goServer, [addresses], join(logRoot, 'null-ext-proc-go.log'))
      : undefined;
    if (go) stops.push(() => stopProcess(go.child));
    const node = await startNullExtProc(
      process.execPath,
      [join(root, 'dist/bench/null-ext-proc.js'), addresses],
      join(logRoot, 'null-ext-proc-node.log'),
    );
    stops.push(() => stopProcess(node.child));
    // Each variant runs on an Envoy of its own with up's worker count (2); the last path is up's own Envoy, to show
    // that such a stand-in costs what up's does.
    const standIn = (variant: Record<string, unknown>) => async () => {
      const envoy = await startEnvoyWithBootstrap(binary, withListenPort(variant, 0), 2);
      return { url: `http://127.0.0.1:${envoy.port}`, pid: envoy.pid, close: () => envoy.close() };
    };
    const paths = [
      {
        path: 'Envoy alone (no ext_proc: round robin)',
        start: standIn(withoutExtProc(bootstrap)),
        server: undefined,
      },
      ...(go
        ? [
            {
              path: 'Envoy + do-nothing ext_proc in Go (grpc-go)',
              start: standIn(withExtProcAt(bootstrap, '127.0.0.1', go.port)),
              server: go.child.pid,
            },
          ]
        : []),
      {
        path: 'Envoy + do-nothing ext_proc in Node (our transport)',
        start: standIn(withExtProcAt(bootstrap, '127.0.0.1', node.port)),
        server: node.child.pid,
      },
      // up's process: the EPP, and the dashboard that follows Envoy's access log.
      { path: 'Envoy + llmisvc EPP (`up`)', start: standIn(bootstrap), server: upPid },
      {
        path: "up's own Envoy + llmisvc EPP",
        start: () => Promise.resolve({ url: running.url, pid: upEnvoyPid, close: () => Promise.resolve() }),
        server: upPid,
      },
    ];
    const rows: HopRow[] = [];
    let seed = SEED;
    for (let round = 1; round <= ENVOY_HOP_ROUNDS; round++) {
      for (const { path, start, server } of paths) {
        const envoy = await start();
        try {
          const url = envoy.url;
          await waitFor(`${path} to answer`, () => completionOk(url));
          const idleRow = await idleAddedLatency(path, { ...running, url });
          const load = (durationMs: number) =>
            runLoad({
              url,
              workload: createWorkload('shared-prefix', {
                model: MODEL,
                seed: ++seed,
                params: WORKLOAD_PARAMS,
              }),
              qps: TOP_RATE,
              durationMs,
              seed,
              timeoutMs: 60_000,
            });
          await load(5_000);
          const envoyBefore = processCpuSeconds(envoy.pid);
          const serverBefore = server ? processCpuSeconds(server) : 0;
          const result = await load(ENVOY_HOP_LOAD_MS);
          const perRequest = (seconds: number): number =>
            result.counts.ok > 0 ? (seconds * 1000) / result.counts.ok : NaN;
          const row: HopRow = {
            path,
            idleAddedP50: idleRow.routedTtftMs.p50 - idleRow.directTtftMs.p50,
            idleAddedP99: idleRow.routedTtftMs.p99 - idleRow.directTtftMs.p99,
            envoyCpuMs: perRequest(processCpuSeconds(envoy.pid) - envoyBefore),
            extProcCpuMs: server ? perRequest(processCpuSeconds(server) - serverBefore) : 0,
            ok: result.counts.ok,
            sent: result.counts.sent,
          };
          rows.push(row);
          log(
            `round ${round}, ${path}: idle added p50 ${row.idleAddedP50.toFixed(2)} ms; CPU ms/request Envoy ` +
              `${row.envoyCpuMs.toFixed(2)}, ext_proc server ${row.extProcCpuMs.toFixed(2)} (${row.ok}/${row.sent} ok)`,
          );
        } finally {
          await envoy.close();
        }
      }
    }
    return rows;
  } finally {
    for (const stop of stops.reverse()) await stop();
  }
}

/** user + system CPU seconds of `roots` and their descendants, simulators excluded. */
function processTreeCpuSeconds(roots: readonly number[]): number {
  let total = 0;
  for (const seconds of processTreeCpuByCommand(roots).values()) total += seconds;
  return total;
}

/** The same CPU seconds by command name (`node`, `envoy`, …): where a router's CPU goes between its processes. */
function processTreeCpuByCommand(roots: readonly number[]): Map<string, number> {
  const table = processTable();
  const parents = new Map(table.map((p) => [p.pid, p.parent]));
  const inTree = (pid: number): boolean => {
    for (let p: number | undefined = pid; p && p > 1; p = parents.get(p)) if (roots.includes(p)) return true;
    return false;
  };
  const byCommand = new Map<string, number>();
  for (const { pid, command, stat } of table) {
    if (!inTree(pid)) continue;
    // The simulators are the fleet, not the router (`up` starts them as its children); the kernel cuts the
    // command name to 15 characters.
    if (command.startsWith('llm-d-inference')) continue;
    byCommand.set(command, (byCommand.get(command) ?? 0) + cpuSecondsFromStat(stat));
  }
  return byCommand;
}

/** Every process of the machine: its parent, its command name (cut to 15 characters) and its `/proc/<pid>/stat`. */
function processTable(): { pid: number; parent: number; command: string; stat: string }[] {
  const table: { pid: number; parent: number; command: string; stat: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      table.push({ pid, parent, command: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), stat });
    } catch {
      // gone meanwhile
    }
  }
  return table;
}

async function fleetPrefixCounters(sims: readonly string[]): Promise<PrefixCacheCounters> {
  const pages = await Promise.all(
    sims.map(async (s) => {
      const r = await request(`http://${s}/metrics`);
      return r.body.text();
    }),
  );
  return pages
    .map(parsePrefixCacheCounters)
    .reduce((sum, c) => ({ hits: sum.hits + c.hits, queries: sum.queries + c.queries }), {
      hits: 0,
      queries: 0,
    });
}

/** The router's CPU over WARM_CPU_MS more of the run's traffic shape (a new seed: new prompts), after the load. */
async function warmCpu(
  running: Running,
  qps: number,
): Promise<{ cpuSeconds: number; ok: number; byProcess: string }> {
  const before = processTreeCpuByCommand(running.rootPids);
  const result = await runLoad({
    url: running.url,
    workload: createWorkload('shared-prefix', { model: MODEL, seed: SEED + 1, params: WORKLOAD_PARAMS }),
    qps,
    durationMs: WARM_CPU_MS,
    seed: SEED + 1,
    timeoutMs: 60_000,
  });
  let cpuSeconds = 0;
  const parts: string[] = [];
  for (const [command, seconds] of processTreeCpuByCommand(running.rootPids)) {
    const spent = seconds - (before.get(command) ?? 0);
    cpuSeconds += spent;
    parts.push(`${command} ${((spent * 1000) / Math.max(1, result.counts.ok)).toFixed(2)}`);
  }
  return { cpuSeconds, ok: result.counts.ok, byProcess: parts.join(', ') };
}

/** Time to the first token of one streamed completion. */
async function ttftOnce(base: string): Promise<number> {
  const t0 = performance.now();
  const response = await request(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: MODEL,
      prompt: 'idle probe: how long does one hop take',
      max_tokens: 2,
      stream: true,
    }),
  });
  if (response.statusCode !== 200)
    throw new Error(`HTTP ${response.statusCode}: ${await response.body.text()}`);
  let first: number | undefined;
  for await (const chunk of response.body) {
    if (first === undefined && /"text":"[^"]/.test(String(chunk))) first = performance.now() - t0;
  }
  if (first === undefined) throw new Error('no token in the stream');
  return first;
}

/** Sequential single requests on the idle fleet, alternating direct to one simulator and through the router. */
async function idleAddedLatency(name: string, running: Running): Promise<IdleRow> {
  const direct = `http://${running.sims[0]}`;
  // Warm every simulator's cache with the probe, so neither path pays a cold prefill, and the router itself: what is
  // measured is a hop on a router that has been serving, not its first requests after start. Node's JIT tiers our
  // request path up within its first requests: in one 800-sample run, 8 of the first 100 routed probes were more
  // than 2 ms slower than the median, and 1 in 100 after (bench/results/peers/README.md).
  for (let i = 0; i < IDLE_WARMUP; i++) await ttftOnce(running.url);
  for (let i = 0; i < 3; i++) await ttftOnce(direct);
  const directMs: number[] = [];
  const routedMs: number[] = [];
  for (let i = 0; i < IDLE_SAMPLES; i++) {
    directMs.push(await ttftOnce(direct));
    routedMs.push(await ttftOnce(running.url));
  }
  return {
    router: name,
    samples: IDLE_SAMPLES,
    directTtftMs: summarize(directMs),
    routedTtftMs: summarize(routedMs),
  };
}

interface RunRecord {
  router: string;
  qps: number;
  result: Omit<LoadResult, 'records'>;
  prefix: PrefixCacheCounters;
  cpuSeconds: number;
  /** CPU seconds of the router over IDLE_CPU_MS with no traffic, just before the load. */
  idleCpuSeconds: number;
  /** The gaps between tokens of each successful stream. */
  streams: number[][];
  /** The warm stretch after the load (highest rate only): the router's CPU seconds and the requests it served. */
  warm: { cpuSeconds: number; ok: number } | undefined;
  errors: string[];
}

/** Precise routing against every other router of the run: TTFT p90 and the fleet's hit ratio. */
function preciseChecks(rows: readonly PeerRow[]): string[] {
  const precise = rows.find((r) => r.router.includes('precise'));
  if (!precise) return [];
  const lines = [
    '## Precise prefix-cache routing under cache pressure',
    '',
    `Ours with precise routing: TTFT p90 ${precise.ttftMs.p90.toFixed(0)} ms, hit ratio ${(precise.prefixHitRatio * 100).toFixed(1)} %.`,
    '',
    '| Against | TTFT p90, ms | Hit ratio | Precise better on both |',
    '| --- | ---: | ---: | --- |',
  ];
  for (const r of rows) {
    if (r.router.includes('precise') || r.qps !== precise.qps) continue;
    const better = precise.ttftMs.p90 < r.ttftMs.p90 && precise.prefixHitRatio > r.prefixHitRatio;
    lines.push(
      `| ${r.router} | ${r.ttftMs.p90.toFixed(0)} | ${(r.prefixHitRatio * 100).toFixed(1)} % | ${better ? 'yes' : 'NO'} |`,
    );
  }
  return [...lines, ''];
}

async function main(): Promise<void> {
  const started = Date.now();
  const log = (m: string): void =>
    console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s] ${m}`);
  const loadSamples: number[] = [];
  const sampler = setInterval(() => loadSamples.push(loadavg()[0]!), 5000);

  log('provisioning the peers (cached per machine under ~/.cache/llmisvc/peers)');
  const parts = await provisionPeers({ env: process.env, log });
  for (const [name, p] of Object.entries(parts) as [string, Provisioned][]) {
    log(
      p.ok
        ? `${name}: ${p.path} (${p.cached ? 'cached' : `provisioned in ${p.seconds.toFixed(0)} s`})`
        : `${name}: FAILED: ${p.error}`,
    );
  }
  if (!parts.inferenceSim.ok) throw new Error(`llm-d-inference-sim is needed: ${parts.inferenceSim.error}`);
  const ready: Ready = {
    sim: parts.inferenceSim.path,
    ...(parts.vllmRouter.ok ? { vllmRouter: parts.vllmRouter.path } : {}),
    ...(parts.sglangRouter.ok ? { sglangRouter: parts.sglangRouter.path } : {}),
    ...(parts.gieEpp.ok ? { gieEpp: parts.gieEpp.path } : {}),
  };

  if (envoyHop) {
    const logRoot = await mkdtemp(join(tmpdir(), 'llmisvc-bench-envoy-hop-'));
    log(`logs in ${logRoot}`);
    const notRun: string[] = [];
    const rows = await measureEnvoyHop(ready, logRoot, log, notRun);
    const load = summarize(loadSamples);
    const report = [
      '# Where the Envoy path goes: Envoy, the ext_proc hop, the EPP',
      '',
      `- Date: ${new Date().toISOString()}; wall time ${((Date.now() - started) / 60000).toFixed(1)} min`,
      `- Command: \`npm run bench:peers -- ${args.join(' ')}\``,
      `- Machine: ${machineDescription()}; nproc ${cpus().length}`,
      `- Load average (1 min) during the run: mean ${load.mean.toFixed(1)}, max ${load.max.toFixed(1)}.`,
      `- Fleet and traffic as bench:peers (${REPLICAS} × llm-d-inference-sim ${INFERENCE_SIM_VERSION}); idle: ` +
        `${IDLE_SAMPLES} sequential probes each way; load: ${ENVOY_HOP_LOAD_MS / 1000} s at ${TOP_RATE} req/s after 5 s ` +
        'of warm-up, the same shape with a new seed for every path and round.',
      '- Each path but the last is an Envoy of its own (2 workers, as `up` runs it) on the bootstrap ' +
        "`llmisvc up --gateway envoy` wrote, in a variant; the last is up's own Envoy. The do-nothing servers route " +
        "by a hash of the body's first 256 bytes (the fleet caches as under a cache-aware router); Envoy alone, round " +
        'robin. "ext_proc server CPU" for our EPP is the whole `up` process.',
      '',
      ...envoyHopTables(rows),
      ...(notRun.length ? ['## Could not run', '', ...notRun.map((n) => `- ${n}`), ''] : []),
    ].join('\n');
    await mkdir(out, { recursive: true });
    await writeFile(join(out, 'envoy-hop.md'), report);
    console.log(report);
    return;
  }

  const setups: RouterSetup[] = [
    vllmRouter('round_robin'),
    vllmRouter('cache_aware'),
    vllmRouter('power_of_two'),
    sglangRouter,
    llmisvcUp('builtin'),
    ...(cachePressure ? [llmisvcUp('builtin', { precise: true })] : [llmisvcUp('envoy'), gieEppBehindEnvoy]),
    ...eppReplicaCounts.map((n) => llmisvcUp('builtin', { eppReplicas: n })),
    // Under cache pressure also precise routing with replicas: each gets every server's events (up's relay).
    ...(cachePressure
      ? eppReplicaCounts.map((n) => llmisvcUp('builtin', { precise: true, eppReplicas: n }))
      : []),
  ].filter((s) => !only || only.some((o) => s.name.toLowerCase().includes(o.toLowerCase())));

  const logRoot = await mkdtemp(join(tmpdir(), 'llmisvc-bench-peers-'));
  log(`logs in ${logRoot}`);
  const runs: RunRecord[] = [];
  const idle: IdleRow[] = [];
  const failures: { router: string; error: string }[] = [];
  for (const setup of setups) {
    const part = setup.needs ? parts[setup.needs] : undefined;
    if (part && !part.ok) {
      failures.push({ router: setup.name, error: `not provisioned: ${part.error}` });
      continue;
    }
    for (const [i, qps] of RATES.entries()) {
      const logDir = join(logRoot, `${setup.name.replace(/\W+/g, '-')}-${qps}`);
      await mkdir(logDir, { recursive: true });
      let running: Running;
      try {
        running = await setup.start(ready, logDir);
      } catch (error) {
        log(`${setup.name}: could not start: ${(error as Error).message}`);
        failures.push({ router: setup.name, error: (error as Error).message });
        break;
      }
      try {
        if (i === 0 && !cachePressure) {
          log(`${setup.name}: idle added latency, ${IDLE_SAMPLES} sequential requests each way`);
          const row = await idleAddedLatency(setup.name, running);
          idle.push(row);
          log(
            `  routed TTFT p50 ${row.routedTtftMs.p50.toFixed(2)} ms, direct ${row.directTtftMs.p50.toFixed(2)} ms`,
          );
        }
        // What the router burns in the seconds before the load with no traffic (health checks, metrics scraping). For
        // a JIT runtime this includes the tail of its start or of the idle probes (compiling; our scraper's fast pace
        // lasts a second after the last request), so it is shown beside the load's figure, not subtracted from it.
        // Waiting longer here would change what the load meets: about 8 s after the last request V8's memory reducer
        // shrinks the heap (three mark-compacts as the load arrived), and in an A/B our CPU per request over the
        // window went up by 0.6-0.7 ms (bench/results/peers/README.md).
        const idleCpuBefore = processTreeCpuSeconds(running.rootPids);
        await sleep(IDLE_CPU_MS);
        const idleCpuSeconds = processTreeCpuSeconds(running.rootPids) - idleCpuBefore;
        const prefixBefore = await fleetPrefixCounters(running.sims);
        const cpuBefore = processTreeCpuSeconds(running.rootPids);
        const display = progressDisplay(process.stdout, `${setup.name} @ ${qps} req/s`);
        const result = await runLoad({
          url: running.url,
          workload: createWorkload('shared-prefix', { model: MODEL, seed: SEED, params: WORKLOAD_PARAMS }),
          qps,
          durationMs: DURATION_MS,
          seed: SEED,
          timeoutMs: 60_000,
          onProgress: (p) => display.update(p),
        });
        display.done();
        const cpuSeconds = processTreeCpuSeconds(running.rootPids) - cpuBefore;
        const prefixAfter = await fleetPrefixCounters(running.sims);
        const warm = qps === TOP_RATE && WARM_CPU_MS > 0 ? await warmCpu(running, qps) : undefined;
        if (warm)
          log(
            `  warm: ${warm.ok} ok over ${WARM_CPU_MS / 1000} s more, CPU ${warm.cpuSeconds.toFixed(2)} s ` +
              `(ms/request by process: ${warm.byProcess})`,
          );
        const prefix = {
          hits: prefixAfter.hits - prefixBefore.hits,
          queries: prefixAfter.queries - prefixBefore.queries,
        };
        const { records, ...summary } = result;
        const errors = [...new Set(records.flatMap((r) => (r.error ? [r.error] : [])))].slice(0, 5);
        runs.push({
          router: setup.name,
          qps,
          result: summary,
          prefix,
          cpuSeconds,
          idleCpuSeconds,
          warm,
          streams: records.filter((r) => r.outcome === 'ok').map((r) => r.interTokenMs),
          errors,
        });
        log(
          `  ${result.counts.ok}/${result.counts.sent} ok, TTFT p50 ${result.ttftMs.p50.toFixed(1)} ms, ITL p90 ` +
            `${result.interTokenMs.p90.toFixed(2)} ms, hits ${((prefix.hits / prefix.queries) * 100).toFixed(1)} %, ` +
            `CPU ${cpuSeconds.toFixed(2)} s`,
        );
      } finally {
        await running.stop();
      }
    }
  }
  clearInterval(sampler);

  const rows: PeerRow[] = runs.map((r) => ({
    router: r.router,
    qps: r.qps,
    ok: r.result.counts.ok,
    sent: r.result.counts.sent,
    ttftMs: r.result.ttftMs,
    interTokenMs: r.result.interTokenMs,
    e2eMs: r.result.e2eMs,
    outputTokensPerSecond: r.result.outputTokensPerSecond,
    prefixHitRatio: r.prefix.queries > 0 ? r.prefix.hits / r.prefix.queries : NaN,
    cpuMsPerRequest: r.result.counts.ok > 0 ? (r.cpuSeconds * 1000) / r.result.counts.ok : NaN,
    idleCpuMsPerSecond: (r.idleCpuSeconds * 1000) / (IDLE_CPU_MS / 1000),
    warmCpuMsPerRequest: r.warm && r.warm.ok > 0 ? (r.warm.cpuSeconds * 1000) / r.warm.ok : NaN,
  }));
  const load = summarize(loadSamples);
  const command = `npm run bench:peers${args.length ? ` -- ${args.join(' ')}` : ''}`;
  const version = (cmd: string, argv: string[]): string =>
    spawnSync(cmd, argv, { encoding: 'utf8' }).stdout?.trim().split('\n')[0] ?? 'unknown';
  const machine = {
    description: machineDescription(),
    nproc: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    go: version('go', ['version']),
    python: version('python3', ['--version']),
  };
  const date = new Date().toISOString();
  const report = [
    `# Routers side by side${cachePressure ? ' under cache pressure' : quick ? ' (quick smoke run)' : ''}`,
    '',
    `- Date: ${date}; wall time ${((Date.now() - started) / 60000).toFixed(1)} min`,
    `- Command: \`${command}\``,
    `- Machine: ${machine.description}; nproc ${machine.nproc}, ${machine.memoryGiB} GiB; ${machine.go}; ${machine.python}`,
    `- Load average (1 min) during the run: mean ${load.mean.toFixed(1)}, max ${load.max.toFixed(1)} on ${machine.nproc} cores.` +
      (load.mean > machine.nproc * 0.75
        ? ' The machine is shared with other work: the numbers are noisy, compare them within this run only.'
        : ''),
    `- Fleet: ${REPLICAS} × llm-d-inference-sim ${INFERENCE_SIM_VERSION}, fresh for every router and rate: \`${SIM_FLAGS.join(' ')}\``,
    `- Traffic: shared-prefix, ${Object.entries(WORKLOAD_PARAMS)
      .map(([k, v]) => `${k}=${v}`)
      .join(
        ', ',
      )}; seed ${SEED}, Poisson arrivals, ${DURATION_MS / 1000} s per rate, streamed /v1/completions.` +
      (WARM_CPU_MS > 0
        ? ` At ${TOP_RATE} req/s, ${WARM_CPU_MS / 1000} s more (seed ${SEED + 1}) for the warm CPU figure only.`
        : ''),
    `- Peers: vllm-router ${VLLM_ROUTER_VERSION}, sglang-router ${SGLANG_ROUTER_VERSION} (\`smg launch\`), from PyPI; ` +
      `GIE's Endpoint Picker ${GIE_EPP_VERSION} (built from its Go module, the plugins of its chart, its pool in a real ` +
      "API server) behind Envoy on GIE's standalone chart's configuration; its CPU is the EPP's and Envoy's.",
    '- Ours: `llmisvc up --model-server-cmd "<the simulator>"` with an 8-replica LLMInferenceService (the rendered default',
    '  EndpointPickerConfig), `--gateway builtin` or `--gateway envoy`. Its CPU is the `up` process (gateway + EPP) plus',
    "  Envoy where used; a peer's is its router process.",
    '',
    '## Provisioning (per machine, cached)',
    '',
    '| Part | This run | Cold provisioning, s |',
    '| --- | --- | ---: |',
    ...(Object.entries(parts) as [string, Provisioned][]).map(
      ([name, p]) =>
        `| ${name} | ${p.ok ? (p.cached ? 'cached' : 'provisioned') : `failed: ${p.error.split('\n')[0]}`} | ${p.ok && p.coldSeconds !== undefined ? p.coldSeconds.toFixed(0) : '–'} |`,
    ),
    '',
    '## Idle added latency (time to first token, sequential single requests)',
    '',
    peersIdleTable(idle),
    '',
    '## Under load',
    '',
    peersLoadTable(rows),
    '',
    `## Token pacing at ${TOP_RATE} req/s`,
    '',
    'A router that holds tokens back and delivers them together adds gaps of almost nothing to the ITL figures above and',
    "lowers their percentiles; the gaps from each stream's sixth on leave the start of the stream out.",
    '',
    tokenPacingTable(runs.filter((r) => r.qps === TOP_RATE).map((r) => tokenPacing(r.router, r.streams))),
    '',
    '## The targets of issue 16 on this run',
    '',
    ...targetChecks(idle, rows, {
      ours: setups.filter((s) => s.needs === undefined).map((s) => s.name),
      roundRobin: 'vllm-router round_robin',
      sglang: 'sglang-router cache_aware',
    }),
    '',
    ...(cachePressure ? preciseChecks(rows) : []),
    ...(failures.length
      ? ['## Could not run', '', ...failures.map((f) => `- ${f.router}: ${f.error.replace(/\n/g, ' ')}`), '']
      : []),
  ].join('\n');
  await mkdir(out, { recursive: true });
  // A replicas run is its own report: it measures our EPP split over replicas, not the comparison with the peers.
  const name = cachePressure
    ? 'cache-pressure'
    : eppReplicaCounts.length
      ? 'epp-replicas'
      : quick
        ? 'quick'
        : 'report';
  await writeFile(join(out, `${name}.md`), report);
  await writeFile(
    join(out, `${name}.json`),
    JSON.stringify(
      {
        date,
        command,
        machine,
        loadAverage: load,
        parts,
        idle,
        runs: runs.map(({ streams: _streams, ...run }) => run),
        failures,
      },
      null,
      1,
    ) + '\n',
  );
  console.log(report);
}

await main();
process.exit(0);
