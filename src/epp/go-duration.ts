/**
 * @module epp/go-duration
 * Go's `time.ParseDuration`, which upstream plugins use for their duration parameters (directly, or through
 * `metav1.Duration`): a possibly signed sequence of decimal numbers, each with an optional fraction and a unit
 * (`ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`), as in `300ms`, `1.5h`, `2h45m` or `.5s`; or `0` alone. Nothing else:
 * no spaces, no bare numbers but `0`, no unit without a number. Pure; the plugins decide the allowed range.
 */

const NS_PER_UNIT: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  µs: 1e3, // U+00B5 micro sign
  μs: 1e3, // U+03BC Greek mu
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Go's limit: a duration is an int64 of nanoseconds (about 292 years). */
const MAX_NS = 2 ** 63 - 1;

/** One `<number><unit>` term: digits, an optional fraction, then the unit up to the next digit or dot. */
const TERM = /^(\d*)(?:\.(\d*))?([^\d.]+)/;

/**
 * The duration in milliseconds (negative when signed `-`), or undefined when Go's `time.ParseDuration` refuses the
 * text or it overflows Go's int64 nanoseconds.
 * @example goDurationMs('1m30s') // 90000
 * @example goDurationMs('500us') // 0.5
 * @example goDurationMs('90') // undefined (a bare number needs a unit)
 */
export function goDurationMs(text: string): number | undefined {
  let rest = text;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest[0] === '-' ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') return undefined;
  let ns = 0;
  while (rest !== '') {
    const m = TERM.exec(rest);
    // Go wants at least one digit before or after the dot of each term, and a known unit after it.
    if (!m || (m[1] === '' && (m[2] ?? '') === '')) return undefined;
    const perUnit = NS_PER_UNIT[m[3]!];
    if (perUnit === undefined) return undefined;
    ns += Number(`${m[1] || '0'}.${m[2] || '0'}`) * perUnit;
    if (!(ns <= MAX_NS)) return undefined;
    rest = rest.slice(m[0].length);
  }
  return (sign * ns) / 1e6;
}

/**
 * A duration given on a command line or in a config section that takes either: Go's syntax (trimmed) or a number of
 * milliseconds, not negative; undefined when it is neither.
 * @example parseDurationMs(' 1m30s ') // 90000
 * @example parseDurationMs(250) // 250
 */
export function parseDurationMs(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const ms = goDurationMs(value.trim());
  return ms === undefined || ms < 0 ? undefined : ms;
}

/** What a duration parameter may be: strictly positive (most), or zero too (where upstream gives 0 a meaning). */
export type DurationRange = 'positive' | 'non-negative';

/**
 * A plugin parameter's duration in milliseconds, or a message saying what is wrong with it (for the caller to report
 * under the parameter's path). Only strings are durations, as upstream's JSON decoding into a Go string or
 * `metav1.Duration` allows.
 */
export function durationParameterMs(value: unknown, range: DurationRange): number | string {
  const ms = typeof value === 'string' ? goDurationMs(value) : undefined;
  const what = range === 'positive' ? 'a positive Go duration' : 'a Go duration';
  const want = `must be ${what} like "200ms", "1.5s" or "1m30s" (units ns, us, ms, s, m, h), got ${shown(value)}`;
  if (ms === undefined) return want;
  if (ms < 0 || (range === 'positive' && ms === 0)) return want;
  return ms;
}

/** A value as a message shows it: JSON, cut short (a hostile config may hold a megabyte where a duration goes). */
export function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
