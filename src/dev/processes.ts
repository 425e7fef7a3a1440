/**
 * @module dev/processes
 * Child processes of the development API server (etcd, kube-apiserver): started with their output in a log file,
 * stopped with SIGTERM then SIGKILL, and killed when this Node process exits for any reason it can observe, so a
 * crashed test run does not leave an etcd behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';

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

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Last resort: an `exit` handler runs synchronously, so it can still SIGKILL what is left. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

export function startProcess(input: {
  name: string;
  command: string;
  args: readonly string[];
  logPath: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}): ManagedProcess {
  installExitHook();
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
  live.add(child);
  let hasExited = false;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      hasExited = true;
      live.delete(child);
      resolve({ code, signal });
    });
    child.once('error', () => {
      hasExited = true;
      live.delete(child);
      resolve({ code: null, signal: null });
    });
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
 * A TCP port on 127.0.0.1 that was free a moment ago. etcd and kube-apiserver cannot report a port they chose
 * themselves, so the caller picks one and retries with another if the process then fails to bind it.
 */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Whether a pid belongs to a running process (a zombie or someone else's process counts as running). */
export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
