/**
 * @module bench/peers-report
 * The pure pieces of `npm run bench:peers`: reading the prefix-cache counters out of a vLLM-style metrics page,
 * CPU time out of /proc/<pid>/stat, and the side-by-side Markdown tables of the routers compared.
 */
import { formatMs } from './report.js';
import { summarize, type Summary } from './stats.js';

/** The prefix-cache counters of one model server (vLLM's `vllm:prefix_cache_hits` / `_queries`, in tokens). */
export interface PrefixCacheCounters {
  hits: number;
  queries: number;
}

/**
 * Sums `vllm:prefix_cache_hits` and `vllm:prefix_cache_queries` over every label set of a Prometheus text page.
 * Counters are exposed with or without the `_total` suffix depending on the client library; both are read, and a
 * page lacking them gives zeros.
 *
 * @example parsePrefixCacheCounters('vllm:prefix_cache_hits_total{model_name="m"} 96\n') // { hits: 96, queries: 0 }
 */
export function parsePrefixCacheCounters(page: string): PrefixCacheCounters {
  const counters: PrefixCacheCounters = { hits: 0, queries: 0 };
  for (const line of page.split('\n')) {
    const m = /^vllm:prefix_cache_(hits|queries)(?:_total)?(?:\{[^}]*\})?\s+(\S+)/.exec(line.trim());
    if (!m) continue;
    const value = Number(m[2]);
    if (Number.isFinite(value)) counters[m[1] as 'hits' | 'queries'] += value;
  }
  return counters;
}

/** user + system CPU seconds of one process from the text of its /proc/<pid>/stat (clock ticks of 1/100 s). */
export function cpuSecondsFromStat(stat: string, ticksPerSecond = 100): number {
  // The command name (field 2) may hold spaces and parentheses; the fields after its last ')' are fixed.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

/** One router at one rate, as the comparison table shows it. */
export interface PeerRow {
  router: string;
  qps: number;
  ok: number;
  sent: number;
  ttftMs: Summary;
  interTokenMs: Summary;
  e2eMs: Summary;
  outputTokensPerSecond: number;
  /** Fleet-wide prefix-cache hit ratio over the run (hits / queries, tokens); NaN when nothing was queried. */
  prefixHitRatio: number;
  /** CPU seconds of the router's processes per successful request; NaN when unknown. */
  cpuMsPerRequest: number;
  /** CPU milliseconds per second the router spends with no traffic (health checks, metrics scraping). */
  idleCpuMsPerSecond: number;
  /**
   * CPU per request over a stretch of the same traffic after the measured one, once the router has been serving (a
   * JIT runtime has compiled its request path by then); NaN when not measured.
   */
  warmCpuMsPerRequest: number;
}

/** Idle added latency of one router: sequential single requests through it vs direct to one simulator. */
export interface IdleRow {
  router: string;
  samples: number;
  directTtftMs: Summary;
  routedTtftMs: Summary;
}

function triple(s: Summary): string {
  return `${formatMs(s.p50)} / ${formatMs(s.p90)} / ${formatMs(s.p99)}`;
}

function ratio(value: number): string {
  return Number.isFinite(value) ? `${(value * 100).toFixed(1)} %` : '–';
}

function fixed(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '–';
}

/** How a router paces the tokens of its streams, beyond the ITL percentiles over every gap. */
export interface TokenPacing {
  router: string;
  /** Share of the gaps between tokens under 1 ms: tokens held back and delivered together. */
  burstShare: number;
  /** The gaps from the sixth on, after the start of a stream where a router may hold tokens back. */
  laterGapsMs: Summary;
}

/** Gaps under this are tokens that reached the client together, not paced by the model server. */
const BURST_GAP_MS = 1;
/** Gaps before this one in each stream are left out of `laterGapsMs`. */
const LATER_FROM_GAP = 5;

/** The token pacing of one router's successful streams (each given as its list of gaps between tokens, in ms). */
export function tokenPacing(router: string, streams: readonly (readonly number[])[]): TokenPacing {
  const gaps = streams.flat();
  return {
    router,
    burstShare: gaps.length ? gaps.filter((g) => g < BURST_GAP_MS).length / gaps.length : NaN,
    laterGapsMs: summarize(streams.flatMap((s) => s.slice(LATER_FROM_GAP))),
  };
}

/** The pacing table: bursts and the later gaps' percentiles, one row per router. */
export function tokenPacingTable(rows: readonly TokenPacing[]): string {
  return [
    '| Router | gaps under 1 ms | ITL from the 6th gap p50/p90/p99 ms |',
    '| --- | ---: | ---: |',
    ...rows.map((r) => `| ${r.router} | ${ratio(r.burstShare)} | ${triple(r.laterGapsMs)} |`),
  ].join('\n');
}

/** The load table: one row per router and rate, rates grouped together so routers sit side by side. */
export function peersLoadTable(rows: readonly PeerRow[]): string {
  const sorted = [...rows].sort((a, b) => a.qps - b.qps);
  return [
    '| req/s | Router | ok/sent | TTFT p50/p90/p99 ms | ITL p50/p90/p99 ms | E2E p50/p90/p99 ms | out tok/s | prefix hits | router CPU ms/req | idle CPU ms/s | warm CPU ms/req |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...sorted.map(
      (r) =>
        `| ${r.qps} | ${r.router} | ${r.ok}/${r.sent} | ${triple(r.ttftMs)} | ${triple(r.interTokenMs)} | ` +
        `${triple(r.e2eMs)} | ${fixed(r.outputTokensPerSecond, 0)} | ${ratio(r.prefixHitRatio)} | ` +
        `${fixed(r.cpuMsPerRequest, 2)} | ${fixed(r.idleCpuMsPerSecond, 1)} | ` +
        `${fixed(r.warmCpuMsPerRequest, 2)} |`,
    ),
  ].join('\n');
}

/** The idle table: TTFT through each router, direct to one simulator, and the difference of p50s and p99s. */
export function peersIdleTable(rows: readonly IdleRow[]): string {
  return [
    '| Router | samples | routed TTFT p50/p99 ms | direct TTFT p50/p99 ms | added p50 ms | added p99 ms |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.router} | ${r.samples} | ${formatMs(r.routedTtftMs.p50)} / ${formatMs(r.routedTtftMs.p99)} | ` +
        `${formatMs(r.directTtftMs.p50)} / ${formatMs(r.directTtftMs.p99)} | ` +
        `${fixed(r.routedTtftMs.p50 - r.directTtftMs.p50, 2)} | ${fixed(r.routedTtftMs.p99 - r.directTtftMs.p99, 2)} |`,
    ),
  ].join('\n');
}

/** Which rows are ours and which peers the targets of issue 16 are measured against. */
export interface TargetNames {
  ours: readonly string[];
  roundRobin: string;
  sglang: string;
}

/**
 * The targets of issue 16 checked on one run, as Markdown bullets: idle added TTFT p50 ≤ vllm-router round robin's
 * + 0.5 ms and p99 ≤ 3 ms; ITL p90 at the highest rate ≤ sglang-router's; CPU per request ≤ sglang-router's × 1.5.
 * The CPU verdict is on the warm figures when both rows have one (what a router that has been serving costs per
 * request), on the measured window's otherwise; the line gives both. A target whose reference row is missing says so
 * instead of passing.
 */
export function targetChecks(
  idle: readonly IdleRow[],
  rows: readonly PeerRow[],
  names: TargetNames,
): string[] {
  const added = (r: IdleRow, p: 'p50' | 'p99'): number => r.routedTtftMs[p] - r.directTtftMs[p];
  const verdict = (ok: boolean): string => (ok ? 'met' : 'NOT met');
  const topRate = Math.max(...rows.map((r) => r.qps));
  const at = (router: string): PeerRow | undefined =>
    rows.find((r) => r.router === router && r.qps === topRate);
  const rr = idle.find((r) => r.router === names.roundRobin);
  const sglang = at(names.sglang);
  const lines: string[] = [];
  for (const name of names.ours) {
    const mine = idle.find((r) => r.router === name);
    if (mine && rr) {
      const limit = added(rr, 'p50') + 0.5;
      lines.push(
        `- ${name}, idle added TTFT p50 ${fixed(added(mine, 'p50'), 2)} ms ≤ round robin's + 0.5 = ` +
          `${fixed(limit, 2)} ms: ${verdict(added(mine, 'p50') <= limit)}; added p99 ${fixed(added(mine, 'p99'), 2)} ms ` +
          `≤ 3 ms: ${verdict(added(mine, 'p99') <= 3)}`,
      );
    } else lines.push(`- ${name}, idle added TTFT: no ${mine ? names.roundRobin : name} idle row to compare`);
    const load = at(name);
    if (load && sglang) {
      const windowLimit = sglang.cpuMsPerRequest * 1.5;
      const warm = Number.isFinite(load.warmCpuMsPerRequest) && Number.isFinite(sglang.warmCpuMsPerRequest);
      const cpu = warm ? load.warmCpuMsPerRequest : load.cpuMsPerRequest;
      const cpuLimit = warm ? sglang.warmCpuMsPerRequest * 1.5 : windowLimit;
      lines.push(
        `- ${name} at ${topRate} req/s, ITL p90 ${fixed(load.interTokenMs.p90, 2)} ms ≤ sglang-router's ` +
          `${fixed(sglang.interTokenMs.p90, 2)} ms: ${verdict(load.interTokenMs.p90 <= sglang.interTokenMs.p90)}; ` +
          `${warm ? 'warm ' : ''}CPU ${fixed(cpu, 2)} ms/request ≤ sglang-router's × 1.5 = ${fixed(cpuLimit, 2)} ms: ` +
          `${verdict(cpu <= cpuLimit)}` +
          (warm
            ? ` (over the measured window from a fresh start: ${fixed(load.cpuMsPerRequest, 2)} against ` +
              `${fixed(windowLimit, 2)} ms)`
            : ''),
      );
    } else
      lines.push(`- ${name} under load: no ${load ? names.sglang : name} row at ${topRate} req/s to compare`);
  }
  return lines;
}
