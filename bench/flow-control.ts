/**
 * @module bench/flow-control
 * `npm run bench:flow-control`: does flow control keep Critical traffic fast under overload? Two simulators (4
 * sequences each) behind the builtin gateway and the EPP with the `flowControl` gate, a concurrency detector at the
 * simulators' batch size, and `priority-holdback-policy` keeping the last quarter of the pool for priority 10.
 * Phases, each on fresh processes state-wise (the queue drains between them): Critical alone (the unloaded
 * baseline), then Critical at the same rate plus Standard traffic at twice the pool's capacity (the burst), then
 * the same burst with the gate off (today's behaviour, for contrast). Reports Critical's TTFT percentiles, every
 * status, and checks that each request got exactly one answer and the flow controller's outcomes add up to what
 * was sent. Writes bench/out/flow-control/report.md (raw; the curated summary is bench/results/flow-control/README.md).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import { machineDescription, percentile, poissonArrivals } from '../src/bench/index.js';
import { startEpp, type RunningEpp } from '../src/epp/index.js';
import { startBuiltinGateway } from '../src/gateway/index.js';
import { startSimulator } from '../src/sim/index.js';
import { rawOutputDir } from './output.js';

const out = rawOutputDir('flow-control');
const SEQS = 4;
const SIMS = 2;
const OUTPUT_TOKENS = 32;
// ~250 tokens at 2500 prefill tokens/s and 40 ms a token: the same ~100 ms TTFT and ~1.4 s requests as a bigger
// model, with a quarter of the chunks and tokenising for the shared machine to push through.
const PROMPT = 'lorem ipsum dolor sit amet '.repeat(37);
const CRITICAL_QPS = 1;
const DURATION_MS = Number(process.env['FLOW_BENCH_MS'] ?? 30_000);

const config = (gate: boolean) => `apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
featureGates: [flowControl=${gate}]
plugins:
- type: queue-scorer
- type: active-request-scorer
- name: detector
  type: concurrency-detector
  parameters: {maxConcurrency: ${SEQS}}
- name: holdback
  type: priority-holdback-policy
  parameters: {domain: explicit, ceilings: {10: 1.0, 0: 0.5}}
schedulingProfiles:
- name: default
  plugins: [{pluginRef: detector}, {pluginRef: queue-scorer}, {pluginRef: active-request-scorer}]
flowControl:
  saturationDetector: {pluginRef: detector}
  usageLimitPolicyPluginRef: holdback
  defaultRequestTTL: 5s
`;

interface Result {
  critical: boolean;
  status: number;
  ttftMs: number | undefined;
  answers: number;
}

async function one(port: number, agent: Agent, critical: boolean): Promise<Result> {
  const started = performance.now();
  let answers = 0;
  try {
    const res = await request(`http://127.0.0.1:${port}/v1/completions`, {
      method: 'POST',
      dispatcher: agent,
      headers: {
        'content-type': 'application/json',
        ...(critical ? { 'x-gateway-inference-objective': 'critical' } : {}),
      },
      body: JSON.stringify({ model: 'sim-model', prompt: PROMPT, max_tokens: OUTPUT_TOKENS, stream: true }),
    });
    answers++;
    let ttft: number | undefined;
    for await (const chunk of res.body) {
      if (ttft === undefined && (chunk as Buffer).includes('data:')) ttft = performance.now() - started;
    }
    return { critical, status: res.statusCode, ttftMs: res.statusCode === 200 ? ttft : undefined, answers };
  } catch {
    return { critical, status: 0, ttftMs: undefined, answers };
  }
}

async function phase(
  name: string,
  gate: boolean,
  standardQps: number,
  seed: number,
  durationMs = DURATION_MS,
) {
  const sims = [];
  for (let i = 0; i < SIMS; i++)
    sims.push(
      await startSimulator({
        port: 0,
        podName: `sim-${i}`,
        maxNumSeqs: SEQS,
        seed: i,
        prefillTokensPerSecond: 2500,
        decodeBaseMs: 40,
      }),
    );
  const epp: RunningEpp = await startEpp({
    host: '127.0.0.1',
    grpcPort: 0,
    grpcHealthPort: 0,
    metricsPort: 0,
    endpoints: sims.map((s) => ({ address: `127.0.0.1:${s.port}` })),
    refreshMetricsIntervalMs: 50,
    configText: config(gate),
    directory: { models: new Map(), objectives: new Map([['critical', 10]]) },
    logger: pino({ level: 'silent' }),
  });
  const gateway = await startBuiltinGateway({
    port: 0,
    routes: [{ prefix: '/', backend: 'pool' }],
    eppAddress: `127.0.0.1:${epp.grpcPort}`,
    serviceEndpoints: [],
    eppTimeoutMs: 60_000,
  });
  const agent = new Agent({ connections: 512 });
  const critical = poissonArrivals(seed, CRITICAL_QPS, durationMs).map((t) => ({ t, critical: true }));
  const standard =
    standardQps > 0
      ? poissonArrivals(seed + 1, standardQps, durationMs).map((t) => ({ t, critical: false }))
      : [];
  const arrivals = [...critical, ...standard].sort((a, b) => a.t - b.t);
  const start = performance.now();
  const pending: Promise<Result>[] = [];
  for (const a of arrivals) {
    const wait = a.t - (performance.now() - start);
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    pending.push(one(gateway.port, agent, a.critical));
  }
  const results = await Promise.all(pending);
  const metrics = await (await request(`http://127.0.0.1:${epp.metricsPort}/metrics`)).body.text();
  const outcomes: Record<string, number> = {};
  for (const line of metrics.split('\n')) {
    const m = /^llm_d_epp_flow_control_requests_total\{outcome="(\w+)",priority="(-?\d+)"/.exec(line);
    if (m)
      outcomes[`${m[1]}/p${m[2]}`] = (outcomes[`${m[1]}/p${m[2]}`] ?? 0) + Number(line.split(' ').at(-1));
  }
  await gateway.close();
  await epp.close();
  for (const s of sims) await s.close();
  await agent.close();
  const ttft = results
    .filter((r) => r.critical && r.ttftMs !== undefined)
    .map((r) => r.ttftMs!)
    .sort((a, b) => a - b);
  const statuses: Record<string, number> = {};
  for (const r of results) {
    const k = `${r.critical ? 'critical' : 'standard'} ${r.status}`;
    statuses[k] = (statuses[k] ?? 0) + 1;
  }
  const outcomeTotal = Object.values(outcomes).reduce((a, b) => a + b, 0);
  return {
    name,
    sent: arrivals.length,
    answeredOnce: results.filter((r) => r.answers === 1 && r.status !== 0).length,
    lost: results.filter((r) => r.status === 0).length,
    statuses,
    outcomes,
    outcomeTotal,
    criticalTtft: {
      n: ttft.length,
      p50: percentile(ttft, 50),
      p90: percentile(ttft, 90),
      p99: percentile(ttft, 99),
    },
  };
}

const capacityQps = (SIMS * SEQS) / 1.4; // ~1.4 s per request (100 ms prefill + 32 tokens at ~40 ms)
// Warm-up (JIT, connection pools), discarded.
await phase('warm-up', true, 0, 99, 3000);
const load = [loadavg()[0]!.toFixed(2)];
const baseline = await phase('Critical alone (unloaded)', true, 0, 1);
load.push(loadavg()[0]!.toFixed(2));
const burst = await phase('Critical + Standard at 2x capacity, flow control on', true, 2 * capacityQps, 1);
load.push(loadavg()[0]!.toFixed(2));
const off = await phase('Critical + Standard at 2x capacity, flow control off', false, 2 * capacityQps, 1);
load.push(loadavg()[0]!.toFixed(2));
const ratio = burst.criticalTtft.p90 / baseline.criticalTtft.p90;
const fmt = (n: number) => n.toFixed(1);
const rows = [baseline, burst, off]
  .map(
    (p) =>
      `| ${p.name} | ${p.sent} | ${p.answeredOnce} | ${p.lost} | ${p.criticalTtft.n} | ${fmt(p.criticalTtft.p50)} | ${fmt(p.criticalTtft.p90)} | ${fmt(p.criticalTtft.p99)} | ${Object.entries(
        p.statuses,
      )
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ')} | ${
        Object.entries(p.outcomes)
          .map(([k, v]) => `${k}: ${v}`)
          .join(', ') || '—'
      } |`,
  )
  .join('\n');
const report = `# Flow control under a 2× overload burst

- Machine: ${machineDescription()} (shared; 1-minute load average before/between/after phases: ${load.join(' → ')})
- Date: ${new Date().toISOString()}
- Command: \`npm run bench:flow-control\` (FLOW_BENCH_MS=${DURATION_MS})
- Setup: ${SIMS} simulators × ${SEQS} sequences, ~250-token prompts (2500 prefill tokens/s), ${OUTPUT_TOKENS} streamed output tokens at ~40 ms; builtin gateway; EPP with
  concurrency-detector (maxConcurrency ${SEQS}) and priority-holdback (priority 10 → 1.0, priority 0 → 0.5), TTL 5 s.
  Critical (objective priority 10) at ${CRITICAL_QPS} req/s in every phase; Standard at ${fmt(2 * capacityQps)} req/s (2× the pool's
  ~${fmt(capacityQps)} req/s) in the burst phases, for ${DURATION_MS / 1000} s.

| Phase | Sent | Answered once | Lost | Critical 200s | TTFT p50 ms | TTFT p90 ms | TTFT p99 ms | Statuses | Flow-control outcomes |
|---|---|---|---|---|---|---|---|---|---|
${rows}

Critical TTFT p90 under the burst with flow control: ${fmt(ratio * 100)} % of its unloaded value (target ≤ 120 %).
Every request was answered exactly once: ${[baseline, burst, off].every((p) => p.answeredOnce === p.sent && p.lost === 0) ? 'yes' : 'NO'};
flow-control outcomes add up to the requests sent (gate on): ${[baseline, burst].every((p) => p.outcomeTotal === p.sent) ? 'yes' : 'NO'}.
`;
await mkdir(out, { recursive: true });
await writeFile(join(out, 'report.md'), report);
console.log(report);
