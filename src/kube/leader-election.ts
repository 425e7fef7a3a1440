/**
 * @module kube/leader-election
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's rules: a candidate takes the lease when it
 * is free or when the holder has not renewed it for `leaseDuration` as measured on the candidate's own clock (so
 * clock skew between nodes does not matter); the leader renews every `retryPeriod` and gives up leadership when it
 * could not renew for `renewDeadline`. Updates carry the resourceVersion they read, so two candidates racing for the
 * same lease cannot both win (one gets 409 Conflict). On graceful stop the leader releases the lease so the next
 * replica takes over at once instead of waiting for it to expire.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { KubeClient } from './client.js';
import { isConflict, isNotFound } from './client.js';
import type { KubeObject } from './resources.js';
import { CORE_RESOURCES } from './resources.js';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  logger?: Logger;
}

interface Lease extends KubeObject {
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

/** Kubernetes MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  private observedRecord = '';
  private observedAt = 0;
  private leading = false;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;

  constructor(
    private readonly client: KubeClient,
    private readonly options: LeaderElectionOptions,
  ) {
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /**
   * Campaigns until elected, then runs `lead` with a signal that aborts when leadership is lost or `signal` aborts.
   * Resolves after leadership ended (and the lease was released if we stopped on purpose).
   */
  async run(signal: AbortSignal, lead: (leadership: AbortSignal) => Promise<void> | void): Promise<void> {
    while (!signal.aborted && !(await this.tryAcquireOrRenew())) await pause(this.retryPeriodMs, signal);
    if (signal.aborted) return;
    this.leading = true;
    this.options.logger?.info({ lease: this.options.name, identity: this.options.identity }, 'became leader');
    const leadership = new AbortController();
    const onAbort = (): void => leadership.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const leading = Promise.resolve(lead(leadership.signal));
    let lastRenew = Date.now();
    while (!leadership.signal.aborted) {
      await pause(this.retryPeriodMs, leadership.signal);
      if (leadership.signal.aborted) break;
      if (await this.tryAcquireOrRenew()) lastRenew = Date.now();
      else if (Date.now() - lastRenew > this.renewDeadlineMs) {
        this.options.logger?.error(
          { lease: this.options.name },
          'lost leadership: could not renew the lease',
        );
        leadership.abort();
      }
    }
    signal.removeEventListener('abort', onAbort);
    this.leading = false;
    await leading;
    if (signal.aborted) await this.release();
  }

  private leaseSpec(old: Lease['spec'], now: Date): NonNullable<Lease['spec']> {
    const takingOver = old?.holderIdentity !== this.options.identity;
    return {
      holderIdentity: this.options.identity,
      leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
      acquireTime: takingOver || !old?.acquireTime ? microTime(now) : old.acquireTime,
      renewTime: microTime(now),
      leaseTransitions: (old?.leaseTransitions ?? 0) + (takingOver && old ? 1 : 0),
    };
  }

  /** One attempt; true when we hold the lease afterwards. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.options;
    const now = new Date();
    let lease: Lease;
    try {
      lease = await this.client.get<Lease>(CORE_RESOURCES.lease, namespace, name);
    } catch (error) {
      if (!isNotFound(error)) {
        this.options.logger?.warn({ err: (error as Error).message }, 'cannot read the leader-election lease');
        return false;
      }
      try {
        await this.client.create<Lease>(CORE_RESOURCES.lease, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace },
          spec: this.leaseSpec(undefined, now),
        });
        this.observe(JSON.stringify(this.leaseSpec(undefined, now)));
        return true;
      } catch {
        return false;
      }
    }
    const record = JSON.stringify(lease.spec ?? {});
    if (record !== this.observedRecord) this.observe(record);
    const holder = lease.spec?.holderIdentity;
    const durationMs = (lease.spec?.leaseDurationSeconds ?? 0) * 1000;
    const heldByOther = holder && holder !== identity && Date.now() < this.observedAt + durationMs;
    if (heldByOther) return false;
    try {
      const updated = await this.client.update<Lease>(CORE_RESOURCES.lease, {
        ...lease,
        spec: this.leaseSpec(lease.spec, now),
      });
      this.observe(JSON.stringify(updated.spec ?? {}));
      return true;
    } catch (error) {
      if (!isConflict(error))
        this.options.logger?.warn(
          { err: (error as Error).message },
          'cannot update the leader-election lease',
        );
      return false;
    }
  }

  private observe(record: string): void {
    this.observedRecord = record;
    this.observedAt = Date.now();
  }

  /** Gives the lease up so another replica can take over without waiting for expiry. */
  private async release(): Promise<void> {
    try {
      const lease = await this.client.get<Lease>(
        CORE_RESOURCES.lease,
        this.options.namespace,
        this.options.name,
      );
      if (lease.spec?.holderIdentity !== this.options.identity) return;
      await this.client.update<Lease>(CORE_RESOURCES.lease, {
        ...lease,
        spec: {
          ...lease.spec,
          holderIdentity: '',
          leaseDurationSeconds: 1,
          renewTime: microTime(new Date()),
        },
      });
      this.options.logger?.info({ lease: this.options.name }, 'released the lease');
    } catch (error) {
      this.options.logger?.warn({ err: (error as Error).message }, 'cannot release the lease');
    }
  }
}

/** Waits `ms`, or less when `signal` aborts: resolves either way, since the callers check the signal next. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return sleep(ms, undefined, { signal }).catch(() => undefined);
}
