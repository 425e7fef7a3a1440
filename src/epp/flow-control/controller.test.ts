/**
 * The flow controller on its own: dispatch by priority, fairness between flows, FCFS/EDF order, band and global
 * limits, TTL, the empty-pool regime, cancellation (disconnect) and a flood of distinct fairness ids. Saturation is
 * a number the test sets; time for TTLs is real but short, and tests wait on outcomes, not on sleeps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlowController, type AdmissionRequest, type QueueOutcome } from './controller.js';
import { DEFAULT_BAND } from './settings.js';
import { priorityHoldback, staticUsageLimit } from './policies.js';
import type { BandSettings } from './bands.js';

function harness(opts: { band?: Partial<BandSettings>; ttlMs?: number; maxRequests?: number } = {}) {
  const pool = { saturation: 1, empty: false };
  const band = { ...DEFAULT_BAND, ...opts.band };
  const fc = new FlowController(
    {
      maxRequests: opts.maxRequests ?? 0,
      maxBytes: 0,
      defaultRequestTtlMs: opts.ttlMs ?? 0,
      noEndpointRequestTtlMs: opts.ttlMs ?? 0,
      bands: new Map(),
      defaultBand: band,
      defaultNegativeBand: undefined,
      usageLimit: staticUsageLimit,
    },
    () => pool,
    { pollIntervalMs: 1_000_000 },
  );
  const order: string[] = [];
  const outcomes = new Map<string, QueueOutcome>();
  const admit = (name: string, priority = 0, fairnessId = 'f', bytes = 10) => {
    const request: AdmissionRequest = {
      priority,
      fairnessId,
      bytes,
      sloDeadline: Infinity,
      labels: { model_name: 'm', target_model_name: 'm', fairness_id: fairnessId },
    };
    return fc.admit(request, (outcome) => {
      outcomes.set(name, outcome);
      if (outcome === 'Dispatched') {
        order.push(name);
        // Each dispatched request takes a slot: one per poke.
        pool.saturation = 1;
      }
    });
  };
  /** Frees one slot and lets the controller dispatch once. */
  const free = () => {
    pool.saturation = 0;
    fc.poke();
  };
  return { fc, pool, admit, free, order, outcomes };
}

test('below saturation a request is dispatched at once; above it, it waits and goes when capacity frees', () => {
  const h = harness();
  h.pool.saturation = 0.5;
  assert.equal(h.admit('a'), 'Dispatched');
  h.pool.saturation = 1;
  const t = h.admit('b');
  assert.equal(typeof t, 'object');
  assert.equal(h.fc.size, 1);
  h.free();
  assert.deepEqual(h.order, ['b']);
  assert.equal(h.fc.size, 0);
});

test('strict priority: the highest band goes first, FCFS within it', () => {
  const h = harness();
  h.admit('low1', -1);
  h.admit('std1', 0);
  h.admit('crit1', 5);
  h.admit('std2', 0);
  h.admit('crit2', 5);
  for (let i = 0; i < 5; i++) h.free();
  assert.deepEqual(h.order, ['crit1', 'crit2', 'std1', 'std2', 'low1']);
});

test('round-robin fairness: a flow with many waiting requests does not starve another', () => {
  const h = harness({ band: { fairness: 'round-robin-fairness-policy' } });
  for (let i = 0; i < 4; i++) h.admit(`noisy${i}`, 0, 'noisy');
  h.admit('quiet0', 0, 'quiet');
  h.admit('quiet1', 0, 'quiet');
  for (let i = 0; i < 6; i++) h.free();
  assert.deepEqual(h.order, ['noisy0', 'quiet0', 'noisy1', 'quiet1', 'noisy2', 'noisy3']);
});

test('global-strict fairness serves the band in one arrival order', () => {
  const h = harness();
  for (let i = 0; i < 3; i++) h.admit(`noisy${i}`, 0, 'noisy');
  h.admit('quiet0', 0, 'quiet');
  for (let i = 0; i < 4; i++) h.free();
  assert.deepEqual(h.order, ['noisy0', 'noisy1', 'noisy2', 'quiet0']);
});

test('a full band refuses with RejectedCapacity (RejectedNoEndpoints when the pool is empty); a global limit holds too', () => {
  const h = harness({ band: { maxRequests: 2 } });
  h.admit('a');
  h.admit('b');
  assert.equal(h.admit('c'), 'RejectedCapacity');
  h.pool.empty = true;
  assert.equal(h.admit('d'), 'RejectedNoEndpoints');
  const g = harness({ maxRequests: 1 });
  g.admit('a', 1);
  assert.equal(g.admit('b', 2), 'RejectedCapacity');
  const bytes = harness({ band: { maxBytes: 100 } });
  assert.equal(typeof bytes.admit('a', 0, 'f', 60), 'object');
  assert.equal(bytes.admit('b', 0, 'f', 60), 'RejectedCapacity');
});

test('the TTL evicts a waiting request (EvictedTTL, or EvictedNoEndpoints while the pool is empty)', async () => {
  const h = harness({ ttlMs: 30 });
  h.admit('a');
  h.pool.empty = true;
  const e = harness({ ttlMs: 30 });
  e.pool.empty = true;
  e.admit('b');
  await new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (h.outcomes.has('a') && e.outcomes.has('b')) {
        clearInterval(check);
        resolve();
      }
    }, 5);
  });
  assert.equal(h.outcomes.get('a'), 'EvictedTTL');
  assert.equal(e.outcomes.get('b'), 'EvictedNoEndpoints');
  assert.equal(h.fc.size + e.fc.size, 0);
});

test('a cancelled ticket (client gone) leaves the queue at once and is never dispatched', () => {
  const h = harness();
  const t = h.admit('a');
  h.admit('b');
  assert.equal(typeof t, 'object');
  (t as { cancel(): void }).cancel();
  assert.equal(h.fc.size, 1);
  assert.equal(h.fc.bytes, 10);
  h.free();
  h.free();
  assert.deepEqual(h.order, ['b']);
  assert.equal(h.outcomes.has('a'), false);
});

test('a flood of distinct fairness ids stays within the band limit and leaves nothing once drained', () => {
  const h = harness({ band: { maxRequests: 100, fairness: 'round-robin-fairness-policy' } });
  let refused = 0;
  for (let i = 0; i < 10_000; i++) if (h.admit(`r${i}`, 0, `tenant-${i}`) === 'RejectedCapacity') refused++;
  assert.equal(h.fc.size, 100);
  assert.equal(refused, 9_900);
  for (let i = 0; i < 100; i++) h.free();
  assert.equal(h.fc.size, 0);
  assert.equal([...h.fc.waiting()].length, 0);
});

test('EDF orders by enqueue time + TTL; slo-deadline by the header deadline', () => {
  const h = harness({ band: { ordering: 'slo-deadline-ordering-policy' } });
  const req = (name: string, slo: number) =>
    h.fc.admit(
      {
        priority: 0,
        fairnessId: 'f',
        bytes: 1,
        sloDeadline: slo,
        labels: { model_name: '', target_model_name: '', fairness_id: 'f' },
      },
      (o) => {
        if (o === 'Dispatched') {
          h.order.push(name);
          h.pool.saturation = 1;
        }
      },
    );
  req('none', Infinity);
  req('late', 5000);
  req('soon', 100);
  for (let i = 0; i < 3; i++) h.free();
  assert.deepEqual(h.order, ['soon', 'late', 'none']);
});

test('priority-holdback: lower priorities are held back at a lower saturation than higher ones', () => {
  const limit = priorityHoldback({ domain: 'rank', minCeiling: 0.5, maxCeiling: 1, ceilings: new Map() });
  assert.equal(limit(10, [10, 0]), 1);
  assert.equal(limit(0, [10, 0]), 0.5);
  const explicit = priorityHoldback({
    domain: 'explicit',
    minCeiling: 0,
    maxCeiling: 1,
    ceilings: new Map([[1, 0.9]]),
  });
  assert.equal(explicit(1, [1]), 0.9);
  assert.equal(explicit(0, [1, 0]), 0);
});
