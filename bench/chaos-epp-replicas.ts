/**
 * @module bench/chaos-epp-replicas
 * `npm run chaos -- --scenario epp-replicas`: one of N active-active EPP replicas (`startLocalStack` with
 * `eppReplicas`, each an `llmisvc epp` process) killed under open-loop streaming load — drained with SIGTERM, and
 * SIGKILLed — behind the builtin gateway and behind a real Envoy, on a fresh stack each. Counted: failed requests,
 * split into those in flight at the kill (already routed) and those started after it (not yet routed: the target is
 * none), and the fleet's prefix-cache hit ratio (the simulators' own counters) over the second quarter (warm, before
 * the kill) and the second half (after it; the restarted replica starts with an empty index).
 */
import { startLocalStack, type LocalStack, type StackEvent } from '../src/local/index.js';
import { parsePrefixCacheCounters } from '../src/bench/peers-report.js';
import { load, log, openLoop, sleep, type Outcome } from './chaos-common.js';
import type { ScenarioResult } from './chaos-serving.js';

/** Prompts with 32 shared system-like prefixes and unique tails, as the other serving scenarios. */
function prompt(i: number): string {
  const user = i % 32;
  return `You are assistant number ${user}. ${'Context sentence for this user. '.repeat(24)} Question ${i}: what is ${i} + ${user}?`;
}

async function fleetCounters(stack: LocalStack): Promise<{ hits: number; queries: number }> {
  const pages = await Promise.all(
    stack.endpoints.map((e) =>
      fetch(`http://${e.address}/metrics`)
        .then((r) => r.text())
        .catch(() => ''),
    ),
  );
  return pages
    .map(parsePrefixCacheCounters)
    .reduce((a, b) => ({ hits: a.hits + b.hits, queries: a.queries + b.queries }), { hits: 0, queries: 0 });
}

const ratio = (a: { hits: number; queries: number }, b: { hits: number; queries: number }) =>
  b.queries > a.queries ? Math.round(((b.hits - a.hits) / (b.queries - a.queries)) * 1000) / 1000 : NaN;

interface KillRun {
  gateway: 'builtin' | 'envoy';
  signal: 'SIGTERM' | 'SIGKILL';
  requests: number;
  skippedAtMaxInFlight: number;
  inFlightAtKill: number;
  failed: number;
  failedInFlightAtKill: number;
  failedStartedAfterKill: number;
  failedSamples: string[];
  victimExitedAfterMs: number | null;
  victimBackAfterMs: number | null;
  hitRatioBeforeKill: number;
  hitRatioAfterKill: number;
}

async function killRun(opts: {
  gateway: 'builtin' | 'envoy';
  signal: 'SIGTERM' | 'SIGKILL';
  replicas: number;
  rate: number;
  seconds: number;
  maxTokens: number;
  envoyBin: string | undefined;
}): Promise<KillRun> {
  const events: { t: number; e: StackEvent }[] = [];
  const stack = await startLocalStack({
    port: 0,
    gateway: opts.gateway,
    eppReplicas: opts.replicas,
    envoyBin: opts.envoyBin,
    onEvent: (e) => events.push({ t: performance.now(), e }),
  });
  try {
    const victim = 'epp-1';
    const t0 = performance.now();
    let killAt = NaN;
    // The hit ratio before the kill is taken over the second quarter: the first holds every prefix's first (cold)
    // request, which would make any later window look better.
    let warm = await fleetCounters(stack);
    let atKill = warm;
    const killer = (async () => {
      await sleep((opts.seconds * 1000) / 4);
      warm = await fleetCounters(stack);
      await sleep((opts.seconds * 1000) / 4);
      atKill = await fleetCounters(stack);
      killAt = performance.now() - t0;
      process.kill(stack.pids()[victim]!, opts.signal);
    })();
    const { outcomes, skipped } = await openLoop({
      rate: opts.rate,
      durationMs: opts.seconds * 1000,
      maxInFlight: 256,
      shape: (i) => ({
        baseUrl: stack.baseUrl,
        model: stack.model,
        prompt: prompt(i),
        maxTokens: opts.maxTokens,
        stream: true,
        timeoutMs: 60_000,
      }),
      t0,
    });
    await killer;
    const end = await fleetCounters(stack);
    const since = (type: string) =>
      events.find(
        (x) =>
          x.t - t0 > killAt &&
          x.e.type === type &&
          'name' in x.e &&
          x.e.name === victim &&
          (type !== 'ready' || ('restarts' in x.e && x.e.restarts > 0)),
      );
    const exited = since('exited');
    const back = since('ready');
    const failed = outcomes.filter((o: Outcome) => o.result !== 'ok');
    const inFlight = (o: Outcome) => o.start < killAt && o.end > killAt;
    return {
      gateway: opts.gateway,
      signal: opts.signal,
      requests: outcomes.length,
      skippedAtMaxInFlight: skipped,
      inFlightAtKill: outcomes.filter(inFlight).length,
      failed: failed.length,
      failedInFlightAtKill: failed.filter(inFlight).length,
      failedStartedAfterKill: failed.filter((o) => o.start > killAt).length,
      failedSamples: [...new Set(failed.map((o) => `${o.status} ${o.error ?? ''}`.slice(0, 120)))].slice(
        0,
        3,
      ),
      victimExitedAfterMs: exited ? Math.round(exited.t - t0 - killAt) : null,
      victimBackAfterMs: back ? Math.round(back.t - t0 - killAt) : null,
      hitRatioBeforeKill: ratio(warm, atKill),
      hitRatioAfterKill: ratio(atKill, end),
    };
  } finally {
    await stack.stop();
  }
}

export async function eppReplicasScenario(opts: {
  replicas: number;
  rate: number;
  seconds: number;
  maxTokens: number;
}): Promise<ScenarioResult> {
  const S = 'epp-replicas';
  const loadStart = load();
  const envoyBin = process.env['ENVOY_BIN'];
  const runs: KillRun[] = [];
  for (const gateway of ['builtin', 'envoy'] as const)
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      log(S, `${gateway} gateway, ${opts.replicas} replicas: ${signal} epp-1 at half time (load ${load()})`);
      runs.push(await killRun({ ...opts, gateway, signal, envoyBin }));
      log(S, JSON.stringify(runs.at(-1)));
    }
  const problems: string[] = [];
  for (const r of runs) {
    if (r.failedStartedAfterKill)
      problems.push(
        `${r.gateway} ${r.signal}: ${r.failedStartedAfterKill} requests started after the kill failed (not yet routed)`,
      );
    if (r.signal === 'SIGTERM' && r.failed)
      problems.push(`${r.gateway} SIGTERM: ${r.failed} requests failed during a graceful drain`);
    if (r.gateway === 'builtin' && r.failed)
      problems.push(
        `builtin ${r.signal}: ${r.failed} requests failed (the builtin gateway needs no stream after the decision)`,
      );
    if (r.hitRatioAfterKill < r.hitRatioBeforeKill - 0.05)
      problems.push(
        `${r.gateway} ${r.signal}: prefix hit ratio fell from ${r.hitRatioBeforeKill} to ${r.hitRatioAfterKill} after the kill`,
      );
  }
  return {
    scenario: S,
    command: `npm run chaos -- --scenario epp-replicas --epp-replicas ${opts.replicas} --rate ${opts.rate} --seconds ${opts.seconds} --max-tokens ${opts.maxTokens}`,
    loadStart,
    loadEnd: load(),
    figures: { replicas: opts.replicas, rate: opts.rate, seconds: opts.seconds, runs },
    summary: [
      `${opts.replicas} active-active \`llmisvc epp\` processes behind each gateway, 4 simulators, ${opts.rate} streaming req/s for ${opts.seconds} s per run; epp-1 killed at half time (the supervisor restarts it, as a Deployment would).`,
      ...runs.map(
        (r) =>
          `${r.gateway} ${r.signal}: ${r.requests} requests, ${r.inFlightAtKill} in flight at the kill; failed ${r.failed} (${r.failedInFlightAtKill} in flight at the kill, ${r.failedStartedAfterKill} started after it); the stack saw the replica exit after ${r.victimExitedAfterMs ?? '–'} ms, back after ${r.victimBackAfterMs ?? '–'} ms; fleet prefix hit ratio ${r.hitRatioBeforeKill} in the quarter before the kill, ${r.hitRatioAfterKill} in the half after it.${r.failedSamples.length ? ` Failures: ${r.failedSamples.join('; ')}` : ''}`,
      ),
    ],
    problems,
  };
}
