/**
 * @module local/supervisor
 * Runs the local stack's child processes (simulators, real model servers, Envoy): output to a log file each, a
 * readiness probe, and a restart with exponential back-off when one dies. No child outlives this process: an `exit`
 * hook plus a parent-death watchdog per child, from process/.
 *
 * A server's port is chosen without a check-then-bind race where the child allows it: a simulator of ours binds port
 * 0 and reports the port it got over IPC (`port: 'reported'`); a program that must be told its port up front
 * (`port: 'given'`, e.g. vLLM) gets one from `freeLoopbackPort` and is started again on another when it exits saying
 * the address is in use. A restart tries the previous port first; when it has to take another, `onPortChange` tells
 * the stack, which moves the address everywhere it is held (EPP, gateway, Envoy, dashboard).
 */
import { statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { freeLoopbackPort, logTail, startProcess, type ManagedProcess } from '../process/index.js';

export interface ProcessSpec {
  /** A stable name (the pod name). */
  name: string;
  command: string;
  /** The arguments, or a function of the port to start on (0 the first time for a `reported` port). */
  args: readonly string[] | ((port: number) => readonly string[]);
  logPath: string;
  env?: NodeJS.ProcessEnv;
  /** Resolves true once the process serves on `port` (0 without a `port` kind); polled until `readyTimeoutMs`. */
  probe: (port: number) => Promise<boolean>;
  readyTimeoutMs?: number;
  /**
   * How the process gets the port it serves on, if the supervisor tracks one. `reported`: a Node program of ours binds
   * the port in its arguments (0 at first, its previous one on a restart, any free one when that is taken) and sends
   * `{ type: 'listening', port }` over IPC. `given`: picked up front, retried on a new port when the start loses the
   * race for it (up to `PORT_ATTEMPTS` starts).
   */
  port?: 'reported' | 'given';
  /** Called when a restart had to take a new port: the stack moves the address. */
  onPortChange?: (port: number, previous: number) => void;
}

export type SupervisorEvent =
  | { type: 'ready'; name: string; pid: number; ms: number; restarts: number }
  | { type: 'exited'; name: string; pid: number; code: number | null; signal: string | null; logTail: string }
  | { type: 'restarting'; name: string; inMs: number; restarts: number }
  | { type: 'port-taken'; name: string; port: number; attempt: number };

export interface SupervisedProcess {
  readonly name: string;
  /** The current child's pid (changes on restart). */
  readonly pid: number;
  /** The port it serves on (with a `port` kind in its spec); may change on a restart. */
  readonly port: number | undefined;
  readonly restarts: number;
  readonly logPath: string;
}

/** Starts of a `given`-port process that may lose the race for their port before the supervisor gives up. */
export const PORT_ATTEMPTS = 5;

const ADDRESS_IN_USE = /address already in use/i;

/** Back-off before restart number `n` (1-based): 250 ms doubling to 8 s. */
export function restartDelayMs(n: number): number {
  return Math.min(8000, 250 * 2 ** Math.max(0, n - 1));
}

/** The port in a child's IPC message `{ type: 'listening', port }`, else undefined. */
export function listeningPort(message: unknown): number | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  const { type, port } = message as { type?: unknown; port?: unknown };
  return type === 'listening' && Number.isInteger(port) && (port as number) > 0 && (port as number) < 65536
    ? (port as number)
    : undefined;
}

function logSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

class Supervised implements SupervisedProcess {
  pid = -1;
  port: number | undefined;
  restarts = 0;
  private child: ManagedProcess | undefined;
  /** The child that passed its probe: only its exit is a crash to restart (a failed start is the start's to handle). */
  private readyChild: ManagedProcess | undefined;
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

  /**
   * Spawns and waits until the probe passes, on a new port while a `given` port turns out taken; rejects when the
   * process exits or the probe times out (the child is stopped then).
   */
  async start(): Promise<void> {
    const taken: number[] = [];
    for (let attempt = 1; ; attempt++) {
      const port = await this.portToTry(taken);
      const logOffset = logSize(this.spec.logPath);
      const { child, reported } = this.spawnChild(port);
      try {
        const serving = await this.waitReady(child, port, reported);
        if (serving === undefined) return; // stopped meanwhile
        const previous = this.port;
        this.port = this.spec.port ? serving : undefined;
        this.readyChild = child;
        if (previous !== undefined && this.port !== undefined && previous !== this.port) {
          this.spec.onPortChange?.(this.port, previous);
        }
        return;
      } catch (error) {
        if (!child.hasExited) await child.stop(3000);
        const lostRace =
          this.spec.port === 'given' &&
          attempt < PORT_ATTEMPTS &&
          !this.stopping &&
          ADDRESS_IN_USE.test(await logTail(this.spec.logPath, 40, logOffset));
        if (!lostRace) throw error;
        taken.push(port);
        this.emit({ type: 'port-taken', name: this.name, port, attempt });
      }
    }
  }

  /** `given`: the previous port if free, else a free one (never one this start lost); `reported`: the previous or 0. */
  private async portToTry(taken: readonly number[]): Promise<number> {
    if (this.spec.port === 'given') return freeLoopbackPort(this.port, taken);
    if (this.spec.port === 'reported') return this.port ?? 0;
    return 0;
  }

  private spawnChild(port: number): { child: ManagedProcess; reported: () => number | undefined } {
    let reportedPort: number | undefined;
    const args = typeof this.spec.args === 'function' ? this.spec.args(port) : this.spec.args;
    const child = startProcess({
      name: this.spec.name,
      command: this.spec.command,
      args,
      logPath: this.spec.logPath,
      env: this.spec.env ?? process.env,
      // A 3 s grace, as `stop`.
      watchdogGraceMs: 3000,
      ...(this.spec.port === 'reported'
        ? { onMessage: (message: unknown) => (reportedPort ??= listeningPort(message)) }
        : {}),
    });
    this.child = child;
    this.pid = child.pid;
    this.startedAt = Date.now();
    void child.exited.then(({ code, signal }) => {
      if (this.child === child) this.child = undefined;
      if (this.readyChild !== child) return;
      this.readyChild = undefined;
      if (!this.stopping) void this.onUnexpectedExit(child.pid, code, signal);
    });
    const reported = () => (this.spec.port === 'reported' ? reportedPort : port);
    return { child, reported };
  }

  /** The port it serves on once the probe passes; undefined when stopped meanwhile. */
  private async waitReady(
    child: ManagedProcess,
    port: number,
    reported: () => number | undefined,
  ): Promise<number | undefined> {
    const deadline = Date.now() + (this.spec.readyTimeoutMs ?? 30_000);
    for (;;) {
      if (this.stopping) return undefined;
      if (child.hasExited) {
        throw new Error(`${this.name} exited while starting:\n${await logTail(this.spec.logPath, 12)}`);
      }
      const serving = reported();
      if (serving !== undefined && (await this.spec.probe(serving).catch(() => false))) {
        this.emit({
          type: 'ready',
          name: this.name,
          pid: child.pid,
          ms: Date.now() - this.startedAt,
          restarts: this.restarts,
        });
        return this.spec.port ? serving : port;
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
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.stopping) return;
    // A process that ran for a while before dying starts its back-off afresh.
    if (Date.now() - this.startedAt > 30_000) this.restarts = 0;
    this.restarts += 1;
    const inMs = restartDelayMs(this.restarts);
    this.emit({ type: 'restarting', name: this.name, inMs, restarts: this.restarts });
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      // A failed restart is reported as an exit, and the next attempt follows its back-off.
      this.start().catch((error: Error) => {
        if (this.stopping) return;
        this.emit({
          type: 'exited',
          name: this.name,
          pid: this.pid,
          code: null,
          signal: null,
          logTail: error.message.split('\n').slice(1).join('\n'),
        });
        this.scheduleRestart();
      });
    }, inMs);
  }

  /** Stops the current child and starts it again at once (its arguments re-read: a peer's address moved). */
  async restart(): Promise<void> {
    const child = this.readyChild;
    // Not serving: a start or a restart is under way, and it reads the arguments afresh.
    if (this.stopping || !child) return;
    this.readyChild = undefined;
    await child.stop(3000);
    if (this.stopping) return;
    // One that fails to come back is retried as a crashed one.
    await this.start().catch(() => this.scheduleRestart());
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

  /** Restarts the named process now (a restart in progress or a stopped one is left alone). */
  async restart(name: string): Promise<void> {
    await this.processes.find((p) => p.name === name)?.restart();
  }

  list(): readonly SupervisedProcess[] {
    return this.processes;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.stop()));
  }
}
