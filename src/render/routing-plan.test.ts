import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type BackendRef } from './model-routing.js';
import { groupConditions, planModelRouting, type RoutingCandidate } from './routing-plan.js';

const pool = (name: string): BackendRef => ({
  group: 'inference.networking.k8s.io',
  kind: 'InferencePool',
  name: `${name}-inference-pool`,
  port: 8000,
});

function candidate(name: string, over: Partial<RoutingCandidate> = {}): RoutingCandidate {
  return { name, model: 'm', backend: pool(name), ready: true, stopped: false, ...over };
}

describe('planModelRouting', () => {
  it('splits a group by spec weight while every member is Ready', () => {
    const plans = planModelRouting([
      candidate('a', { group: 'g', weight: 90 }),
      candidate('b', { group: 'g', weight: 10 }),
    ]);
    assert.deepEqual(
      plans.get('a')!.routing.members!.map((m) => [m.name, m.weight]),
      [
        ['a', 90],
        ['b', 10],
      ],
    );
    assert.deepEqual(plans.get('a')!.routing, plans.get('b')!.routing);
  });

  it('gives a member that is not Ready or is stopped weight 0, and reports it', () => {
    const plans = planModelRouting([
      candidate('a', { group: 'g', weight: 90, ready: false }),
      candidate('b', { group: 'g', weight: 10 }),
      candidate('c', { group: 'g', weight: 5, stopped: true }),
    ]);
    const group = plans.get('b')!.group!;
    assert.deepEqual(
      group.members.map((m) => [m.name, m.effectiveWeight]),
      [
        ['a', 0],
        ['b', 10],
        ['c', 0],
      ],
    );
    const conditions = groupConditions(group);
    assert.equal(conditions.ready.status, true);
    assert.match(conditions.ready.message, /b 100\.0%/);
    assert.equal(conditions.degraded.status, true);
    assert.match(conditions.degraded.message, /a \(not Ready\), c \(stopped\) get weight 0/);
  });

  it('is not GroupReady when no member with weight serves', () => {
    const plans = planModelRouting([
      candidate('a', { group: 'g', weight: 0 }),
      candidate('b', { group: 'g', weight: 3, ready: false }),
    ]);
    const conditions = groupConditions(plans.get('a')!.group!);
    assert.equal(conditions.ready.status, false);
    assert.equal(conditions.ready.reason, 'NoMemberServing');
  });

  it('keeps a contested model name for the oldest claimant, then by name', () => {
    const plans = planModelRouting([
      candidate('young', { creationTimestamp: '2026-02-01T00:00:00Z' }),
      candidate('old', { creationTimestamp: '2026-01-01T00:00:00Z' }),
      candidate('grouped', { group: 'g', weight: 1, creationTimestamp: '2026-03-01T00:00:00Z' }),
    ]);
    assert.equal(plans.get('old')!.routing.enabled, true);
    assert.equal(plans.get('old')!.collision, undefined);
    assert.deepEqual(plans.get('young')!.collision, { model: 'm', keptBy: ['old'] });
    assert.equal(plans.get('young')!.routing.enabled, false);
    assert.equal(plans.get('grouped')!.routing.enabled, false);
    // Without timestamps (offline), names decide.
    const offline = planModelRouting([candidate('b'), candidate('a')]);
    assert.equal(offline.get('a')!.routing.enabled, true);
    assert.equal(offline.get('b')!.routing.enabled, false);
  });

  it('lets a wholly stopped claimant yield its name to one that runs', () => {
    const plans = planModelRouting([
      candidate('old', { stopped: true, creationTimestamp: '2026-01-01T00:00:00Z' }),
      candidate('new', { creationTimestamp: '2026-02-01T00:00:00Z' }),
    ]);
    assert.equal(plans.get('new')!.routing.enabled, true);
    assert.equal(plans.get('old')!.routing.enabled, false);
  });

  it('does not let services with different model names collide', () => {
    const plans = planModelRouting([candidate('a', { model: 'x' }), candidate('b', { model: 'y' })]);
    assert.equal(plans.get('a')!.routing.enabled, true);
    assert.equal(plans.get('b')!.routing.enabled, true);
  });
});
