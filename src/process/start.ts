/**
 * @module process/start
 * One way to run a child program for dev/, local/, bench/ and the tests: its output goes to a log file (the child
 * writes straight into it, so a busy event loop here never blocks its output), it stops with SIGTERM then SIGKILL,
 * and it never outlives this Node process (an `exit` hook plus a parent-death watchdog, from children.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { forgetChild, killOnExit, startWatchdog } from './children.js';
import { LlmisvcError } from '../errors/index.js';
import { logTail } from './log-tail.js';
import { freeLoopbackPort } from './ports.js';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ManagedProcess {
  name: string;
  pid: number;
  logPath: string;
  /** Resolves when the process has exited (never rejects). */
  exited: Promise<ExitInfo>;
  /** True once the process has exited. */
  readonly hasExited: boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it is gone. */
  stop(graceMs?: number): Promise<ExitInfo>;
}

export interface ProcessSpec {
  /** A name for messages (the program, or the pod it stands for). */
  name: string;
  command: string;
  args: readonly string[];
  /** Where stdout and stderr go (appended). */
  logPath: string;
  /** The child's whole environment; default: only PATH, so nothing of this process's leaks in by accident. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** How long the watchdog waits between its SIGTERM and a SIGKILL if this process is SIGKILLed; default 5 s. */
  watchdogGraceMs?: number;
  /**
   * Opens an IPC channel to a Node child (`process.send` there) and calls this with each message: how a child of ours
   * that bound port 0 reports the port it got. The channel does not keep this process alive.
   */
  onMessage?: (message: unknown) => void;
}

/**
 * Starts `spec.command` with its output in `spec.logPath`.
 *
 * @example
 * const etcd = startProcess({ name: 'etcd', command: bin, args, logPath: 'logs/etcd.log' });
 * await etcd.stop();
 */
export function startProcess(input: ProcessSpec): ManagedProcess {
  const fd = openSync(input.logPath, 'a');
  let child: ChildProcess;
  try {
    // The child writes straight into the log file, so a busy event loop here never blocks its output.
    child = spawn(input.command, input.args, {
      stdio: input.onMessage ? ['ignore', fd, fd, 'ipc'] : ['ignore', fd, fd],
      env: input.env ?? { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
      cwd: input.cwd,
    });
  } finally {
    closeSync(fd);
  }
  if (input.onMessage) {
    child.on('message', input.onMessage);
    child.channel?.unref();
  }
  killOnExit(child);
  // The exit hook kills the watchdog too, having already killed the child; for a SIGKILL of this process its pipe
  // closes and the watchdog does its job.
  const watchdog = child.pid
    ? startWatchdog(child.pid, { graceMs: input.watchdogGraceMs ?? 5000, killOnExit: true })
    : undefined;
  let hasExited = false;
  const exited = new Promise<ExitInfo>((resolve) => {
    const onGone = (info: ExitInfo) => {
      hasExited = true;
      forgetChild(child);
      // Killed, not released: its `kill` must not run against a pid the system may hand out again.
      watchdog?.kill('SIGKILL');
      resolve(info);
    };
    child.once('exit', (code, signal) => onGone({ code, signal }));
    child.once('error', () => onGone({ code: null, signal: null }));
  });
  return {
    name: input.name,
    pid: child.pid ?? -1,
    logPath: input.logPath,
    exited,
    get hasExited() {
      return hasExited;
    },
    async stop(graceMs = 10_000) {
      if (hasExited) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        if (!hasExited) child.kill('SIGKILL');
      }, graceMs);
      const info = await exited;
      clearTimeout(timer);
      return info;
    },
  };
}

/**
 * Polls `probe` until it says ready (true), the process exits (false: the caller looks at why, see
 * `lostPortRace`), or `timeoutMs` passes (the process is stopped and an error names its log).
 */
export async function waitReady(
  process: ManagedProcess,
  timeoutMs: number,
  probe: () => Promise<boolean>,
  intervalMs = 150,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!process.hasExited) {
    if (await probe().catch(() => false)) return true;
    if (Date.now() > deadline) {
      await process.stop();
      throw new LlmisvcError(
        'LLMISVC_ERR_PROCESS',
        `${process.name} did not become ready within ${Math.round(timeoutMs / 1000)} s; last log lines:\n` +
          (await logTail(process.logPath)),
        { hint: `see ${process.logPath}` },
      );
    }
    await Promise.race([sleep(intervalMs), process.exited]);
  }
  return false;
}

/**
 * Throws what a process that exited `when` (e.g. "while the cluster started") left: how it ended and its last log
 * lines.
 */
export async function failExited(process: ManagedProcess, when: string): Promise<never> {
  const { code, signal } = await process.exited;
  throw new LlmisvcError(
    'LLMISVC_ERR_PROCESS',
    `${process.name} exited (${signal ?? `code ${code}`}) ${when}; last log lines:\n` +
      (await logTail(process.logPath, 30)),
    { hint: `see ${process.logPath}` },
  );
}

/**
 * For a process that exited before it was ready: true when it lost a port race (its log says the address is in use)
 * and `attempt` < `attempts`, so the caller picks other ports and starts it again; else an error with its log.
 */
export async function lostPortRace(
  process: ManagedProcess,
  attempt: number,
  attempts: number,
): Promise<boolean> {
  const { code, signal } = await process.exited;
  const tail = await logTail(process.logPath, 40);
  if (/address already in use/i.test(tail) && attempt < attempts) return true;
  throw new LlmisvcError(
    'LLMISVC_ERR_PROCESS',
    `${process.name} exited (${signal ?? `code ${code}`}) before it was ready; last log lines:\n${tail}`,
    { hint: `see ${process.logPath}` },
  );
}

/**
 * Starts a child program on `count` ports picked up front (it cannot report ports it chose itself) and waits with
 * `ready` until it serves; when it exits having lost a port race (see ports.ts), starts it again on new ports, up to
 * `attempts` times. Any other failure stops the child and is thrown as `ready` threw it.
 *
 * @example
 * const { process, ports } = await startOnFreePorts(1, ([port]) => startProcess({ ...spec, args: [`--port=${port}`] }),
 *   (p, [port]) => waitForHealthz(p, port));
 */
export async function startOnFreePorts(
  count: number,
  start: (ports: readonly number[]) => ManagedProcess,
  ready: (process: ManagedProcess, ports: readonly number[]) => Promise<void>,
  attempts = 4,
): Promise<{ process: ManagedProcess; ports: number[] }> {
  for (let attempt = 1; ; attempt++) {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) ports.push(await freeLoopbackPort(undefined, ports));
    const child = start(ports);
    try {
      await ready(child, ports);
      return { process: child, ports };
    } catch (error) {
      const retry = child.hasExited && (await lostPortRace(child, attempt, attempts).catch(() => false));
      if (!retry) {
        await child.stop();
        throw error;
      }
    }
  }
}
