/**
 * @module process/wait
 * Waiting for a condition instead of a fixed time: tests and start-up code poll what they need (a port answers, a
 * count reaches a number) and fail with what they waited for, so a slow machine makes them slower, not wrong.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface WaitOptions {
  /** Give up after this long; default 10 s. */
  timeoutMs?: number;
  /** Pause between checks; default 20 ms. */
  intervalMs?: number;
  /** What is awaited, for the error message. */
  what?: string;
  /** Stop waiting early (rejects with the signal's reason). */
  signal?: AbortSignal;
}

/**
 * Calls `check` until it returns a value other than `undefined`/`false` (a throw counts as not yet) and resolves to
 * that value; rejects after `timeoutMs` naming `what` and the last error.
 *
 * @example
 * const port = await waitFor(() => readPortFile(path), { what: 'the port file' });
 */
export async function waitFor<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  options: WaitOptions = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let lastError: unknown;
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(
        `timed out after ${options.timeoutMs ?? 10_000} ms waiting for ${options.what ?? 'a condition'}${why}`,
      );
    }
    await sleep(options.intervalMs ?? 20, undefined, { signal: options.signal });
  }
}
