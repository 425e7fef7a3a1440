/**
 * @module bench/stats
 * Percentile summaries of latency samples. Percentiles interpolate linearly between the two nearest ranks (the
 * "linear" method of NumPy, which inference-perf and vLLM's benchmark scripts use).
 */

export interface Summary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/**
 * The p-th percentile (0–100) of ascending `sorted` values; NaN when there are none. The one definition every
 * benchmark uses (typed arrays too), so their percentiles compare.
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  const a = sorted[low] as number;
  const b = sorted[high] as number;
  return a + (b - a) * (rank - low);
}

/** The p-th percentile of `values` in any order (sorts a copy). */
export function percentileOf(values: Iterable<number>, p: number): number {
  return percentile(Float64Array.from(values).sort(), p);
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const sum = sorted.reduce((total, v) => total + v, 0);
  return {
    count: sorted.length,
    mean: sorted.length ? sum / sorted.length : NaN,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.length ? (sorted.at(-1) as number) : NaN,
  };
}
