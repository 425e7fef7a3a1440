/**
 * @module epp/metrics-scraper
 * Scrapes every endpoint's `/metrics` and stores the result in the datastore. A failed or slow scrape marks the
 * endpoint stale at once; an endpoint whose last good scrape is older than the staleness threshold is stale too
 * (the director checks that), so it is avoided rather than chosen blindly.
 *
 * Two paces. While requests flow (one arrived within the last `activeWindowMs`) every endpoint is scraped every
 * `intervalMs` (50 ms, GIE's default refresh), so decisions under load see queues at most one interval old. With no
 * traffic the pace drops to `idleIntervalMs`, which stays below the staleness threshold (half of it, at most 1 s): an
 * endpoint never turns stale merely because the pool is quiet, a dead one is still noticed within the idle
 * interval, and an idle EPP no longer burns CPU on 160 scrapes a second. The first request after a quiet spell
 * (`noteTraffic`) starts a scrape at once and the fast pace with it; that request itself is decided on metrics at
 * most one idle interval old — within the threshold the configuration accepts — plus the EPP's own in-flight counts,
 * which are exact.
 */
import type { Datastore } from './datastore.js';
import { MetricsConnection } from './metrics-http.js';
import { metricsFromExposition } from './model-server-metrics.js';

export interface ScraperOptions {
  /** Pace while traffic flows (ms). */
  intervalMs: number;
  /**
   * The staleness threshold in force (ms), read at every tick because the configuration can change live; the idle
   * pace is half of it, at most 1 s and at least `intervalMs`. Without it the scraper keeps the fast pace always.
   */
  stalenessThresholdMs?: () => number;
  /** How long after the last request the fast pace is kept (default 1 s). */
  activeWindowMs?: number;
  /** Per-scrape timeout; defaults to max(interval, 500 ms). */
  timeoutMs?: number;
  /** Path of the metrics endpoint on the model server. */
  path?: string;
  onError?: (address: string, error: unknown) => void;
}

const MAX_IDLE_INTERVAL_MS = 1000;

/** The idle pace for a staleness threshold: half of it, within [interval, 1 s]. */
export function idleIntervalMs(intervalMs: number, stalenessThresholdMs: number): number {
  return Math.max(intervalMs, Math.min(MAX_IDLE_INTERVAL_MS, Math.floor(stalenessThresholdMs / 2)));
}

export class MetricsScraper {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private readonly inFlight = new Set<string>();
  /** One keep-alive connection per endpoint. */
  private readonly connections = new Map<string, MetricsConnection>();
  private readonly timeoutMs: number;
  private readonly activeWindowMs: number;
  private lastTrafficAt = -Infinity;
  private lastTickAt = -Infinity;

  constructor(
    private readonly datastore: Datastore,
    private readonly options: ScraperOptions,
  ) {
    this.timeoutMs = options.timeoutMs ?? Math.max(options.intervalMs, 500);
    this.activeWindowMs = options.activeWindowMs ?? 1000;
    datastore.onRemove((address) => {
      this.connections.get(address)?.close();
      this.connections.delete(address);
    });
  }

  /** Scrapes every endpoint once and resolves when all answered (or failed). */
  async scrapeAll(): Promise<void> {
    await Promise.all(this.datastore.endpoints().map((e) => this.scrape(e.address)));
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule();
  }

  /**
   * A request arrived: keep (or resume) the fast pace. After a quiet spell the next scrape starts now rather than at
   * the end of the idle interval. Cheap enough for every request: a clock read and a comparison.
   */
  noteTraffic(): void {
    const now = performance.now();
    const wasIdle = now - this.lastTrafficAt > this.activeWindowMs;
    this.lastTrafficAt = now;
    if (wasIdle && this.running && now - this.lastTickAt > this.options.intervalMs) {
      clearTimeout(this.timer);
      this.tick();
    }
  }

  /** The pace right now (ms): fast while traffic flows, idle otherwise. */
  currentIntervalMs(now = performance.now()): number {
    const threshold = this.options.stalenessThresholdMs;
    if (!threshold || now - this.lastTrafficAt <= this.activeWindowMs) return this.options.intervalMs;
    return idleIntervalMs(this.options.intervalMs, threshold());
  }

  close(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const connection of this.connections.values()) connection.close();
    this.connections.clear();
    return Promise.resolve();
  }

  private schedule(): void {
    if (!this.running) return;
    const now = performance.now();
    const delay = Math.max(0, this.lastTickAt + this.currentIntervalMs(now) - now);
    this.timer = setTimeout(() => this.tick(), delay);
    this.timer.unref();
  }

  private tick(): void {
    this.lastTickAt = performance.now();
    void this.scrapeAll();
    this.schedule();
  }

  private async scrape(address: string): Promise<void> {
    // One scrape per endpoint at a time: a slow server must not pile up requests.
    if (this.inFlight.has(address)) return;
    this.inFlight.add(address);
    try {
      let connection = this.connections.get(address);
      if (!connection) {
        connection = MetricsConnection.forAddress(address);
        this.connections.set(address, connection);
      }
      const text = await connection.get(this.options.path ?? '/metrics', this.timeoutMs);
      this.datastore.updateMetrics(address, metricsFromExposition(text, Date.now()));
    } catch (error) {
      this.datastore.markFailed(address);
      this.options.onError?.(address, error);
    } finally {
      this.inFlight.delete(address);
    }
  }
}
