/**
 * @module bench/chaos-serving
 * The serving scenarios of `npm run chaos`: a model server SIGKILLed mid-stream under load (through
 * `startLocalStack`), the Endpoint Picker SIGKILLed under load (an `llmisvc epp` process behind the builtin gateway)
 * and a memory soak of `llmisvc up` at a steady rate. Every request goes to 127.0.0.1.
 */
import { readFileSync } from 'node:fs';
import { freeLoopbackPort, freeLoopbackPorts } from '../src/process/index.js';
import { join } from 'node:path';
import { percentileOf } from '../src/bench/index.js';
import { startBuiltinGateway } from '../src/gateway/index.js';
import { startLocalStack, type StackEvent } from '../src/local/index.js';
import {
  childrenOf,
  load,
  log,
  openLoop,
  parseUpSummary,
  rssMiB,
  sleep,
  startCli,
  type Outcome,
  type RequestShape,
} from './chaos-common.js';

export interface ScenarioResult {
  scenario: string;
  command: string;
  /** Load average (1, 5, 15 min) at the start and at the end. */
  loadStart: string;
  loadEnd: string;
  figures: Record<string, unknown>;
  /** Lines for the report, figures in words. */
  summary: string[];
  /** Failures of the criteria the issue sets (empty: passed). */
  problems: string[];
}

let promptSeed = 0;
/** Prompts of a few hundred characters: a shared system-like prefix per "user" (32 of them) and a unique tail. */
function prompt(i: number): string {
  const user = i % 32;
  return `You are assistant number ${user}. ${'Context sentence for this user. '.repeat(8)} Question ${promptSeed++}: what is ${i} + ${user}?`;
}

function count(outcomes: Outcome[], filter: (o: Outcome) => boolean): number {
  return outcomes.filter(filter).length;
}

// ---------------------------------------------------------------------------------------------------------------

/**
 * A model server (simulator) SIGKILLed while it streams. In-process `startLocalStack` (builtin gateway, EPP,
 * 4 supervised simulators) under open-loop streaming load; after a warm-up one simulator is killed. Measured: how
 * its in-flight streams end (and how long after the kill), requests sent to it after the kill before its supervisor
 * restarted it (the EPP should stop picking it within one scrape interval), failures anywhere else.
 */
export async function modelServerScenario(opts: {
  rate: number;
  seconds: number;
  maxTokens: number;
}): Promise<ScenarioResult> {
  const S = 'model-server';
  const loadStart = load();
  const events: { t: number; e: StackEvent }[] = [];
  const t0 = performance.now();
  const stack = await startLocalStack({
    port: 0,
    onEvent: (e) => events.push({ t: performance.now() - t0, e }),
  });
  log(S, `stack ready: ${stack.endpoints.length} simulators behind ${stack.url}`);
  const victim = stack.endpoints[1]!;
  const shape = (i: number): RequestShape => ({
    baseUrl: stack.baseUrl,
    model: stack.model,
    prompt: prompt(i),
    maxTokens: opts.maxTokens,
    stream: true,
    timeoutMs: 60_000,
  });
  let killAt = NaN;
  let victimPid = 0;
  const killer = (async () => {
    await sleep(Math.min(5_000, (opts.seconds * 1000) / 3));
    victimPid = stack.pids()[victim.pod]!;
    killAt = performance.now() - t0;
    process.kill(victimPid, 'SIGKILL');
    log(S, `SIGKILL ${victim.pod} (pid ${victimPid}, ${victim.address}) at load ${load()}`);
  })();
  const { outcomes, skipped } = await openLoop({
    rate: opts.rate,
    durationMs: opts.seconds * 1000,
    maxInFlight: 256,
    shape,
    t0,
  });
  await killer;
  const restartedAt = events.find(
    (x) => x.e.type === 'ready' && x.e.name === victim.pod && x.e.restarts > 0 && x.t > killAt,
  )?.t;
  await stack.stop();

  const toVictim = (o: Outcome) => o.pod === victim.pod || (o.error ?? '').includes(victim.address);
  const inFlight = outcomes.filter((o) => toVictim(o) && o.start < killAt && o.end > killAt);
  const inFlightEndMs = inFlight.map((o) => o.end - killAt);
  const window = restartedAt ?? Infinity;
  const sentAfter = outcomes.filter((o) => toVictim(o) && o.start > killAt && o.start < window);
  const lastSentAfterMs = sentAfter.length ? Math.max(...sentAfter.map((o) => o.start - killAt)) : 0;
  const elsewhereFailed = outcomes.filter((o) => o.result !== 'ok' && !toVictim(o));
  const figures = {
    requests: outcomes.length,
    skippedAtMaxInFlight: skipped,
    ok: count(outcomes, (o) => o.result === 'ok'),
    victim: victim.pod,
    killAtMs: Math.round(killAt),
    supervisorRestartedAfterMs: restartedAt === undefined ? null : Math.round(restartedAt - killAt),
    victimInFlightAtKill: inFlight.length,
    victimInFlightResults: Object.fromEntries(
      ['ok', 'error-head', 'error-body', 'timeout'].map((r) => [r, count(inFlight, (o) => o.result === r)]),
    ),
    victimInFlightErrorAfterMs: {
      p50: Math.round(percentileOf(inFlightEndMs, 50)),
      max: Math.round(Math.max(0, ...inFlightEndMs)),
    },
    victimInFlightErrors: [...new Set(inFlight.map((o) => o.error).filter(Boolean))].slice(0, 3),
    sentToVictimAfterKillBeforeRestart: sentAfter.length,
    sentToVictimAfterKillResults: Object.fromEntries(
      ['ok', 'error-head', 'error-body', 'timeout'].map((r) => [r, count(sentAfter, (o) => o.result === r)]),
    ),
    lastSentToVictimAfterKillMs: Math.round(lastSentAfterMs),
    eppScrapeIntervalMs: 50,
    failedElsewhere: elsewhereFailed.length,
    failedElsewhereSamples: elsewhereFailed
      .slice(0, 3)
      .map((o) => `${o.status} ${o.pod ?? ''} ${o.error ?? ''}`),
    p50LatencyMs: Math.round(
      percentileOf(
        outcomes.filter((o) => o.result === 'ok').map((o) => o.end - o.start),
        50,
      ),
    ),
  };
  const problems: string[] = [];
  if (count(inFlight, (o) => o.result === 'timeout') > 0)
    problems.push('a stream cut by the kill hung until the client timeout');
  if (lastSentAfterMs > 50 + 100)
    problems.push(
      `requests still went to the killed server ${Math.round(lastSentAfterMs)} ms after the kill`,
    );
  if (elsewhereFailed.length)
    problems.push(`${elsewhereFailed.length} requests failed outside the killed server`);
  const loadEnd = load();
  return {
    scenario: S,
    command: `npm run chaos -- --scenario model-server --rate ${opts.rate} --seconds ${opts.seconds} --max-tokens ${opts.maxTokens}`,
    loadStart,
    loadEnd,
    figures,
    summary: [
      `${outcomes.length} streaming requests at ${opts.rate}/s for ${opts.seconds} s, 4 simulators; ${victim.pod} SIGKILLed ${(killAt / 1000).toFixed(1)} s after the stack started.`,
      `Its ${inFlight.length} in-flight streams ended ${JSON.stringify(figures.victimInFlightResults)}, the last ${figures.victimInFlightErrorAfterMs.max} ms after the kill (p50 ${figures.victimInFlightErrorAfterMs.p50} ms).`,
      `Requests sent to it after the kill (before the supervisor restarted it ${figures.supervisorRestartedAfterMs ?? '–'} ms later): ${sentAfter.length}, the last ${figures.lastSentToVictimAfterKillMs} ms after the kill (scrape interval 50 ms).`,
      `Failures outside the killed server: ${elsewhereFailed.length}.`,
    ],
    problems,
  };
}

// ---------------------------------------------------------------------------------------------------------------

/**
 * The Endpoint Picker SIGKILLed under load. `startLocalStack` runs its EPP inside its own process, so the EPP here is
 * an `llmisvc epp` process (static mode, the quickstart's rendered config) in front of the stack's simulators, behind
 * an in-process builtin gateway with the pool's failure mode (FailClose). After the kill it is started again on the
 * same ports after `downMs` (default 250 ms, the local supervisor's first restart delay). One replica: the whole
 * picker is gone for the outage (`chaos-epp-replicas.ts` kills one of several).
 */
export async function eppScenario(opts: {
  rate: number;
  seconds: number;
  maxTokens: number;
  logDir: string;
  /** How long the EPP stays down before it is started again (default 250 ms, the local supervisor's first delay). */
  downMs: number;
}): Promise<ScenarioResult> {
  const S = 'epp';
  const loadStart = load();
  const stack = await startLocalStack({ port: 0, routing: 'round-robin' });
  const [grpc, health, metrics] = await freeLoopbackPorts(3);
  const eppArgs = [
    'epp',
    '--endpoints',
    stack.endpoints.map((e) => e.address).join(','),
    '--grpc-port',
    String(grpc),
    '--grpc-health-port',
    String(health),
    '--metrics-port',
    String(metrics),
    '--host',
    '127.0.0.1',
    '--config-text',
    stack.topology.eppConfigText ?? '',
    '--log-level',
    'warn',
  ];
  const eppLog = join(opts.logDir, 'epp.log');
  const eppReady = async (): Promise<void> => {
    for (let i = 0; i < 200; i++) {
      const ok = await fetch(`http://127.0.0.1:${metrics}/metrics`)
        .then((r) => r.ok)
        .catch(() => false);
      if (ok) return;
      await sleep(50);
    }
    throw new Error(`llmisvc epp did not serve metrics; see ${eppLog}`);
  };
  let epp = startCli(eppArgs, eppLog);
  await eppReady();
  await sleep(500); // a few scrapes, so every endpoint has metrics
  const gateway = await startBuiltinGateway({
    port: 0,
    routes: stack.topology.routes.map((r) => ({ prefix: r.prefix, rewrite: r.rewrite, backend: r.backend })),
    eppAddress: `127.0.0.1:${grpc}`,
    serviceEndpoints: stack.endpoints.map((e) => e.address),
    failureMode: stack.topology.failureMode,
  });
  const apiPrefix = stack.topology.routes.find((r) => r.backend === 'service')?.prefix ?? '';
  log(S, `gateway ${gateway.url} → llmisvc epp (pid ${epp.pid}) → ${stack.endpoints.length} simulators`);
  const t0 = performance.now();
  let killAt = NaN;
  let restartedAt = NaN;
  let readyAt = NaN;
  const killer = (async () => {
    await sleep(Math.min(5_000, (opts.seconds * 1000) / 3));
    killAt = performance.now() - t0;
    await epp.kill();
    log(S, `SIGKILL llmisvc epp at load ${load()}`);
    await sleep(opts.downMs);
    restartedAt = performance.now() - t0;
    epp = startCli(eppArgs, eppLog);
    await eppReady();
    readyAt = performance.now() - t0;
    log(S, `llmisvc epp serving again ${Math.round(readyAt - killAt)} ms after the kill`);
  })();
  const { outcomes, skipped } = await openLoop({
    rate: opts.rate,
    durationMs: opts.seconds * 1000,
    maxInFlight: 256,
    shape: (i) => ({
      baseUrl: gateway.url + apiPrefix,
      model: stack.model,
      prompt: prompt(i),
      maxTokens: opts.maxTokens,
      stream: true,
      timeoutMs: 60_000,
    }),
    t0,
  });
  await killer;
  await gateway.close();
  await epp.stop();
  await stack.stop();
  const failed = outcomes.filter((o) => o.result !== 'ok');
  const firstOkAfter = outcomes
    .filter((o) => o.result === 'ok' && o.start > killAt)
    .reduce((m, o) => Math.min(m, o.start), Infinity);
  const figures = {
    requests: outcomes.length,
    skippedAtMaxInFlight: skipped,
    eppReplicas: 1,
    failureMode: stack.topology.failureMode,
    killAtMs: Math.round(killAt),
    eppRestartedAfterMs: Math.round(restartedAt - killAt),
    eppServingAgainAfterMs: Math.round(readyAt - killAt),
    firstOkRequestStartedAfterKillMs: Math.round(firstOkAfter - killAt),
    inFlightAtKill: count(outcomes, (o) => o.start < killAt && o.end > killAt),
    inFlightAtKillOk: count(outcomes, (o) => o.start < killAt && o.end > killAt && o.result === 'ok'),
    failed: failed.length,
    failedByResult: Object.fromEntries(
      ['error-head', 'error-body', 'timeout'].map((r) => [r, count(failed, (o) => o.result === r)]),
    ),
    failedStatuses: Object.fromEntries(
      [...new Set(failed.map((o) => o.status))].map((s) => [String(s), count(failed, (o) => o.status === s)]),
    ),
    failedOutsideOutageWindow: count(failed, (o) => o.end < killAt || o.start > readyAt + 1000),
    failedSamples: [...new Set(failed.map((o) => `${o.status} ${o.error ?? ''}`.slice(0, 160)))].slice(0, 3),
  };
  const problems: string[] = [];
  if (figures.failedByResult['timeout'])
    problems.push(`${figures.failedByResult['timeout']} requests hung until the client timeout`);
  if (figures.failedOutsideOutageWindow)
    problems.push(`${figures.failedOutsideOutageWindow} failures outside the outage`);
  return {
    scenario: S,
    command: `npm run chaos -- --scenario epp --rate ${opts.rate} --seconds ${opts.seconds} --max-tokens ${opts.maxTokens} --epp-down-ms ${opts.downMs}`,
    loadStart,
    loadEnd: load(),
    figures,
    summary: [
      `${outcomes.length} streaming requests at ${opts.rate}/s for ${opts.seconds} s through the builtin gateway (failure mode ${stack.topology.failureMode}) and one \`llmisvc epp\` process; EPP SIGKILLed at ${(killAt / 1000).toFixed(1)} s, started again ${opts.downMs} ms later, serving after ${figures.eppServingAgainAfterMs} ms.`,
      `Streams in flight at the kill (their endpoint was already chosen): ${figures.inFlightAtKill}, of which ${figures.inFlightAtKillOk} completed.`,
      `Failed requests: ${failed.length} (${JSON.stringify(figures.failedStatuses)} by status; ${JSON.stringify(figures.failedByResult)}); the first request to succeed after the kill started ${figures.firstOkRequestStartedAfterKillMs} ms after it.`,
      'One replica, so the outage is total until it is back; the `epp-replicas` scenario kills one of several active-active replicas instead.',
    ],
    problems,
  };
}

// ---------------------------------------------------------------------------------------------------------------

interface RssSample {
  t: number;
  rss: Record<string, number | undefined>;
  load: string;
}

/**
 * `llmisvc up` (builtin gateway + EPP in one process, 4 simulator processes) at a steady rate for `minutes`; RSS of
 * every process sampled each `sampleSeconds`. Growth is judged over the second half (caches filled to their bounds,
 * JIT warm, the heap grown): more than 10 MiB there is reported.
 */
export async function soakScenario(opts: {
  minutes: number;
  rate: number;
  maxTokens: number;
  logDir: string;
  sampleSeconds: number;
}): Promise<ScenarioResult> {
  const S = 'soak';
  const loadStart = load();
  const upLog = join(opts.logDir, 'up.log');
  const port = await freeLoopbackPort();
  const up = startCli(['up', '--port', String(port)], upLog);
  let target: { baseUrl: string; model: string } | undefined;
  for (let i = 0; i < 600 && !target; i++) {
    await sleep(100);
    target = parseUpSummary(readFileSync(upLog, 'utf8'));
  }
  if (!target) throw new Error(`llmisvc up printed no summary; see ${upLog}`);
  const sims = childrenOf(up.pid).filter((c) => c.cmdline.includes('sim-child'));
  const names: Record<string, number> = { 'up (gateway+EPP)': up.pid };
  for (const s of sims) names[`sim ${/"podName":"([^"]+)"/.exec(s.cmdline)?.[1] ?? s.pid}`] = s.pid;
  log(
    S,
    `llmisvc up (pid ${up.pid}) with ${sims.length} simulators; ${opts.rate} req/s for ${opts.minutes} min`,
  );
  const samples: RssSample[] = [];
  const t0 = performance.now();
  const sample = () =>
    samples.push({
      t: Math.round((performance.now() - t0) / 1000),
      rss: Object.fromEntries(Object.entries(names).map(([n, pid]) => [n, rssMiB(pid)])),
      load: load(),
    });
  sample();
  const sampler = setInterval(() => {
    sample();
    const last = samples.at(-1)!;
    log(
      S,
      `t=${last.t}s rss ${Object.values(last.rss)
        .map((v) => v?.toFixed(0))
        .join('/')} MiB, load ${last.load}`,
    );
  }, opts.sampleSeconds * 1000);
  const { outcomes, skipped } = await openLoop({
    rate: opts.rate,
    durationMs: opts.minutes * 60_000,
    maxInFlight: 256,
    shape: (i) => ({
      baseUrl: target.baseUrl,
      model: target.model,
      prompt: prompt(i),
      maxTokens: opts.maxTokens,
      stream: i % 2 === 0,
      timeoutMs: 60_000,
    }),
    t0,
  });
  clearInterval(sampler);
  sample();
  await up.stop();
  const first = samples[0]!;
  const quarter = samples.find((s) => s.t >= (opts.minutes * 60) / 4) ?? first;
  const half = samples.find((s) => s.t >= (opts.minutes * 60) / 2) ?? first;
  const last = samples.at(-1)!;
  const perProcess = Object.keys(names).map((n) => {
    const series = samples.map((s) => s.rss[n]).filter((v): v is number => v !== undefined);
    return {
      process: n,
      startMiB: round1(first.rss[n]),
      at25PercentMiB: round1(quarter.rss[n]),
      at50PercentMiB: round1(half.rss[n]),
      endMiB: round1(last.rss[n]),
      maxMiB: round1(Math.max(...series)),
      growthOverSecondHalfMiB: round1((last.rss[n] ?? 0) - (half.rss[n] ?? 0)),
    };
  });
  const failed = outcomes.filter((o) => o.result !== 'ok');
  const problems: string[] = [];
  for (const p of perProcess)
    if (p.growthOverSecondHalfMiB > 10)
      problems.push(`${p.process} grew ${p.growthOverSecondHalfMiB} MiB over the second half`);
  if (failed.length) problems.push(`${failed.length} requests failed`);
  return {
    scenario: S,
    command: `npm run chaos -- --scenario soak --minutes ${opts.minutes} --rate ${opts.rate} --max-tokens ${opts.maxTokens}`,
    loadStart,
    loadEnd: load(),
    figures: {
      minutes: opts.minutes,
      rate: opts.rate,
      requests: outcomes.length,
      skippedAtMaxInFlight: skipped,
      failed: failed.length,
      failedSamples: failed.slice(0, 3).map((o) => `${o.status} ${o.error ?? ''}`),
      p50LatencyMs: Math.round(
        percentileOf(
          outcomes.map((o) => o.end - o.start),
          50,
        ),
      ),
      rss: perProcess,
      samples,
    },
    summary: [
      `${outcomes.length} requests (half streaming, ${opts.maxTokens} tokens max, prompts with 32 shared prefixes and unique tails) at ${opts.rate}/s for ${opts.minutes} min through \`llmisvc up\`; ${failed.length} failed.`,
      ...perProcess.map(
        (p) =>
          `${p.process}: RSS ${p.startMiB} MiB at start, ${p.at25PercentMiB} at 25 %, ${p.at50PercentMiB} at 50 %, ${p.endMiB} at the end (max ${p.maxMiB}); growth over the second half: ${p.growthOverSecondHalfMiB} MiB.`,
      ),
    ],
    problems,
  };
}

function round1(v: number | undefined): number {
  return v === undefined ? NaN : Math.round(v * 10) / 10;
}
