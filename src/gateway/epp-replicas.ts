/**
 * @module gateway/epp-replicas
 * Active-active Endpoint Picker replicas seen from a gateway: one ext_proc client per replica, requests spread over
 * them round robin, and a request whose stream fails before the replica answered the routing decision (replica
 * killed, draining, unreachable, late) asked again of the next replica. Nothing was routed yet, so the retry
 * cannot send a request twice; a stream that fails after the decision is the routed request's own business.
 *
 * @example
 * const replicas = EppReplicaSet.connect(['127.0.0.1:9002', '127.0.0.1:9012']);
 * const pick = await replicas.pick({ path: '/v1/completions', body }, { timeoutMs: 10_000 });
 */
import {
  createExtProcClient,
  extProcPicker,
  type EndpointPicker,
  type PickOptions,
  type PickRequest,
  type PickResult,
} from './extproc-client.js';

/**
 * The order in which to ask the replicas for one request: round robin from `start`, replicas whose channel is known
 * to be failing (connection refused, reset) moved to the end — still tried, since a channel's state lags a replica
 * that just came back.
 * @example replicaOrder(3, 1, new Set([2])) // → [1, 0, 2]
 */
export function replicaOrder(count: number, start: number, failing: ReadonlySet<number>): number[] {
  const order = Array.from({ length: count }, (_, i) => (start + i) % count);
  return [...order.filter((i) => !failing.has(i)), ...order.filter((i) => failing.has(i))];
}

/**
 * How long a replica that failed a request stays at the end of the order: a hung replica (accepting streams, never
 * answering) shows no channel failure, and would otherwise cost every N-th request the whole EPP timeout.
 */
const SUSPECT_MS = 1000;

export class EppReplicaSet {
  private readonly failedAt: number[];
  private next = 0;
  /** Requests asked again of another replica because one failed before its decision. */
  retries = 0;

  /** One picker per replica (ext_proc clients, or the EPP in this process). */
  constructor(private readonly clients: readonly EndpointPicker[]) {
    if (clients.length === 0) throw new Error('EppReplicaSet needs at least one EPP');
    this.failedAt = clients.map(() => -Infinity);
  }

  /** A gRPC client per replica address (`ip:port`). */
  static connect(addresses: readonly string[], options: { tls?: boolean } = {}): EppReplicaSet {
    return new EppReplicaSet(addresses.map((a) => extProcPicker(createExtProcClient(a, options))));
  }

  private failing(): Set<number> {
    const failing = new Set<number>();
    const now = performance.now();
    this.clients.forEach((c, i) => {
      if (now - this.failedAt[i]! < SUSPECT_MS || c.failing()) failing.add(i);
    });
    return failing;
  }

  /**
   * The routing decision of one replica: the first that answers, trying each at most once. Rejects with the last
   * replica's error when none answered, or at once when `signal` aborts (the client went away: nothing to retry).
   */
  async pick(request: PickRequest, options: PickOptions = {}): Promise<PickResult> {
    const count = this.clients.length;
    const start = this.next;
    this.next = (this.next + 1) % count;
    const order = count === 1 ? [0] : replicaOrder(count, start, this.failing());
    let lastError: unknown;
    for (const [attempt, index] of order.entries()) {
      if (attempt > 0) this.retries++;
      try {
        return await this.clients[index]!.pick(request, options);
      } catch (error) {
        if (options.signal?.aborted) throw error;
        lastError = error;
        this.failedAt[index] = performance.now();
      }
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  close(): void {
    for (const client of this.clients) client.close();
  }
}
