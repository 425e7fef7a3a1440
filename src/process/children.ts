/**
 * @module process/children
 * Keeping child processes from outliving this Node process, shared by the development API server (dev/) and the
 * local stack (local/). Two layers: an `exit` handler SIGKILLs every tracked child on a normal exit or an uncaught
 * error (it runs synchronously, so it can still send signals); for a SIGKILL of this process (a test runner's timeout,
 * the OOM killer) no handler runs, so each child gets a watchdog — a `sh` blocked reading a pipe from this process.
 * The kernel closes that pipe however this process dies, `read` returns, and the watchdog stops the child. It costs
 * one idle shell per child and no polling.
 */
import { spawn, type ChildProcess } from 'node:child_process';

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

/** SIGKILLs `child` when this process exits, unless it has exited (or was untracked) by then. */
export function killOnExit(child: ChildProcess): void {
  installExitHook();
  live.add(child);
}

/** Stops tracking `child`: call it once the child has exited. */
export function forgetChild(child: ChildProcess): void {
  live.delete(child);
}

export interface WatchdogOptions {
  /** How long the watchdog waits between its SIGTERM and a SIGKILL; default 5 s. */
  graceMs?: number;
  /**
   * Also SIGKILL the watchdog itself from the `exit` handler. Only right when the child is tracked too
   * (`killOnExit`): the handler then kills the child, and the watchdog's own late SIGTERM is not needed. A watchdog of
   * an untracked child must stay out, since on a normal exit it is what stops the child.
   */
  killOnExit?: boolean;
}

/**
 * The watchdog of one child: ignores the terminal's signals (a Ctrl-C is this process's to handle), waits for EOF on
 * stdin, then sends SIGTERM and, if the child is still there after the grace time, SIGKILL. Kill it (SIGKILL, not a
 * closed pipe) once the child has exited, so that its `kill` never runs against a pid the system hands out again.
 */
export function startWatchdog(pid: number, options: WatchdogOptions = {}): ChildProcess | undefined {
  // Ten checks spread over the grace time; `sleep` takes fractional seconds on Linux.
  const step = (options.graceMs ?? 5000) / 10 / 1000;
  const script =
    `trap '' INT TERM HUP; read _; kill -TERM ${pid} 2>/dev/null || exit 0; ` +
    `for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 ${pid} 2>/dev/null || exit 0; sleep ${step}; done; kill -KILL ${pid} 2>/dev/null`;
  try {
    const watchdog = spawn('/bin/sh', ['-c', script], { stdio: ['pipe', 'ignore', 'ignore'] });
    watchdog.on('error', () => {});
    watchdog.stdin?.on('error', () => {});
    // Neither the watchdog nor its pipe may keep this process's event loop alive.
    watchdog.unref();
    (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    if (options.killOnExit) {
      killOnExit(watchdog);
      watchdog.once('exit', () => forgetChild(watchdog));
    }
    return watchdog;
  } catch {
    return undefined;
  }
}
