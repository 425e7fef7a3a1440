/**
 * @module epp/datastore
 * The live set of endpoints: which exist (from Kubernetes or `--endpoints`), their latest scraped metrics and the
 * EPP's own in-flight counts. Keeps an array snapshot so the per-request path reads without copying.
 */
import { LlmisvcError } from '../errors/index.js';
import { emptyMetrics, type Endpoint, type EndpointMetrics, type EndpointRole } from './types.js';

/** An endpoint as discovered (before any metrics). */
export interface EndpointSpec {
  address: string;
  name?: string;
  role?: EndpointRole;
  labels?: Record<string, string>;
}

export class Datastore {
  private readonly byAddress = new Map<string, Endpoint>();
  private snapshot: Endpoint[] = [];
  private readonly removalListeners: ((address: string) => void)[] = [];
  private readonly changeListeners: (() => void)[] = [];
  /** When (performance.now()) the EPP last routed a request to an endpoint or saw one end there. */
  private readonly routedAt = new Map<string, number>();
  /** When (performance.now()) a request at an endpoint last ended cut off or with a 5xx. */
  private readonly troubleAt = new Map<string, number>();

  /** Replaces the endpoint set, keeping state of endpoints that stay. */
  setEndpoints(specs: readonly EndpointSpec[]): void {
    const next = new Set(specs.map((s) => s.address));
    for (const address of [...this.byAddress.keys()]) {
      if (!next.has(address)) {
        this.byAddress.delete(address);
        this.routedAt.delete(address);
        this.troubleAt.delete(address);
        for (const listener of this.removalListeners) listener(address);
      }
    }
    for (const spec of specs) {
      const existing = this.byAddress.get(spec.address);
      const role = spec.role ?? 'both';
      if (existing && existing.role === role && existing.name === (spec.name ?? spec.address)) continue;
      this.byAddress.set(spec.address, {
        address: spec.address,
        name: spec.name ?? spec.address,
        role,
        labels: spec.labels ?? { 'llm-d.ai/role': role },
        metrics: existing?.metrics ?? emptyMetrics(),
        inFlight: existing?.inFlight ?? 0,
        inFlightTokens: existing?.inFlightTokens ?? 0,
        stale: existing?.stale ?? true,
      });
    }
    this.snapshot = [...this.byAddress.values()];
    for (const listener of this.changeListeners) listener();
  }

  /** Called with the address of every endpoint that leaves (plugins drop their per-endpoint state). */
  onRemove(listener: (address: string) => void): void {
    this.removalListeners.push(listener);
  }

  /** Called after every `setEndpoints` (the health service pushes a changed status to its watchers). */
  onChange(listener: () => void): void {
    this.changeListeners.push(listener);
  }

  endpoints(): readonly Endpoint[] {
    return this.snapshot;
  }

  get(address: string): Endpoint | undefined {
    return this.byAddress.get(address);
  }

  updateMetrics(address: string, metrics: EndpointMetrics): void {
    const e = this.byAddress.get(address);
    if (!e) return;
    e.metrics = metrics;
    e.stale = false;
  }

  /**
   * The EPP routed a request to `address` or saw one end there: the endpoint's queues changed, so the scraper's
   * change-driven pace (see `metrics-scraper.ts`) scrapes it at its next tick.
   */
  noteRouting(address: string, now = performance.now()): void {
    this.routedAt.set(address, now);
  }

  /** When the EPP last routed a request to `address` or saw one end there (-Infinity: never). */
  lastRoutedAt(address: string): number {
    return this.routedAt.get(address) ?? -Infinity;
  }

  /**
   * A request at `address` ended cut off or with a 5xx: the server may be gone, so the scraper's change-driven pace
   * scrapes it at its next tick even when routing alone does not make it do so (see `metrics-scraper.ts`).
   */
  noteTrouble(address: string, now = performance.now()): void {
    this.troubleAt.set(address, now);
  }

  /** When a request at `address` last ended cut off or with a 5xx (-Infinity: never). */
  lastTroubleAt(address: string): number {
    return this.troubleAt.get(address) ?? -Infinity;
  }

  markFailed(address: string): void {
    const e = this.byAddress.get(address);
    if (e) e.stale = true;
  }
}

/**
 * Parses `--endpoints`: comma-separated `host:port` items, each optionally followed by `role=prefill|decode|both`.
 * @example parseEndpointList('10.0.0.1:8000,role=prefill,10.0.0.2:8000') // → prefill 10.0.0.1:8000, both 10.0.0.2:8000
 */
export function parseEndpointList(text: string): EndpointSpec[] {
  const specs: EndpointSpec[] = [];
  for (const raw of text.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    if (item.startsWith('role=')) {
      const role = item.slice(5);
      const last = specs[specs.length - 1];
      if (!last)
        throw new LlmisvcError('LLMISVC_ERR_CONFIG', `--endpoints: "${item}" must follow a host:port`);
      if (role !== 'prefill' && role !== 'decode' && role !== 'both') {
        throw new LlmisvcError(
          'LLMISVC_ERR_CONFIG',
          `--endpoints: role "${role}" of ${last.address} must be prefill, decode or both`,
        );
      }
      last.role = role;
      last.labels = { 'llm-d.ai/role': role };
      continue;
    }
    const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(item);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) {
      throw new LlmisvcError('LLMISVC_ERR_CONFIG', `--endpoints: "${item}" is not host:port`, {
        hint: 'Example: --endpoints 127.0.0.1:8001,127.0.0.1:8002,role=prefill',
      });
    }
    if (specs.some((s) => s.address === item))
      throw new LlmisvcError('LLMISVC_ERR_CONFIG', `--endpoints: ${item} is listed twice`);
    specs.push({ address: item, role: 'both' });
  }
  return specs;
}
