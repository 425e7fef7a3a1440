/**
 * @module bench/prefix-autotune
 * `npm run bench:prefix-autotune`: does sizing the prefix-cache-scorer's per-endpoint LRU after the server's
 * reported KV cache (`autoTune`) route better than GIE's fixed defaults? Eight simulated engines (the pure
 * performance model, modelled time, no HTTP) serve a shared-prefix workload whose system prompts together exceed
 * one engine's KV cache; every request is routed by the EPP's own `decide` (real config, scheduler and plugins)
 * against the engines' state at the request's arrival, as a 50 ms metrics scrape would have seen it (queues, KV
 * use, `cache_config_info`, `prompt_tokens_total`). Round-robin is the floor. Writes a Markdown report and SVG
 * charts to bench/out/prefix-autotune/ (raw; curated summary in bench/results/prefix-autotune/README.md).
 *
 * Deterministic: the same seed gives the same numbers on any machine (only the wall time line differs).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  createWorkload,
  lineChartSvg,
  machineDescription,
  poissonArrivals,
  summarize,
} from '../src/bench/index.js';
import {
  decide,
  defaultEndpointPickerConfig,
  emptyModelDirectory,
  loadEndpointPickerConfig,
  type Endpoint,
  type EndpointPickerConfig,
  type SchedulingRequest,
} from '../src/epp/index.js';
import {
  PerformanceModel,
  advanceUntil,
  blockHashes,
  defaultSimulatorOptions,
  seededRandom,
  tokenize,
  type EngineRequest,
  type StepResult,
} from '../src/sim/index.js';
import { rawOutputDir } from './output.js';

const out = rawOutputDir('prefix-autotune');
const replicas = 8;
const durationMs = 60_000;
const scrapeIntervalMs = 50;
const seed = 1;
const model = 'm';
const options = defaultSimulatorOptions;
/** `--qps 40,80` and `--groups 512` explore other points; only the default run writes the results folder. */
const explore = process.argv.includes('--qps') || process.argv.includes('--groups');
const sweep = flagValue('qps', '10,20,40,60,80,120').split(',').map(Number);
/**
 * Prefix groups of 2048-token system prompts: 128 fit the fleet's cache (2× one engine's), 256 fill it exactly
 * (4× one engine's), 512 overflow it twice. The first is the control: there the index size hardly matters.
 */
const groupCounts = flagValue('groups', '128,256,512').split(',').map(Number);

function flagValue(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

/** The shipped default EndpointPickerConfig with the prefix-cache-scorer's parameters replaced. */
function configWith(prefixParameters: string): EndpointPickerConfig {
  const shipped = 'hashBlockSize: 64\n      maxPrefixBlocksToMatch: 256\n      lruCapacityPerServer: 31250';
  if (!defaultEndpointPickerConfig.includes(shipped)) throw new Error('the default config changed shape');
  return loadEndpointPickerConfig(defaultEndpointPickerConfig.replace(shipped, prefixParameters));
}

interface Variant {
  name: string;
  /** Parameters as written in the config (shown in the report); undefined = round-robin. */
  parameters?: string;
}

const variants: Variant[] = [
  { name: 'round-robin' },
  {
    name: 'fixed (GIE defaults)',
    parameters: 'hashBlockSize: 64\n      maxPrefixBlocksToMatch: 256\n      lruCapacityPerServer: 31250',
  },
  {
    name: 'autoTune',
    parameters: 'hashBlockSize: 64\n      maxPrefixBlocksToMatch: 256\n      autoTune: true',
  },
  {
    // What GIE's autoTune sets on these engines: one index block per KV block, at an assumed 4 chars/token.
    name: 'GIE autoTune (4 chars/token)',
    parameters: 'hashBlockSize: 64\n      maxPrefixBlocksToMatch: 256\n      lruCapacityPerServer: 4096',
  },
  {
    name: 'autoTune, 96-char blocks',
    parameters: 'hashBlockSize: 96\n      maxPrefixBlocksToMatch: 256\n      autoTune: true',
  },
];

interface Arrival {
  at: number;
  body: Buffer;
  promptChars: number;
  engine: EngineRequest;
}

function trace(groups: number, qps: number): Arrival[] {
  const workload = createWorkload('shared-prefix', { model, seed, params: { groups: String(groups) } });
  return poissonArrivals(seed, qps, durationMs).map((at, i) => {
    const request = workload.next();
    const prompt = request.body['prompt'] as string;
    const tokens = tokenize(prompt);
    return {
      at,
      body: Buffer.from(JSON.stringify(request.body)),
      promptChars: prompt.length,
      engine: {
        id: `r${i}`,
        promptTokens: tokens.length,
        blockHashes: blockHashes(tokens, options.blockSize, model),
        outputTokens: request.body['max_tokens'] as number,
      },
    };
  });
}

interface Engine {
  model: PerformanceModel;
  endpoint: Endpoint;
  /** What `vllm:prompt_tokens_total` would say: prompt tokens of requests past their first token. */
  promptTokensTotal: number;
  promptTokens: Map<string, number>;
  /** The EPP's view of each request in flight, handed back to its post-response hooks at the end. */
  routed: Map<string, SchedulingRequest>;
}

interface RunResult {
  ttftP50: number;
  ttftP90: number;
  tokensPerSecond: number;
  /** Server side: prompt tokens found in the prefix cache / prompt tokens. */
  hit: number;
  /** The EPP's own belief: mean share of the prompt the chosen endpoint held, per its index. */
  believed: number;
  /** autoTune's measured characters per token (mean over endpoints), and its LRU capacity in blocks. */
  charsPerToken: number | undefined;
  capacity: number | undefined;
}

function run(arrivals: readonly Arrival[], variant: Variant): RunResult {
  const config = variant.parameters ? configWith(variant.parameters) : undefined;
  const engines: Engine[] = Array.from({ length: replicas }, (_, i) => ({
    model: new PerformanceModel(options),
    endpoint: {
      address: `10.0.0.${i + 1}:8000`,
      name: `sim-${i}`,
      role: 'both',
      labels: {},
      metrics: scrape(undefined, 0),
      inFlight: 0,
      inFlightTokens: 0,
      stale: false,
    },
    promptTokensTotal: 0,
    promptTokens: new Map(),
    routed: new Map(),
  }));
  const endpoints = engines.map((e) => e.endpoint);
  const byAddress = new Map(engines.map((e) => [e.endpoint.address, e]));
  const firstTokenAt = new Map<string, number>();
  let finishedAt = 0;
  const record = (engine: Engine) => (step: StepResult) => {
    for (const id of step.emitted) {
      if (firstTokenAt.has(id)) continue;
      firstTokenAt.set(id, step.end);
      engine.promptTokensTotal += engine.promptTokens.get(id) ?? 0;
    }
    for (const id of step.finished) {
      engine.endpoint.inFlight--;
      const request = engine.routed.get(id);
      engine.routed.delete(id);
      if (request)
        for (const hook of config?.scheduler.postResponse ?? []) hook.postResponse(request, engine.endpoint);
      engine.promptTokens.delete(id);
      finishedAt = Math.max(finishedAt, step.end);
    }
  };
  const recorders = engines.map(record);
  function scrape(engine: Engine | undefined, now: number): Endpoint['metrics'] {
    const stats = engine?.model.stats();
    return {
      waitingQueueSize: stats?.waiting ?? 0,
      runningQueueSize: stats?.running ?? 0,
      kvCacheUsage: stats?.kvUsage ?? 0,
      activeAdapters: new Set(),
      waitingAdapters: new Set(),
      maxActiveAdapters: 0,
      blockSize: options.blockSize,
      numGpuBlocks: options.numGpuBlocks,
      promptTokensTotal: engine?.promptTokensTotal ?? 0,
      // 0 means "never scraped" to the EPP; modelled time starts at 0.
      updatedAt: Math.max(1, now),
    };
  }

  const random = seededRandom(seed);
  let lastScrape = -Infinity;
  let believed = 0;
  arrivals.forEach((arrival, i) => {
    engines.forEach((e, j) => advanceUntil(e.model, arrival.at, recorders[j]!));
    // The EPP sees metrics as of its last scrape, not the engines' state at this instant.
    const tick = Math.floor(arrival.at / scrapeIntervalMs) * scrapeIntervalMs;
    if (tick > lastScrape) {
      for (const e of engines) e.endpoint.metrics = scrape(e, tick);
      lastScrape = tick;
    }
    let engine: Engine;
    if (!config) engine = engines[i % replicas]!;
    else {
      const d = decide(
        { requestId: arrival.engine.id, path: '/v1/completions', headers: {}, body: arrival.body },
        endpoints,
        config,
        emptyModelDirectory,
        arrival.at,
        random,
      );
      if (d.kind !== 'route') throw new Error(`request ${arrival.engine.id} was refused: ${d.error.message}`);
      engine = byAddress.get(d.endpoint.address)!;
      engine.routed.set(arrival.engine.id, d.request);
      believed += d.prefixHitRatio ?? 0;
    }
    engine.endpoint.inFlight++;
    engine.promptTokens.set(arrival.engine.id, arrival.engine.promptTokens);
    engine.model.submit(arrival.engine, arrival.at);
  });
  engines.forEach((e, j) => advanceUntil(e.model, Infinity, recorders[j]!));

  const ttft = summarize(arrivals.map((a) => (firstTokenAt.get(a.engine.id)! - a.at) / 1000));
  const outputTokens = arrivals.reduce((total, a) => total + a.engine.outputTokens, 0);
  let queried = 0;
  let hits = 0;
  for (const e of engines) {
    const stats = e.model.stats();
    queried += stats.prefixQueriedTokens;
    hits += stats.prefixHitTokens;
  }
  const scorer = config?.plugins.get('prefix-cache-scorer') as
    | {
        charsPerToken(address: string): number | undefined;
        index: { capacity(address: string): number };
      }
    | undefined;
  const measured = endpoints.map((e) => scorer?.charsPerToken(e.address));
  const known = measured.filter((m): m is number => m !== undefined);
  return {
    ttftP50: ttft.p50,
    ttftP90: ttft.p90,
    tokensPerSecond: outputTokens / (finishedAt / 1000),
    hit: hits / queried,
    believed: config ? believed / arrivals.length : Number.NaN,
    charsPerToken: known.length ? known.reduce((a, b) => a + b, 0) / known.length : undefined,
    capacity: scorer?.index.capacity(endpoints[0]!.address),
  };
}

const pct = (x: number): string => (Number.isNaN(x) ? '–' : `${(x * 100).toFixed(0)}%`);

async function main(): Promise<void> {
  const started = Date.now();
  /** groups → variant → [qps, result] */
  const results = new Map<number, Map<string, [number, RunResult][]>>();
  let charsPerTokenActual = 0;
  for (const groups of groupCounts) {
    const byVariant = new Map<string, [number, RunResult][]>(variants.map((v) => [v.name, []]));
    results.set(groups, byVariant);
    for (const qps of sweep) {
      const arrivals = trace(groups, qps);
      charsPerTokenActual =
        arrivals.reduce((t, a) => t + a.promptChars, 0) /
        arrivals.reduce((t, a) => t + a.engine.promptTokens, 0);
      for (const variant of variants) byVariant.get(variant.name)!.push([qps, run(arrivals, variant)]);
      console.error(`groups ${groups}, qps ${qps}: done (${((Date.now() - started) / 1000).toFixed(0)} s)`);
    }
  }

  const cacheTokens = options.numGpuBlocks * options.blockSize;
  const params = createWorkload('shared-prefix', { model }).params;
  const systemPromptLen = Number(params['systemPromptLen']);
  const sections = groupCounts.flatMap((groups) => {
    const byVariant = results.get(groups)!;
    const auto = byVariant.get('autoTune')!.at(-1)![1];
    return [
      `## ${groups} groups: system prompts ${((groups * systemPromptLen) / cacheTokens).toFixed(0)}× one engine's KV cache, ` +
        `${((groups * systemPromptLen) / cacheTokens / replicas).toFixed(2)}× the fleet's`,
      '',
      `autoTune measured ${auto.charsPerToken?.toFixed(2) ?? '–'} characters per token and sized each LRU at ` +
        `${auto.capacity?.toLocaleString('en') ?? '–'} blocks of 64 characters.`,
      '',
      '| QPS | routing | server prefix-cache hits | EPP believed | TTFT p50 (s) | TTFT p90 (s) | output tok/s |',
      '|---:|---|---:|---:|---:|---:|---:|',
      ...sweep.flatMap((qps, i) =>
        variants.map((v) => {
          const r = byVariant.get(v.name)![i]![1];
          return (
            `| ${qps} | ${v.name} | ${pct(r.hit)} | ${pct(r.believed)} | ${r.ttftP50.toFixed(2)} | ` +
            `${r.ttftP90.toFixed(2)} | ${r.tokensPerSecond.toFixed(0)} |`
          );
        }),
      ),
      '',
    ];
  });
  const report = [
    '# prefix-cache-scorer: fixed LRU capacity vs autoTune',
    '',
    `- Date: ${new Date().toISOString()}`,
    `- Machine: ${machineDescription()} (the simulation is pure and in modelled time, so the numbers do not depend on it)`,
    `- Command: \`npm run bench:prefix-autotune${process.argv.slice(2).length ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\``,
    `- Fleet: ${replicas} simulated engines, default simulator options (${options.numGpuBlocks} KV blocks × ` +
      `${options.blockSize} tokens = ${cacheTokens.toLocaleString('en')} tokens each, batch ${options.maxNumSeqs}, ` +
      `${options.maxNumBatchedTokens} tokens per step, ${options.prefillTokensPerSecond} prefill tokens/s).`,
    `- Workload: shared-prefix (${Object.entries(params)
      .filter(([k]) => k !== 'groups')
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')}; groups as below), Poisson arrivals for ${durationMs / 1000} s, seed ${seed}. ` +
      `The prompts have ${charsPerTokenActual.toFixed(2)} characters per simulator token (one token per word).`,
    "- Routing: every request goes through the EPP's `decide` with the shipped default config (queue-scorer 2, " +
      'kv-cache-utilization-scorer 2, prefix-cache-scorer 3, max-score-picker), only the prefix-cache-scorer ' +
      `parameters varied; the EPP sees the engines as a ${scrapeIntervalMs} ms scrape would (queues, KV use, ` +
      '`cache_config_info`, `prompt_tokens_total`). Round-robin: request i to engine i mod 8.',
    ...variants
      .filter((v) => v.parameters)
      .map((v) => `  - ${v.name}: \`${v.parameters!.replace(/\n\s*/g, ', ')}\``),
    `- The fixed default, 31,250 blocks of 64 characters, is ${((31250 * 64) / charsPerTokenActual / cacheTokens).toFixed(1)}× ` +
      'what an engine holds. "EPP believed" is the mean share of the prompt the EPP thought the chosen endpoint ' +
      'still cached; the gap to the server-side hit rate is what its index claims that the server has evicted.',
    '',
    ...sections,
    `Computed in ${((Date.now() - started) / 1000).toFixed(1)} s of wall time.`,
    '',
  ].join('\n');
  if (explore) {
    process.stdout.write(report);
    return;
  }
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'report.md'), report);
  // Charts for the middle workload, where the fleet's cache is exactly full.
  const charted = results.get(256) ?? results.get(groupCounts[0]!)!;
  const series = (pick: (r: RunResult) => number) =>
    variants.map((v) => ({
      name: v.name,
      points: charted.get(v.name)!.map(([qps, r]) => [qps, pick(r)] as [number, number]),
    }));
  await writeFile(
    join(out, 'ttft-p90.svg'),
    lineChartSvg({
      title: 'TTFT p90, 256 groups (modelled)',
      xLabel: 'QPS',
      yLabel: 'seconds',
      series: series((r) => r.ttftP90),
      logY: true,
    }),
  );
  await writeFile(
    join(out, 'prefix-cache-hit-rate.svg'),
    lineChartSvg({
      title: 'Server-side prefix-cache hit rate, 256 groups',
      xLabel: 'QPS',
      yLabel: '% of prompt tokens',
      series: series((r) => r.hit * 100),
    }),
  );
  await writeFile(
    join(out, 'output-throughput.svg'),
    lineChartSvg({
      title: 'Output throughput, 256 groups (modelled)',
      xLabel: 'QPS',
      yLabel: 'tokens/s',
      series: series((r) => r.tokensPerSecond),
    }),
  );
  process.stdout.write(report);
}

await main();
