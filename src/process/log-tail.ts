/**
 * @module process/log-tail
 * The last lines a child wrote, for error messages: from its log file (`logTail`) or from a pipe (`keepTail`).
 */
import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';

/**
 * The last `lines` lines of a log file ('' when it cannot be read); with `fromByte`, only of what was written after
 * that offset (a restarted child appends to the log of the ones before it).
 */
export async function logTail(path: string, lines = 25, fromByte = 0): Promise<string> {
  const bytes = await readFile(path).catch(() => Buffer.alloc(0));
  const text = bytes.subarray(fromByte).toString('utf8');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/**
 * Keeps the last `maxChars` characters read from `streams` (a child's stdout and stderr piped) and returns a function
 * that gives them, for a message when the child fails.
 */
export function keepTail(streams: readonly (Readable | null | undefined)[], maxChars = 4000): () => string {
  let tail = '';
  for (const stream of streams) {
    stream?.on('data', (chunk: Buffer | string) => {
      tail = (tail + chunk.toString()).slice(-maxChars);
    });
  }
  return () => tail;
}
