import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint, schedulingContext, seededRandom } from '../../../test/harness/endpoints.js';
import { metricsFromExposition } from '../model-server-metrics.js';
import { kvCacheUtilizationScorer } from './kv-cache-utilization-scorer.js';
import { maxScorePicker } from './max-score-picker.js';
import { queueScorer } from './queue-scorer.js';

const context = schedulingContext('', { random: seededRandom(7) });

test('a NaN score ranks lowest: the picker still picks, one or several', () => {
  const [a, b, c] = ['a', 'b', 'c'].map((x) => endpoint(x));
  const one = maxScorePicker('p');
  for (let i = 0; i < 20; i++) {
    const picked = one.pick(context, [
      { endpoint: a!, score: NaN },
      { endpoint: b!, score: 0.2 },
      { endpoint: c!, score: NaN },
    ]);
    assert.deepEqual(
      picked.map((e) => e.address),
      ['b'],
    );
  }
  const all = one.pick(context, [
    { endpoint: a!, score: NaN },
    { endpoint: b!, score: NaN },
  ]);
  assert.equal(all.length, 1, 'all NaN: one of them, not none');
  assert.equal(one.pick(context, [{ endpoint: a!, score: -Infinity }]).length, 1);
  assert.deepEqual(
    maxScorePicker('p', 2)
      .pick(context, [
        { endpoint: a!, score: NaN },
        { endpoint: b!, score: 0.1 },
        { endpoint: c!, score: 0.9 },
      ])
      .map((e) => e.address),
    ['c', 'b'],
  );
});

test('a pod reporting an infinite queue no longer leaves the pool without a pick (all 503 before)', () => {
  const idle = endpoint('idle', metricsFromExposition('vllm:num_requests_waiting 0\n', 1));
  const liar = endpoint('liar', metricsFromExposition('vllm:num_requests_waiting 1e309\n', 1));
  // The metrics the scraper produced before it dropped non-finite samples reach the scorer unchanged.
  const raw = endpoint('raw', { waitingQueueSize: Infinity, kvCacheUsage: NaN });
  const endpoints = [idle, liar, raw];
  const queue = queueScorer('q').score(context, endpoints);
  const kv = kvCacheUtilizationScorer('kv').score(context, endpoints);
  const scored = endpoints.map((endpoint, i) => ({ endpoint, score: queue[i]! + kv[i]! }));
  const picked = maxScorePicker('p').pick(context, scored);
  assert.equal(picked.length, 1);
  assert.notEqual(picked[0]!.address, 'raw');
});
