/**
 * @module bench/report
 * Turns load results into what people read: a Markdown report (one table row per setup and QPS, the endpoints that
 * served, and the headline comparison when there are several setups) and SVG charts of latency and throughput
 * against QPS. PNG is not produced: the only clean way here would be a headless browser, too heavy for a CLI.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, totalmem, type } from 'node:os';
import { join } from 'node:path';
import { lineChartSvg } from './chart.js';
import type { LoadResult } from './load.js';

/** The results of one setup (a routing configuration, a URL) across the QPS it was run at. */
export interface ReportSeries {
  name: string;
  results: readonly LoadResult[];
}

export interface ReportContext {
  title: string;
  /** The command that produced the results, so they can be reproduced. */
  command?: string;
  /** ISO date of the run. */
  date: string;
  /** Where it ran; see {@link machineDescription}. */
  machine: string;
  /** Workload name and parameters. */
  workload: string;
  params: Readonly<Record<string, number | string>>;
  /** Free text: what the setups are, what the target was. */
  notes?: string;
}

/** CPU, memory, OS and Node version of this machine, for the report header. */
export function machineDescription(): string {
  const cpu = cpus();
  return (
    `${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ` +
    `${type()} ${release()}, Node ${process.version}`
  );
}

/** The 1, 5 and 15 minute load averages, for the other work on a shared machine beside each figure. */
export function loadAverage(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

/** A latency in milliseconds with sensible precision; "–" when there is none. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  return ms.toFixed(2);
}

function triple(summary: LoadResult['ttftMs']): string {
  return `${formatMs(summary.p50)} / ${formatMs(summary.p90)} / ${formatMs(summary.p99)}`;
}

/** The report as Markdown. */
export function markdownReport(context: ReportContext, series: readonly ReportSeries[]): string {
  const lines: string[] = [`# ${context.title}`, ''];
  lines.push(`- Date: ${context.date}`, `- Machine: ${context.machine}`);
  if (context.command) lines.push(`- Command: \`${context.command}\``);
  const params = Object.entries(context.params)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  lines.push(`- Workload: ${context.workload}${params ? ` (${params})` : ''}`);
  if (context.notes) lines.push('', context.notes);
  lines.push(
    '',
    'Latencies in milliseconds unless marked, as p50 / p90 / p99 over successful requests; throughput over the time ' +
      'from the first request sent to the last response finished.',
    '',
    '| Setup | QPS | Sent | OK | Errors | Shed (429) | Timeouts | TTFT | Inter-token | End to end | Output tok/s | Req/s |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const s of series) {
    for (const r of s.results) {
      lines.push(
        `| ${s.name} | ${r.qps} | ${r.counts.sent} | ${r.counts.ok} | ${r.counts.errors} | ${r.counts.shed} | ` +
          `${r.counts.timeouts} | ${triple(r.ttftMs)} | ${triple(r.interTokenMs)} | ${triple(r.e2eMs)} | ` +
          `${r.outputTokensPerSecond.toFixed(0)} | ${r.requestsPerSecond.toFixed(2)} |`,
      );
    }
  }
  if (series.length > 1) lines.push('', ...comparison(series));
  lines.push('', '## Requests per endpoint', '');
  for (const s of series) {
    for (const r of s.results) {
      const pods = Object.entries(r.pods)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([pod, n]) => `${pod} ${n}`)
        .join(', ');
      lines.push(`- ${s.name} at ${r.qps} QPS: ${pods || 'no x-inference-pod header seen'}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Headline numbers of each setup against the first: peak throughput, and TTFT p90 at the highest QPS. */
function comparison(series: readonly ReportSeries[]): string[] {
  const reference = series[0] as ReportSeries;
  const peak = (s: ReportSeries): number => Math.max(0, ...s.results.map((r) => r.outputTokensPerSecond));
  const atTop = (s: ReportSeries): LoadResult | undefined => [...s.results].sort((a, b) => b.qps - a.qps)[0];
  const lines = [
    `## Compared with ${reference.name}`,
    '',
    '| Setup | Peak output tok/s | × reference | TTFT p90 at highest QPS | reference ÷ this |',
    '|---|---:|---:|---:|---:|',
  ];
  const refTtft = atTop(reference)?.ttftMs.p90 ?? NaN;
  for (const s of series) {
    const ttft = atTop(s)?.ttftMs.p90 ?? NaN;
    const speedup = peak(reference) > 0 ? (peak(s) / peak(reference)).toFixed(2) : '–';
    const ttftRatio = ttft > 0 && Number.isFinite(refTtft) ? (refTtft / ttft).toFixed(1) : '–';
    lines.push(`| ${s.name} | ${peak(s).toFixed(0)} | ${speedup} | ${formatMs(ttft)} | ${ttftRatio} |`);
  }
  return lines;
}

/** The charts of a report: file name and SVG text. */
export function reportCharts(series: readonly ReportSeries[]): { file: string; svg: string }[] {
  const line = (pick: (r: LoadResult) => number): { name: string; points: [number, number][] }[] =>
    series.map((s) => ({ name: s.name, points: s.results.map((r) => [r.qps, pick(r)] as [number, number]) }));
  const spread = (values: number[]): number => {
    const positive = values.filter((v) => v > 0 && Number.isFinite(v));
    return positive.length ? Math.max(...positive) / Math.min(...positive) : 1;
  };
  const ttft = line((r) => r.ttftMs.p90 / 1000);
  return [
    {
      file: 'ttft-p90.svg',
      svg: lineChartSvg({
        title: 'Time to first token, p90',
        xLabel: 'Offered load (QPS)',
        yLabel: 'TTFT p90 (s)',
        series: ttft,
        logY: spread(ttft.flatMap((s) => s.points.map(([, y]) => y))) > 50,
      }),
    },
    {
      file: 'output-throughput.svg',
      svg: lineChartSvg({
        title: 'Output throughput',
        xLabel: 'Offered load (QPS)',
        yLabel: 'Output tokens/s',
        series: line((r) => r.outputTokensPerSecond),
      }),
    },
    {
      file: 'itl-p90.svg',
      svg: lineChartSvg({
        title: 'Inter-token latency, p90',
        xLabel: 'Offered load (QPS)',
        yLabel: 'ITL p90 (ms)',
        series: line((r) => r.interTokenMs.p90),
      }),
    },
  ];
}

/**
 * Writes `report.md`, `results.json` (summaries and per-request records) and the SVG charts into `dir`.
 * Returns the paths written.
 */
export async function writeReport(
  dir: string,
  context: ReportContext,
  series: readonly ReportSeries[],
): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  const write = async (file: string, text: string): Promise<void> => {
    const path = join(dir, file);
    await writeFile(path, text);
    written.push(path);
  };
  await write('report.md', markdownReport(context, series));
  // Per-request token gaps would make the file huge; the summaries keep their percentiles.
  const compact = series.map((s) => ({
    name: s.name,
    results: s.results.map((r) => ({
      ...r,
      records: r.records.map(({ interTokenMs, ...rest }) => ({ ...rest, tokenGaps: interTokenMs.length })),
    })),
  }));
  await write('results.json', `${JSON.stringify({ ...context, series: compact }, null, 1)}\n`);
  for (const chart of reportCharts(series)) await write(chart.file, chart.svg);
  return written;
}
