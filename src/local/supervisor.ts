/**
 * @module local/supervisor
 * Runs the local stack's child processes (simulators, real model servers, Envoy): output to a log file each, a
 * readiness probe, and a restart with exponential back-off when one dies. No child outlives this process: an `exit`
 * hook plus a parent-death watchdog per child, from process/.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { forgetChild, killOnExit, startWatchdog } from '../process/index.js';

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

async function tail(path: string, lines = 12): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Back-off before restart number `n` (1-based): 250 ms doubling to 8 s. */
export function restartDelayMs(n: number): number {
  return Math.min(8000, 250 * 2 ** Math.max(0, n - 1));
}

class Supervised implements SupervisedProcess {
  pid = -1;
  restarts = 0;
  private child: ChildProcess | undefined;
  private watchdog: ChildProcess | undefined;
  private stopping = false;
  private exited: Promise<void> = Promise.resolve();
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
    const fd = openSync(this.spec.logPath, 'a');
    let child: ChildProcess;
    try {
      child = spawn(this.spec.command, [...this.spec.args], {
        stdio: ['ignore', fd, fd],
        env: this.spec.env ?? process.env,
      });
    } finally {
      closeSync(fd);
    }
    this.child = child;
    this.pid = child.pid ?? -1;
    this.startedAt = Date.now();
    killOnExit(child);
    // A 3 s grace, as `stop`; the exit hook kills the watchdog too, having already killed the child.
    this.watchdog = child.pid ? startWatchdog(child.pid, { graceMs: 3000, killOnExit: true }) : undefined;
    const watchdog = this.watchdog;
    this.exited = new Promise<void>((resolve) => {
      const onGone = (code: number | null, signal: NodeJS.Signals | null) => {
        forgetChild(child);
        watchdog?.kill('SIGKILL');
        resolve();
        if (this.child === child) this.child = undefined;
        if (!this.stopping) void this.onUnexpectedExit(child.pid ?? -1, code, signal);
      };
      child.once('exit', onGone);
      child.once('error', () => onGone(null, null));
    });
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + (this.spec.readyTimeoutMs ?? 30_000);
    const child = this.child;
    for (;;) {
      if (this.stopping) return;
      if (!child || this.child !== child || child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${this.name} exited while starting:\n${await tail(this.spec.logPath)}`);
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
        throw new Error(`${this.name} did not become ready in time:\n${await tail(this.spec.logPath)}`);
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
      logTail: await tail(this.spec.logPath, 5),
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
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
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
