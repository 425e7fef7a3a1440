import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryKubeApi } from '../../test/harness/memory-kube-api.js';
import { waitFor } from '../process/index.js';
import { KubeClient } from './client.js';
import { LeaderElector, microTime } from './leader-election.js';
import { CORE_RESOURCES, type KubeObject } from './resources.js';

test('MicroTime has six fractional digits as the API server expects', () => {
  assert.equal(microTime(new Date('2026-01-02T03:04:05.678Z')), '2026-01-02T03:04:05.678000Z');
});

/** A candidate with its own client (so its requests can be counted) on a shared API. */
function candidate(api: MemoryKubeApi, identity: string) {
  const client = KubeClient.forTransport(api.transport);
  const elector = new LeaderElector(client, {
    namespace: 'sys',
    name: 'lock',
    identity,
    leaseDurationMs: 60_000,
    renewDeadlineMs: 50,
    retryPeriodMs: 5,
  });
  const stop = new AbortController();
  let leadership: AbortSignal | undefined;
  const done = elector.run(stop.signal, (signal) => {
    leadership = signal;
  });
  return {
    client,
    elector,
    get leadership() {
      return leadership;
    },
    stop: async () => {
      stop.abort();
      await done;
    },
    done,
  };
}

type Lease = KubeObject & { spec?: { holderIdentity?: string } };
const holder = (api: MemoryKubeApi) => {
  const lease: Lease | undefined = api.get(CORE_RESOURCES.lease, 'sys', 'lock');
  return lease?.spec?.holderIdentity;
};

test('one candidate leads; the other keeps trying and takes over at once when the leader releases the lease', async () => {
  const api = new MemoryKubeApi([CORE_RESOURCES.lease]);
  const a = candidate(api, 'a');
  await waitFor(() => a.elector.isLeader, { what: 'a to lead' });
  const b = candidate(api, 'b');
  // Not a wait for time to pass: b has read the lease held by a several times and still does not lead.
  await waitFor(() => (b.client.counts.get('get') ?? 0) >= 5, { what: 'b to try five times' });
  assert.equal(b.elector.isLeader, false);
  assert.equal(holder(api), 'a');

  await a.stop();
  assert.equal(a.leadership?.aborted, true, "a's leadership ended");
  assert.equal(holder(api) === 'a', false, 'a released the lease');
  // The lease was released, not left to expire (60 s here): b takes it on its next try.
  await waitFor(() => b.elector.isLeader, { what: 'b to take over' });
  assert.equal(holder(api), 'b');
  await b.stop();
});

test('a leader that cannot renew (someone else holds the lease) gives leadership up after the renew deadline', async () => {
  const api = new MemoryKubeApi([CORE_RESOURCES.lease]);
  const a = candidate(api, 'a');
  await waitFor(() => a.elector.isLeader, { what: 'a to lead' });
  const lease = api.get(CORE_RESOURCES.lease, 'sys', 'lock')!;
  api.put({ ...lease, spec: { ...(lease['spec'] as object), holderIdentity: 'intruder' } });
  await waitFor(() => a.leadership?.aborted, { what: "a's leadership to end" });
  assert.equal(a.elector.isLeader, false);
  await a.stop();
  assert.equal(holder(api), 'intruder', 'a does not release what it no longer holds');
});

test('three candidates racing for a free lease: exactly one wins', async () => {
  const api = new MemoryKubeApi([CORE_RESOURCES.lease]);
  const all = ['a', 'b', 'c'].map((id) => candidate(api, id));
  await waitFor(() => all.some((c) => c.elector.isLeader), { what: 'a leader' });
  await waitFor(() => all.every((c) => (c.client.counts.get('get') ?? 0) >= 3), {
    what: 'every candidate to try',
  });
  assert.equal(all.filter((c) => c.elector.isLeader).length, 1);
  await Promise.all(all.map((c) => c.stop()));
});
