/**
 * @module epp/metrics-scraper
 * Scrapes every endpoint's `/metrics` and stores the result in the datastore. A failed scrape (refused, reset, not
 * 200) marks the endpoint stale at once: the server is gone or broken. A slow one (no answer within the timeout)
 * does not: a busy server or a loaded node answers late, and its last metrics stay usable until they are older than
 * the staleness threshold (the director checks that, as GIE's `metricsStalenessThreshold`), so one late answer does
 * not take a working server out of the pool.
 *
 * Two paces. While requests flow (one arrived within the last `activeWindowMs`) every endpoint is scraped every
 * `intervalMs` (50 ms, GIE's default refresh), so decisions under load see queues at most one interval old. With no
 * traffic the pace drops to `idleIntervalMs`, which stays below the staleness threshold (half of it, at most 1 s): an
 * endpoint never turns stale merely because the pool is quiet, a dead one is still noticed within the idle
 * interval, and an idle EPP no longer burns CPU on 160 scrapes a second. The first request after a quiet spell
 * (`noteTraffic`) starts a scrape at once and the fast pace with it; that request itself is decided on metrics at
 * most one idle interval old — within the threshold the configuration accepts — plus the EPP's own in-flight counts,
 * which are exact.
 *
 * Change-driven (`changeDriven`, for an EPP that routes all of its endpoints' traffic: `llmisvc up` with one EPP).
 * At the fast pace an endpoint is scraped only after a change the EPP saw there since its last scrape (or just before
 * it, as a request routed a moment before a scrape may not have reached the server yet), and otherwise at the idle
 * pace. What only the server knows changes between (KV-cache usage growing with the decode) is at most one idle
 * interval old, as when the pool is quiet. Which change counts is read at every tick:
 * - `traffic`: a request routed there or ending there, as both change its queues. Under load that is a fraction of
 *   the scrapes (at 32 req/s over 8 servers, about a third).
 * - `trouble`: a request there that ended cut off or with a 5xx: the server may be gone, and a refused scrape takes
 *   it out of the pool within one tick. For an EPP whose every profile weighs its own in-flight counts, which show a
 *   request's load the moment it is routed. Scrapes cost the model servers CPU (about 180 µs of
 *   llm-d-inference-sim's per answer of its 21 KB exposition), taken on a loaded node from the decode: on one fleet
 *   of 8 simulators at 32 req/s, a stream alone on its server had an inter-token p90 of 10.46 ms under `traffic`
 *   scraping against 10.33 under sglang-router, which scrapes nothing.
 */
import type { Datastore } from './datastore.js';
import { MetricsConnection, MetricsTimeoutError } from './metrics-http.js';
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
  /** Scrape an endpoint at the fast pace only after this kind of change there (see the module comment). */
  changeDriven?: () => ChangeSignal;
}

/** What makes the change-driven pace scrape an endpoint (see the module comment). */
export type ChangeSignal = 'traffic' | 'trouble';

/**
 * A request routed this long before a scrape started may not have reached the server when it answered: such a scrape
 * does not count as having seen it, so the endpoint is scraped again at the next tick.
 */
const ROUTING_SETTLE_MS = 20;

const MAX_IDLE_INTERVAL_MS = 1000;

/** The idle pace for a staleness threshold: half of it, within [interval, 1 s]. */
export function idleIntervalMs(intervalMs: number, stalenessThresholdMs: number): number {
  return Math.max(intervalMs, Math.min(MAX_IDLE_INTERVAL_MS, Math.floor(stalenessThresholdMs / 2)));
}

/**
 * Whether the change-driven pace scrapes an endpoint at this tick: the EPP saw a change there since its last scrape
 * started, or so shortly before that the scrape may have missed it; or its metrics reached the idle interval's age.
 */
export function dueForScrape(
  lastChangeAt: number,
  lastScrapeStartedAt: number,
  now: number,
  idleMs: number,
): boolean {
  return lastChangeAt >= lastScrapeStartedAt - ROUTING_SETTLE_MS || now - lastScrapeStartedAt >= idleMs;
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
  /** When each endpoint's last scrape started (performance.now()). */
  private readonly scrapeStartedAt = new Map<string, number>();

  constructor(
    private readonly datastore: Datastore,
    private readonly options: ScraperOptions,
  ) {
    this.timeoutMs = options.timeoutMs ?? Math.max(options.intervalMs, 500);
    this.activeWindowMs = options.activeWindowMs ?? 1000;
    datastore.onRemove((address) => {
      this.connections.get(address)?.close();
      this.connections.delete(address);
      this.scrapeStartedAt.delete(address);
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
    const now = performance.now();
    this.lastTickAt = now;
    const interval = this.currentIntervalMs(now);
    const changeDriven = this.options.changeDriven;
    if (!changeDriven || interval !== this.options.intervalMs) void this.scrapeAll();
    else {
      // The idle pace bounds how old any endpoint's metrics get.
      const idle = this.options.stalenessThresholdMs
        ? idleIntervalMs(this.options.intervalMs, this.options.stalenessThresholdMs())
        : this.options.intervalMs;
      const lastChangeAt =
        changeDriven() === 'trouble'
          ? (address: string) => this.datastore.lastTroubleAt(address)
          : (address: string) => this.datastore.lastRoutedAt(address);
      for (const e of this.datastore.endpoints()) {
        const started = this.scrapeStartedAt.get(e.address) ?? -Infinity;
        if (dueForScrape(lastChangeAt(e.address), started, now, idle)) void this.scrape(e.address);
      }
    }
    this.schedule();
  }

  private async scrape(address: string): Promise<void> {
    // One scrape per endpoint at a time: a slow server must not pile up requests.
    if (this.inFlight.has(address)) return;
    this.inFlight.add(address);
    this.scrapeStartedAt.set(address, performance.now());
    try {
      let connection = this.connections.get(address);
      if (!connection) {
        connection = MetricsConnection.forAddress(address);
        this.connections.set(address, connection);
      }
      const exposition = await connection.get(this.options.path ?? '/metrics', this.timeoutMs);
      this.datastore.updateMetrics(address, metricsFromExposition(exposition, Date.now()));
    } catch (error) {
      if (!(error instanceof MetricsTimeoutError)) this.datastore.markFailed(address);
      this.options.onError?.(address, error);
    } finally {
      this.inFlight.delete(address);
    }
  }
}
