/**
 * @module epp/metrics-scraper
 * Scrapes every endpoint's `/metrics` on an interval (default 50 ms) and stores the result in the datastore. A
 * failed or slow scrape marks the endpoint stale at once; an endpoint whose last good scrape is older than the
 * staleness threshold is stale too (the director checks that), so it is avoided rather than chosen blindly.
 */
import { Client } from 'undici';
import type { Datastore } from './datastore.js';
import { metricsFromExposition } from './model-server-metrics.js';

export interface ScraperOptions {
  intervalMs: number;
  /** Per-scrape timeout; defaults to max(interval, 500 ms). */
  timeoutMs?: number;
  /** Path of the metrics endpoint on the model server. */
  path?: string;
  onError?: (address: string, error: unknown) => void;
}

export class MetricsScraper {
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<string>();
  /** One keep-alive connection per endpoint: an undici Client costs about half the CPU per scrape of an Agent. */
  private readonly clients = new Map<string, Client>();
  private readonly timeoutMs: number;

  constructor(
    private readonly datastore: Datastore,
    private readonly options: ScraperOptions,
  ) {
    this.timeoutMs = options.timeoutMs ?? Math.max(options.intervalMs, 500);
    datastore.onRemove((address) => {
      const client = this.clients.get(address);
      this.clients.delete(address);
      void client?.close().catch(() => undefined);
    });
  }

  /** Scrapes every endpoint once and resolves when all answered (or failed). */
  async scrapeAll(): Promise<void> {
    await Promise.all(this.datastore.endpoints().map((e) => this.scrape(e.address)));
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.scrapeAll(), this.options.intervalMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const clients = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(clients.map((c) => c.destroy().catch(() => undefined)));
  }

  private async scrape(address: string): Promise<void> {
    // One scrape per endpoint at a time: a slow server must not pile up requests.
    if (this.inFlight.has(address)) return;
    this.inFlight.add(address);
    try {
      let client = this.clients.get(address);
      if (!client) {
        client = new Client(`http://${address}`, { keepAliveTimeout: 30_000 });
        this.clients.set(address, client);
      }
      const response = await client.request({
        method: 'GET',
        path: this.options.path ?? '/metrics',
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
      const text = await response.body.text();
      if (response.statusCode !== 200) throw new Error(`HTTP ${response.statusCode}`);
      this.datastore.updateMetrics(address, metricsFromExposition(text, Date.now()));
    } catch (error) {
      this.datastore.markFailed(address);
      this.options.onError?.(address, error);
    } finally {
      this.inFlight.delete(address);
    }
  }
}
