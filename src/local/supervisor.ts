/**
 * @module local/supervisor
 * Runs the local stack's child processes (simulators, real model servers, Envoy): output to a log file each, a
 * readiness probe, and a restart with exponential back-off when one dies. No child outlives this process: an `exit`
 * hook plus a parent-death watchdog per child, from process/.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { logTail, startProcess, type ManagedProcess } from '../process/index.js';

export interface ProcessSpec {
  /** A stable name (the pod name). */
  name: string;
  command: string;
  args: readonly string[];
  logPath: string;
  env?: NodeJS.ProcessEnv;
  /** Resolves true once the process serves; polled until `readyTimeoutMs`. */
  probe: () => Promise<boolean>;
  readyTimeoutMs?: number;
}

export type SupervisorEvent =
  | { type: 'ready'; name: string; pid: number; ms: number; restarts: number }
  | { type: 'exited'; name: string; pid: number; code: number | null; signal: string | null; logTail: string }
  | { type: 'restarting'; name: string; inMs: number; restarts: number };

export interface SupervisedProcess {
  readonly name: string;
  /** The current child's pid (changes on restart). */
  readonly pid: number;
  readonly restarts: number;
  readonly logPath: string;
}

/** Back-off before restart number `n` (1-based): 250 ms doubling to 8 s. */
export function restartDelayMs(n: number): number {
  return Math.min(8000, 250 * 2 ** Math.max(0, n - 1));
}

class Supervised implements SupervisedProcess {
  pid = -1;
  restarts = 0;
  private child: ManagedProcess | undefined;
  private stopping = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private startedAt = 0;

  constructor(
    private readonly spec: ProcessSpec,
    private readonly emit: (event: SupervisorEvent) => void,
  ) {}

  get name(): string {
    return this.spec.name;
  }
  get logPath(): string {
    return this.spec.logPath;
  }

  /** Spawns and waits until the probe passes; rejects when the process exits or the probe times out. */
  async start(): Promise<void> {
    this.spawnChild();
    await this.waitReady();
  }

  private spawnChild(): void {
    const child = startProcess({
      name: this.spec.name,
      command: this.spec.command,
      args: this.spec.args,
      logPath: this.spec.logPath,
      env: this.spec.env ?? process.env,
      // A 3 s grace, as `stop`.
      watchdogGraceMs: 3000,
    });
    this.child = child;
    this.pid = child.pid;
    this.startedAt = Date.now();
    void child.exited.then(({ code, signal }) => {
      if (this.child === child) this.child = undefined;
      if (!this.stopping) void this.onUnexpectedExit(child.pid, code, signal);
    });
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + (this.spec.readyTimeoutMs ?? 30_000);
    const child = this.child;
    for (;;) {
      if (this.stopping) return;
      if (!child || this.child !== child || child.hasExited) {
        throw new Error(`${this.name} exited while starting:\n${await logTail(this.spec.logPath, 12)}`);
      }
      if (await this.spec.probe().catch(() => false)) {
        this.emit({
          type: 'ready',
          name: this.name,
          pid: this.pid,
          ms: Date.now() - this.startedAt,
          restarts: this.restarts,
        });
        return;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `${this.name} did not become ready in time:\n${await logTail(this.spec.logPath, 12)}`,
        );
      }
      await sleep(20);
    }
  }

  private async onUnexpectedExit(pid: number, code: number | null, signal: string | null): Promise<void> {
    this.emit({
      type: 'exited',
      name: this.name,
      pid,
      code,
      signal,
      logTail: await logTail(this.spec.logPath, 5),
    });
    if (this.stopping) return;
    // A process that ran for a while before dying starts its back-off afresh.
    if (Date.now() - this.startedAt > 30_000) this.restarts = 0;
    this.restarts += 1;
    const inMs = restartDelayMs(this.restarts);
    this.emit({ type: 'restarting', name: this.name, inMs, restarts: this.restarts });
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      this.spawnChild();
      // A failed restart shows up as another exit, which schedules the next attempt.
      this.waitReady().catch(() => undefined);
    }, inMs);
  }

  async stop(graceMs = 3000): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    await this.child?.stop(graceMs);
  }
}

/** Starts and restarts a set of processes; `stopAll` ends them all and cancels pending restarts. */
export class Supervisor {
  private readonly processes: Supervised[] = [];

  constructor(private readonly onEvent: (event: SupervisorEvent) => void = () => undefined) {}

  /** Starts one process and resolves once it is ready. */
  async start(spec: ProcessSpec): Promise<SupervisedProcess> {
    const p = new Supervised(spec, this.onEvent);
    this.processes.push(p);
    await p.start();
    return p;
  }

  list(): readonly SupervisedProcess[] {
    return this.processes;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.stop()));
  }
}
