/**
 * @module bench/sweep
 * Runs a workload at several loads, and the same sweep over several setups. A setup is a {@link BenchTarget}: a
 * name and a way to start it and get a URL. This is the extension point of `llmisvc bench --compare`: a target that
 * starts a simulated fleet with one routing configuration (through `llmisvc up`'s orchestration) plugs in here
 * unchanged, and the report compares the setups on identical, seeded traffic.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { runLoad, type LoadOptions, type LoadProgress, type LoadResult } from './load.js';
import type { ReportSeries } from './report.js';
import type { Workload } from './workloads.js';

/** Something to benchmark: started before its sweep, stopped after it. */
export interface BenchTarget {
  name: string;
  start(): Promise<{ url: string; stop(): Promise<void> }>;
}

/** A target that is already running at `url` (nothing to start or stop). */
export function urlTarget(name: string, url: string): BenchTarget {
  return { name, start: () => Promise.resolve({ url, stop: () => Promise.resolve() }) };
}

export interface SweepOptions extends Omit<LoadOptions, 'qps' | 'workload' | 'url' | 'onProgress'> {
  /** The loads to run, in order. */
  qps: readonly number[];
  /** A fresh workload for each run, so every run (and every setup) sees the same request sequence. */
  workload: () => Workload;
  /** Pause between runs so one run's backlog does not leak into the next, in milliseconds (default 0). */
  pauseMs?: number;
  onRunStart?: (target: string, qps: number) => void;
  onProgress?: (target: string, qps: number, progress: LoadProgress) => void;
  onRunEnd?: (target: string, result: LoadResult) => void;
}

/** Runs the sweep against one URL. */
export async function runSweep(url: string, name: string, options: SweepOptions): Promise<LoadResult[]> {
  const results: LoadResult[] = [];
  for (const [i, qps] of options.qps.entries()) {
    if (options.signal?.aborted) break;
    if (i > 0 && options.pauseMs) await sleep(options.pauseMs);
    options.onRunStart?.(name, qps);
    const {
      onProgress,
      qps: _all,
      workload,
      pauseMs: _pause,
      onRunStart: _s,
      onRunEnd: _e,
      ...load
    } = options;
    const result = await runLoad({
      ...load,
      url,
      qps,
      workload: workload(),
      ...(onProgress ? { onProgress: (p: LoadProgress) => onProgress(name, qps, p) } : {}),
    });
    options.onRunEnd?.(name, result);
    results.push(result);
  }
  return results;
}

/** Runs the same sweep over each target in turn (each started and stopped around its sweep). */
export async function runComparison(
  targets: readonly BenchTarget[],
  options: SweepOptions,
): Promise<ReportSeries[]> {
  const series: ReportSeries[] = [];
  for (const target of targets) {
    if (options.signal?.aborted) break;
    const running = await target.start();
    try {
      series.push({ name: target.name, results: await runSweep(running.url, target.name, options) });
    } finally {
      await running.stop();
    }
  }
  return series;
}
