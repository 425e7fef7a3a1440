import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { percentile, percentileOf, summarize } from './stats.js';

describe('percentiles', () => {
  const cases: { values: number[]; p: number; expected: number }[] = [
    { values: [], p: 50, expected: NaN },
    { values: [7], p: 99, expected: 7 },
    { values: [1, 2, 3, 4], p: 50, expected: 2.5 },
    { values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], p: 90, expected: 9.1 },
    { values: [0, 100], p: 99, expected: 99 },
  ];
  for (const c of cases) {
    it(`p${c.p} of [${c.values.join(', ')}] is ${c.expected}`, () => {
      const got = percentile(c.values, c.p);
      if (Number.isNaN(c.expected)) assert.ok(Number.isNaN(got));
      else assert.ok(Math.abs(got - c.expected) < 1e-9, `${got}`);
    });
  }

  it('takes typed arrays, and percentileOf sorts unsorted samples numerically without changing them', () => {
    assert.equal(percentile(Float64Array.from([1, 2, 3, 4]), 50), 2.5);
    const samples = [10, 9, 1, 2];
    assert.equal(percentileOf(samples, 50), 5.5); // a string sort would put 10 first
    assert.deepEqual(samples, [10, 9, 1, 2]);
  });

  it('summarizes unsorted samples', () => {
    const s = summarize([5, 1, 3]);
    assert.deepEqual([s.count, s.mean, s.p50, s.max], [3, 3, 3, 5]);
  });
});
