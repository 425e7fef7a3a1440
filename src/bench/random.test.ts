import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { poissonArrivals } from './random.js';

describe('poissonArrivals', () => {
  it('is deterministic per seed, ascending, and inside the window', () => {
    const a = poissonArrivals(1, 20, 10_000);
    assert.deepEqual(a, poissonArrivals(1, 20, 10_000));
    assert.notDeepEqual(a, poissonArrivals(2, 20, 10_000));
    assert.ok(a.every((t, i) => t >= 0 && t < 10_000 && (i === 0 || t > (a[i - 1] as number))));
  });

  it('sends about qps × duration requests', () => {
    // 2000 expected arrivals: a Poisson count is within ±5 standard deviations (±224) essentially always.
    const count = poissonArrivals(3, 100, 20_000).length;
    assert.ok(Math.abs(count - 2000) < 224, `${count}`);
  });
});
