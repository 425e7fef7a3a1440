/**
 * @module dev/processes
 * Child processes of the development API server (etcd, kube-apiserver): started with their output in a log file,
 * stopped with SIGTERM then SIGKILL, and never outliving this Node process (an `exit` hook plus a parent-death
 * watchdog per child, from process/).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { forgetChild, killOnExit, startWatchdog } from '../process/index.js';

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

export function startProcess(input: {
  name: string;
  command: string;
  args: readonly string[];
  logPath: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}): ManagedProcess {
  const fd = openSync(input.logPath, 'a');
  let child: ChildProcess;
  try {
    // The child writes straight into the log file, so a busy event loop here never blocks its output.
    child = spawn(input.command, input.args, {
      stdio: ['ignore', fd, fd],
      env: input.env ?? { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
      cwd: input.cwd,
    });
  } finally {
    closeSync(fd);
  }
  killOnExit(child);
  // Not itself killed on exit: when this process exits, its pipe closes and the watchdog does its job.
  const watchdog = child.pid ? startWatchdog(child.pid, { graceMs: 5000 }) : undefined;
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

/** The last lines of a log file, for error messages. */
export async function logTail(path: string, lines = 25): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago: `preferred` when it is free (so a restarted server keeps its
 * address), else one the kernel picks, never one of `avoid`. etcd and kube-apiserver cannot report a port they chose
 * themselves, so the caller picks one and retries with another if the process then fails to bind it.
 */
export async function freeLoopbackPort(preferred?: number, avoid: readonly number[] = []): Promise<number> {
  if (preferred && !avoid.includes(preferred)) {
    const port = await tryListen(preferred).catch(() => undefined);
    if (port) return port;
  }
  for (;;) {
    const port = await tryListen(0);
    if (!avoid.includes(port)) return port;
  }
}

function tryListen(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      const bound = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(bound));
    });
  });
}

/**
 * Whether a pid belongs to a running process. Someone else's process counts as running; a zombie (exited, not yet
 * reaped by a parent that is not us) does not.
 */
export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // /proc/PID/stat: "pid (comm) S …"; comm may contain spaces and parentheses, the state follows the last ")".
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc (not Linux): the signal check has to do
  }
}
