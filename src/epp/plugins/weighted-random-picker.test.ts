import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint, schedulingContext, seededRandom } from '../../../test/harness/endpoints.js';
import { weightedRandomPicker } from './weighted-random-picker.js';

const context = schedulingContext('', { random: seededRandom(3) });

test('a NaN score weighs nothing next to a positive one, and is never ordered before it', () => {
  const [a, b, c] = ['a', 'b', 'c'].map((x) => endpoint(x));
  const picker = weightedRandomPicker('w', 3);
  for (let i = 0; i < 50; i++) {
    const picked = picker.pick(context, [
      { endpoint: a!, score: NaN },
      { endpoint: b!, score: 0.5 },
      { endpoint: c!, score: NaN },
    ]);
    assert.deepEqual(
      picked.map((e) => e.address),
      ['b'],
    );
  }
  const allNaN = weightedRandomPicker('w').pick(context, [
    { endpoint: a!, score: NaN },
    { endpoint: b!, score: NaN },
  ]);
  assert.equal(allNaN.length, 1, 'no positive score: uniform, still a pick');
});
