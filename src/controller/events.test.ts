import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EventInput } from './events.js';
import { EventCorrelator } from './events.js';

const subject = (name: string, uid = `uid-${name}`) => ({
  apiVersion: 'serving.kserve.io/v1alpha2',
  kind: 'LLMInferenceService',
  metadata: { name, namespace: 'ns', uid },
});
const event = (message: string, reason = 'DriftCorrected', name = 'svc'): EventInput => ({
  subject: subject(name),
  type: 'Normal',
  reason,
  message,
});
const MIN = 60_000;

/** Feeds events to the correlator, recording creates and patches as the recorder would. */
function run(c: EventCorrelator, e: EventInput, now: number) {
  const d = c.correlate(e, now);
  if (d.action === 'create') c.recorded(d.key, `ev-${now}`, 1, String(now));
  if (d.action === 'patch') c.recorded(d.key, d.name, d.count, d.firstTimestamp);
  return d;
}

test('the same event again bumps the count of one Event instead of creating another', () => {
  const c = new EventCorrelator();
  const first = run(c, event('Deployment x drifted; re-applied'), 0);
  assert.equal(first.action, 'create');
  for (let i = 2; i <= 5; i++) {
    const d = run(c, event('Deployment x drifted; re-applied'), i * 1000);
    assert.equal(d.action, 'patch');
    assert.deepEqual(d.action === 'patch' && [d.name, d.count, d.firstTimestamp], ['ev-0', i, '0']);
  }
  assert.equal(
    run(c, event('another message'), 6000).action,
    'create',
    'a different message is its own Event',
  );
  assert.equal(run(c, event('Deployment x drifted; re-applied', 'Other'), 7000).action, 'create');
  assert.equal(run(c, event('Deployment x drifted; re-applied', undefined, 'svc2'), 8000).action, 'create');
});

test('a loop of events on one object is rate limited: burst, then one per refill period', () => {
  const c = new EventCorrelator({ burst: 25, refillMs: 5 * MIN });
  const actions = Array.from({ length: 40 }, (_, i) => run(c, event('drift'), i).action);
  assert.equal(actions.filter((a) => a !== 'drop').length, 25);
  assert.equal(run(c, event('drift'), 4 * MIN).action, 'drop');
  assert.equal(run(c, event('drift'), 5 * MIN + 1).action, 'patch', 'one token back after 5 minutes');
  assert.equal(run(c, event('drift'), 5 * MIN + 2).action, 'drop');
  assert.equal(
    run(c, event('drift', 'X', 'other'), 5 * MIN + 3).action,
    'create',
    'other objects have their own budget',
  );
});

test('many different messages of one reason are combined into one Event', () => {
  const c = new EventCorrelator({ maxSimilar: 10 });
  for (let i = 0; i < 10; i++)
    assert.equal(run(c, event(`retry ${i}`, 'ReconcileFailed'), i).action, 'create');
  const eleventh = run(c, event('retry 10', 'ReconcileFailed'), 10);
  assert.equal(eleventh.action, 'create');
  assert.equal(eleventh.action === 'create' && eleventh.message, '(combined from similar events): retry 10');
  const twelfth = run(c, event('retry 11', 'ReconcileFailed'), 11);
  assert.equal(twelfth.action, 'patch');
  assert.equal(twelfth.action === 'patch' && twelfth.count, 2);
  // After the window, messages count afresh.
  assert.equal(run(c, event('retry 12', 'ReconcileFailed'), 11 + 11 * MIN).action, 'create');
  const fresh = run(c, event('retry 13', 'ReconcileFailed'), 12 + 11 * MIN);
  assert.equal(fresh.action === 'create' && fresh.message, 'retry 13');
});

test('a forgotten Event (expired on the server) is created afresh', () => {
  const c = new EventCorrelator();
  const first = run(c, event('m'), 0);
  c.forget(first.action === 'create' ? first.key : '');
  assert.equal(run(c, event('m'), 1).action, 'create');
});
