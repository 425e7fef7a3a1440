import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkQueue } from './work-queue.js';

test('a key added many times is handed out once', async () => {
  const q = new WorkQueue<string>();
  q.add('a');
  q.add('a');
  q.add('b');
  q.add('a');
  assert.equal(q.length, 2);
  assert.equal(await q.get(), 'a');
  assert.equal(await q.get(), 'b');
  assert.equal(q.length, 0);
});

test('a key added while processing comes back after done, never to two workers at once', async () => {
  const q = new WorkQueue<string>();
  q.add('a');
  const first = await q.get();
  q.add('a');
  assert.equal(q.length, 0, 'not queued while a worker holds it');
  q.done(first!);
  assert.equal(q.length, 1);
  assert.equal(await q.get(), 'a');
});

test('a waiting worker receives a key added later', async () => {
  const q = new WorkQueue<string>();
  const waiting = q.get();
  q.add('x');
  assert.equal(await waiting, 'x');
});

test('failures back off exponentially per key and forget resets', () => {
  const q = new WorkQueue<string>({ baseDelayMs: 10, maxDelayMs: 50 });
  assert.equal(q.nextDelay('a'), 10, 'the delay a failure would get, before it is counted');
  assert.deepEqual(
    [q.addRateLimited('a'), q.addRateLimited('a'), q.addRateLimited('a'), q.addRateLimited('a')],
    [10, 20, 40, 50],
  );
  assert.equal(q.addRateLimited('b'), 10, 'other keys are independent');
  assert.equal(q.nextDelay('a'), 50, 'capped');
  q.forget('a');
  assert.equal(q.failureCount('a'), 0);
  q.shutdown();
});

test('addAfter keeps the earliest deadline and delivers the key', async () => {
  // The queue's timers are unref'd (they must not keep a process alive): hold the event loop open meanwhile.
  const keepAlive = setInterval(() => undefined, 1000);
  const q = new WorkQueue<string>();
  q.addAfter('a', 5);
  q.addAfter('a', 10_000);
  assert.equal(q.delayed, 1);
  assert.equal(await q.get(), 'a');
  q.shutdown();
  clearInterval(keepAlive);
});

test('shutdown releases waiting workers', async () => {
  const q = new WorkQueue<string>();
  const waiting = q.get();
  q.shutdown();
  assert.equal(await waiting, undefined);
  q.add('late');
  assert.equal(q.length, 0);
});
