/**
 * @module sim/engine-loop
 * Runs the performance model in scaled real time: each engine step is computed when it starts and its results are
 * delivered when the wall clock reaches the step's end (modelled milliseconds × `timeScale`). Several short steps
 * are run in one timer tick when the timer is late, so a small time scale keeps the model's arithmetic intact instead
 * of stretching it to the timer's resolution.
 */
import {
  EngineRejection,
  PerformanceModel,
  type EngineRequest,
  type StepResult,
} from './performance-model.js';
import type { PerformanceOptions } from './options.js';

/** Callbacks for one request, called at the modelled time of each event. */
export interface EngineListener {
  onAdmitted?(cachedTokens: number, queuedMs: number): void;
  /** One token produced; `index` counts from 0, `at` is modelled milliseconds. */
  onToken(index: number, at: number): void;
  onFinished(at: number): void;
}

export class EngineLoop {
  readonly model: PerformanceModel;
  private readonly timeScale: number;
  private readonly wallStart: number;
  private readonly now: () => number;
  private readonly listeners = new Map<string, { listener: EngineListener; tokens: number }>();
  private pending: StepResult | undefined;
  private timer: NodeJS.Timeout | undefined;
  private scheduled = false;
  private closed = false;

  constructor(options: PerformanceOptions, timeScale: number, clock: () => number = () => performance.now()) {
    this.model = new PerformanceModel(options);
    this.timeScale = timeScale;
    this.now = clock;
    this.wallStart = clock();
  }

  /** The wall clock in modelled milliseconds since the loop started. */
  modelNow(): number {
    return (this.now() - this.wallStart) / this.timeScale;
  }

  /** Wall-clock milliseconds for a modelled duration. */
  wallMs(modelMs: number): number {
    return modelMs * this.timeScale;
  }

  /** Queues a request; throws {@link EngineRejection} if it can never run. Returns its modelled arrival time. */
  submit(request: EngineRequest, listener: EngineListener): number {
    if (this.closed) throw new EngineRejection('the simulator is shutting down');
    const arrival = this.modelNow();
    this.model.submit(request, arrival);
    this.listeners.set(request.id, { listener, tokens: 0 });
    this.wake();
    return arrival;
  }

  /** Drops a request whose client went away. */
  abort(id: string): void {
    this.listeners.delete(id);
    this.model.abort(id);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.listeners.clear();
  }

  private wake(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => this.tick());
  }

  private tick(): void {
    this.scheduled = false;
    this.timer = undefined;
    if (this.closed) return;
    for (;;) {
      const wall = this.modelNow();
      if (this.pending) {
        if (this.pending.end > wall) {
          this.scheduled = true;
          this.timer = setTimeout(() => this.tick(), this.wallMs(this.pending.end - wall));
          return;
        }
        this.deliver(this.pending);
        this.pending = undefined;
      }
      if (!this.model.hasWork()) return;
      const step = this.model.step(wall);
      if (step.end === step.start && step.emitted.length === 0 && step.admitted.length === 0) {
        // No progress possible right now (a queued request arrived after the step's start): try again shortly.
        this.scheduled = true;
        this.timer = setTimeout(() => this.tick(), 1);
        return;
      }
      this.pending = step;
    }
  }

  private deliver(step: StepResult): void {
    for (const admitted of step.admitted) {
      this.listeners.get(admitted.id)?.listener.onAdmitted?.(admitted.cachedTokens, admitted.queuedMs);
    }
    for (const id of step.emitted) {
      const entry = this.listeners.get(id);
      if (entry) entry.listener.onToken(entry.tokens++, step.end);
    }
    for (const id of step.finished) {
      const entry = this.listeners.get(id);
      this.listeners.delete(id);
      entry?.listener.onFinished(step.end);
    }
  }
}
