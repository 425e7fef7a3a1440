/**
 * @module epp/plugins/parameters
 * Reading a plugin's `parameters` map from an EndpointPickerConfig: each reader checks the type and range and
 * records a problem naming the plugin and the parameter instead of throwing, so one start reports every mistake.
 */
import type { FieldProblem } from '../../errors/index.js';
import { durationParameterMs, shown, type DurationRange } from '../go-duration.js';

/** A plugin's parameters plus where to report problems with them. */
export class Parameters {
  private readonly known = new Set<string>();

  constructor(
    private readonly values: Readonly<Record<string, unknown>>,
    /** Config path of the parameters map, e.g. `plugins[2].parameters`. */
    private readonly path: string,
    private readonly problems: FieldProblem[],
    /** Where accepted-but-not-acted-on parameters are reported (logged at start); dropped when not given. */
    private readonly warnings: FieldProblem[] = [],
  ) {}

  /** A number in [min, max], or `fallback` when absent. */
  number(key: string, fallback: number, min = -Infinity, max = Infinity): number {
    this.known.add(key);
    const value = this.values[key];
    if (value === undefined || value === null) return fallback;
    const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isFinite(n) || n < min || n > max) {
      this.problems.push({
        path: `${this.path}.${key}`,
        message: `must be a number between ${min} and ${max}, got ${shown(value)}`,
      });
      return fallback;
    }
    return n;
  }

  /** An integer in [min, max]. */
  integer(key: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const n = this.number(key, fallback, min, max);
    if (!Number.isInteger(n)) {
      this.problems.push({ path: `${this.path}.${key}`, message: `must be an integer, got ${n}` });
      return fallback;
    }
    return n;
  }

  string(key: string, fallback: string): string {
    this.known.add(key);
    const value = this.values[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'string' || value === '') {
      this.problems.push({ path: `${this.path}.${key}`, message: `must be a non-empty string` });
      return fallback;
    }
    return value;
  }

  boolean(key: string, fallback: boolean): boolean {
    this.known.add(key);
    const value = this.values[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'boolean') {
      this.problems.push({ path: `${this.path}.${key}`, message: `must be true or false` });
      return fallback;
    }
    return value;
  }

  /** A list of strings, or `fallback` when absent. */
  stringList(key: string, fallback: readonly string[] = []): string[] {
    this.known.add(key);
    const value = this.values[key];
    if (value === undefined || value === null) return [...fallback];
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
      this.problems.push({ path: `${this.path}.${key}`, message: 'must be a list of strings' });
      return [...fallback];
    }
    return value;
  }

  /** A mapping of string to string (e.g. `matchLabels`). */
  stringMap(key: string): Record<string, string> {
    this.known.add(key);
    const value = this.values[key];
    if (value === undefined || value === null) return {};
    if (
      typeof value !== 'object' ||
      Array.isArray(value) ||
      !Object.values(value).every((v) => typeof v === 'string')
    ) {
      this.problems.push({ path: `${this.path}.${key}`, message: 'must be a mapping of string to string' });
      return {};
    }
    return value as Record<string, string>;
  }

  /**
   * A duration in Go's syntax ("200ms", "1.5s", "1m30s"; see go-duration.ts) in milliseconds: > 0, or ≥ 0 with
   * `range` non-negative. A bare number is refused, as upstream's decoding into a Go duration string refuses it.
   */
  duration(key: string, fallbackMs: number, range: DurationRange = 'positive'): number {
    this.known.add(key);
    const value = this.values[key];
    if (value === undefined || value === null) return fallbackMs;
    const ms = durationParameterMs(value, range);
    if (typeof ms === 'string') {
      this.problems.push({ path: `${this.path}.${key}`, message: ms });
      return fallbackMs;
    }
    return ms;
  }

  /** The raw value, for a parameter with its own structure (read by the caller, who reports its problems). */
  raw(key: string): unknown {
    this.known.add(key);
    return this.values[key];
  }

  /** Where a parameter is, for problems the caller reports itself. */
  pathOf(key: string): string {
    return `${this.path}.${key}`;
  }

  /** Whether the parameter was given (a null value counts as absent). */
  has(key: string): boolean {
    const value = this.values[key];
    return value !== undefined && value !== null;
  }

  /** Records a warning about a parameter that is accepted but not (or not fully) acted on. */
  warn(key: string, message: string): void {
    this.warnings.push({ path: `${this.path}.${key}`, message });
  }

  /** Records a problem with a parameter that its type check alone cannot catch (e.g. two that conflict). */
  problem(key: string, message: string): void {
    this.problems.push({ path: `${this.path}.${key}`, message });
  }

  /** The parameters no reader asked for. */
  unknown(): string[] {
    return Object.keys(this.values).filter((key) => !this.known.has(key));
  }

  /**
   * Reports as warnings the parameters of a plugin whose upstream factory never decodes its parameters, so upstream
   * loads them silently: here they load too, and each is named.
   */
  ignoreUnknown(type: string): void {
    for (const key of this.unknown())
      this.warn(
        key,
        `accepted, not acted on: plugin type "${type}" takes no such parameter (upstream ignores its parameters too)`,
      );
  }

  /** Reports parameters the plugin does not understand (a typo should not be silently ignored). */
  rejectUnknown(type: string): void {
    for (const key of this.unknown())
      this.problems.push({
        path: `${this.path}.${key}`,
        message: `unknown parameter for plugin type "${type}" (known: ${[...this.known].join(', ') || 'none'})`,
      });
  }
}
