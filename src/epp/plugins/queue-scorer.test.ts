import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint, schedulingContext, seededRandom } from '../../../test/harness/endpoints.js';
import { queueScorer } from './queue-scorer.js';

const context = schedulingContext('', { random: seededRandom(1) });

test('a queue that is not a count scores as the longest, and no score is NaN', () => {
  for (const bad of [Infinity, NaN, -1_000_000, 1e300]) {
    const scores = queueScorer('q').score(context, [
      endpoint('idle', { waitingQueueSize: 0 }),
      endpoint('busy', { waitingQueueSize: 10 }),
      endpoint('bad', { waitingQueueSize: bad }),
    ]);
    assert.ok(
      scores.every((s) => s >= 0 && s <= 1),
      `${bad}: ${scores.join()}`,
    );
    assert.equal(scores[0], 1, String(bad));
    assert.ok(scores[0] > scores[1]! && scores[1]! > scores[2]!, `${bad}: ${scores.join()}`);
  }
});
