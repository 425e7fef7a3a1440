/**
 * @module process/run
 * Running a command to completion (an installer: pip, apt-get): its output line by line to a callback, and the tail
 * of it in the error when it fails. A parent-death watchdog stops it if this process is killed meanwhile.
 */
import { spawn } from 'node:child_process';
import { startWatchdog } from './children.js';
import { keepTail } from './log-tail.js';

export interface RunCommandOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Each non-empty output line (stdout and stderr), trimmed. */
  onLine?: (line: string) => void;
}

/**
 * Runs `command ARGS` and resolves when it exits 0; rejects with its exit code and last output otherwise.
 *
 * @example
 * await runCommand('python3', ['-m', 'venv', dir], { onLine: log });
 */
export function runCommand(
  command: string,
  args: readonly string[],
  options: RunCommandOptions = {},
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: options.env,
      cwd: options.cwd,
    });
    const watchdog = child.pid ? startWatchdog(child.pid) : undefined;
    const tail = keepTail([child.stdout, child.stderr]);
    const onData = (data: Buffer) => {
      for (const line of data.toString().split('\n')) if (line.trim()) options.onLine?.(line.trim());
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (error) => {
      watchdog?.kill('SIGKILL');
      reject(error);
    });
    child.on('exit', (code, signal) => {
      watchdog?.kill('SIGKILL');
      if (code === 0) resolve();
      else reject(new Error(`${command} ${args.join(' ')} exited with ${signal ?? code}\n${tail()}`));
    });
  });
}
