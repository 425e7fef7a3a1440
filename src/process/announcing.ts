/**
 * @module process/announcing
 * A child that says on stdout when it is ready and where it listens (`llmisvc sim --port 0` prints its URL, `llmisvc
 * epp` a JSON line with its ports): the child binds port 0 itself, so no port race, and the parent reads the answer
 * instead of probing. Used by the benchmarks; tracked like every child (exit hook and watchdog), so a benchmark that
 * crashes leaves nothing running.
 */
import { spawn } from 'node:child_process';
import type { Writable } from 'node:stream';
import { forgetChild, killOnExit, startWatchdog } from './children.js';
import type { ExitInfo } from './start.js';

export interface AnnouncingProcess<T> {
  pid: number;
  /** What `announced` returned for the output so far. */
  value: T;
  /** The child's stdin (a pipe), for children that take commands. */
  stdin: Writable;
  exited: Promise<ExitInfo>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it is gone. */
  stop(graceMs?: number): Promise<ExitInfo>;
}

export interface AnnouncingSpec<T> {
  command: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
  /** Called with all stdout so far until it returns a value: the child is ready. */
  announced: (stdout: string) => T | undefined;
  /** Every stdout chunk after the one that completed the announcement (a child that keeps reporting). */
  onStdout?: (chunk: string) => void;
}

/**
 * Starts a child (stderr inherited, stdout read) and resolves once `announced` finds what it waits for in its
 * output; rejects, with the output so far, if the child exits first.
 *
 * @example
 * const sim = await startAnnouncing({ command: process.execPath, args: [cli, 'sim', '--port', '0'],
 *   announced: (out) => /at (http:\S+)/.exec(out)?.[1] });
 * console.log(sim.value); // http://127.0.0.1:40123
 */
export function startAnnouncing<T>(spec: AnnouncingSpec<T>): Promise<AnnouncingProcess<T>> {
  const child = spawn(spec.command, [...spec.args], { stdio: ['pipe', 'pipe', 'inherit'], env: spec.env });
  killOnExit(child);
  const watchdog = child.pid ? startWatchdog(child.pid, { killOnExit: true }) : undefined;
  let hasExited = false;
  const exited = new Promise<ExitInfo>((resolve) => {
    const onGone = (info: ExitInfo) => {
      if (hasExited) return;
      hasExited = true;
      forgetChild(child);
      watchdog?.kill('SIGKILL');
      resolve(info);
    };
    child.once('exit', (code, signal) => onGone({ code, signal }));
    child.once('error', () => onGone({ code: null, signal: null }));
  });
  child.stdin.on('error', () => undefined);
  const stop = async (graceMs = 5000): Promise<ExitInfo> => {
    if (hasExited) return exited;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    const info = await exited;
    clearTimeout(timer);
    return info;
  };
  return new Promise((resolve, reject) => {
    let output = '';
    let value: T | undefined;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (value !== undefined) {
        spec.onStdout?.(chunk);
        return;
      }
      output += chunk;
      value = spec.announced(output);
      if (value !== undefined) {
        output = '';
        resolve({ pid: child.pid ?? -1, value, stdin: child.stdin, exited, stop });
      }
    });
    void exited.then(({ code, signal }) => {
      if (value === undefined) {
        reject(
          new Error(
            `${spec.command} ${spec.args.join(' ')} exited (${signal ?? `code ${code}`}) before it was ready:\n${output}`,
          ),
        );
      }
    });
  });
}
