/**
 * @module bench/sim-routing
 * `npm run bench:sim-routing`: does the simulator's performance model make routing matter? Runs the shared-prefix
 * workload through eight simulated engines with the pure model (`simulate`, no HTTP, no clock), once spread
 * round-robin and once with each prefix group pinned to one engine (what a prefix-aware picker converges to), over a
 * QPS sweep, and writes a Markdown table and SVG charts to bench/out/sim-routing/ (raw; curated summary in
 * bench/results/sim-routing/README.md).
 *
 * This measures the model, not the Endpoint Picker: the end-to-end comparison through the gateway and the EPP is
 * `llmisvc bench --compare`. Deterministic: the same seed gives the same file.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  createWorkload,
  lineChartSvg,
  machineDescription,
  poissonArrivals,
  summarize,
  type WorkloadRequest,
} from '../src/bench/index.js';
import {
  blockHashes,
  defaultSimulatorOptions,
  simulate,
  tokenize,
  type TraceArrival,
  type TraceOutcome,
} from '../src/sim/index.js';
import { rawOutputDir } from './output.js';

const out = rawOutputDir('sim-routing');
const replicas = 8;
const durationMs = 60_000;
const seed = 1;
const sweep = [10, 20, 40, 60, 80, 120, 160, 200];
const options = defaultSimulatorOptions;

interface Routed {
  request: WorkloadRequest;
  arrival: TraceArrival;
}

function trace(qps: number): Routed[] {
  const workload = createWorkload('shared-prefix', { model: 'm', seed });
  return poissonArrivals(seed, qps, durationMs).map((at, i) => {
    const request = workload.next();
    const tokens = tokenize(request.body['prompt'] as string);
    return {
      request,
      arrival: {
        id: `r${i}`,
        at,
        promptTokens: tokens.length,
        blockHashes: blockHashes(tokens, options.blockSize, 'm'),
        outputTokens: request.body['max_tokens'] as number,
      },
    };
  });
}

type Router = (routed: Routed, index: number) => number;

const roundRobin: Router = (_routed, index) => index % replicas;
// Group g always goes to replica g mod 8: every replica caches only its own groups' system prompts.
const prefixAffinity: Router = (routed) => Number(routed.request.group.replace('group-', '')) % replicas;

function run(
  qps: number,
  router: Router,
): { ttftP90: number; ttftP50: number; tokensPerSecond: number; hit: number } {
  const routed = trace(qps);
  const perReplica: TraceArrival[][] = Array.from({ length: replicas }, () => []);
  routed.forEach((r, i) => perReplica[router(r, i)]?.push(r.arrival));
  const outcomes: TraceOutcome[] = perReplica.flatMap((arrivals) => simulate(options, arrivals));
  const tokens = routed.reduce((total, r) => total + r.arrival.outputTokens, 0);
  const end = Math.max(...outcomes.map((o) => o.finishedAt));
  const ttft = summarize(outcomes.map((o) => o.ttft / 1000));
  const prompt = routed.reduce((total, r) => total + r.arrival.promptTokens, 0);
  const cached = outcomes.reduce((total, o) => total + o.cachedTokens, 0);
  return {
    ttftP50: ttft.p50,
    ttftP90: ttft.p90,
    tokensPerSecond: tokens / (end / 1000),
    hit: cached / prompt,
  };
}

async function main(): Promise<void> {
  const started = Date.now();
  const rows: string[] = [];
  const series = { rr: [] as [number, number, number][], affinity: [] as [number, number, number][] };
  for (const qps of sweep) {
    const rr = run(qps, roundRobin);
    const pa = run(qps, prefixAffinity);
    series.rr.push([qps, rr.ttftP90, rr.tokensPerSecond]);
    series.affinity.push([qps, pa.ttftP90, pa.tokensPerSecond]);
    rows.push(
      `| ${qps} | ${rr.ttftP50.toFixed(2)} / ${rr.ttftP90.toFixed(2)} | ${pa.ttftP50.toFixed(2)} / ${pa.ttftP90.toFixed(2)} | ` +
        `${(rr.ttftP90 / pa.ttftP90).toFixed(1)} | ${rr.tokensPerSecond.toFixed(0)} | ${pa.tokensPerSecond.toFixed(0)} | ` +
        `${(rr.hit * 100).toFixed(0)}% | ${(pa.hit * 100).toFixed(0)}% |`,
    );
    console.error(`qps ${qps}: done`);
  }
  const peak = (points: [number, number, number][]): number => Math.max(...points.map((p) => p[2]));
  const params = createWorkload('shared-prefix', { model: 'm' }).params;
  const report = [
    '# Simulator performance model: round-robin vs prefix affinity',
    '',
    `- Date: ${new Date().toISOString()}`,
    `- Machine: ${machineDescription()} (the model is pure, so the numbers do not depend on it)`,
    '- Command: `npm run bench:sim-routing`',
    `- Fleet: ${replicas} simulated engines with the default simulator options ` +
      `(${options.numGpuBlocks} KV blocks of ${options.blockSize} tokens, batch ${options.maxNumSeqs}, ` +
      `${options.maxNumBatchedTokens} tokens per step, ${options.prefillTokensPerSecond} prefill tokens/s, ` +
      `decode step ${options.stepOverheadMs} + ${options.decodeBaseMs} + ${options.decodePerSeqMs} × batch ms)`,
    `- Workload: shared-prefix (${Object.entries(params)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')}), Poisson arrivals for ${durationMs / 1000} s, seed ${seed}`,
    '- Round-robin: request i to engine i mod 8 (a plain Kubernetes Service). Prefix affinity: group g to engine ' +
      'g mod 8 (what a prefix-cache-aware picker converges to). Times in modelled seconds.',
    '',
    '| QPS | Round-robin TTFT p50 / p90 (s) | Affinity TTFT p50 / p90 (s) | p90 ratio | Round-robin output tok/s | Affinity output tok/s | Round-robin cache hits | Affinity cache hits |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    `Peak output throughput: round-robin ${peak(series.rr).toFixed(0)} tok/s, prefix affinity ` +
      `${peak(series.affinity).toFixed(0)} tok/s (${(peak(series.affinity) / peak(series.rr)).toFixed(2)}×).`,
    '',
    `Computed in ${((Date.now() - started) / 1000).toFixed(1)} s of wall time.`,
    '',
  ].join('\n');
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'report.md'), report);
  const line = (pick: 1 | 2) => [
    { name: 'round-robin', points: series.rr.map((p) => [p[0], p[pick]] as [number, number]) },
    { name: 'prefix affinity', points: series.affinity.map((p) => [p[0], p[pick]] as [number, number]) },
  ];
  await writeFile(
    join(out, 'ttft-p90.svg'),
    lineChartSvg({
      title: 'TTFT p90 (modelled)',
      xLabel: 'QPS',
      yLabel: 'seconds',
      series: line(1),
      logY: true,
    }),
  );
  await writeFile(
    join(out, 'output-throughput.svg'),
    lineChartSvg({
      title: 'Output throughput (modelled)',
      xLabel: 'QPS',
      yLabel: 'tokens/s',
      series: line(2),
    }),
  );
  process.stdout.write(report);
}

await main();
