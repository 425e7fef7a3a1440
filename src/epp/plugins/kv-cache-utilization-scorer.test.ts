import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint, schedulingContext, seededRandom } from '../../../test/harness/endpoints.js';
import { kvCacheUtilizationScorer } from './kv-cache-utilization-scorer.js';

const context = schedulingContext('', { random: seededRandom(1) });

test('usage outside [0, 1] is clamped, and a NaN usage scores as a full cache', () => {
  const scores = kvCacheUtilizationScorer('kv').score(
    context,
    [0.25, NaN, Infinity, -Infinity, 2].map((u, i) => endpoint(`e${i}`, { kvCacheUsage: u })),
  );
  assert.deepEqual([...scores], [0.75, 0, 0, 1, 0]);
});
