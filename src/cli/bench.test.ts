import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LlmisvcError } from '../errors/index.js';
import { parseDuration, parseQpsList, parseTargets } from './bench.js';

describe('bench flags', () => {
  const durations: [string, number][] = [
    ['30s', 30_000],
    ['2m', 120_000],
    ['500ms', 500],
    ['1.5', 1500],
    ['1h', 3_600_000],
  ];
  for (const [text, ms] of durations) it(`${text} is ${ms} ms`, () => assert.equal(parseDuration(text), ms));

  it('rejects bad durations and rates', () => {
    assert.throws(() => parseDuration('soon'), LlmisvcError);
    assert.throws(() => parseQpsList('5,0', 'sweep'), LlmisvcError);
    assert.throws(() => parseQpsList('5,x', 'sweep'), LlmisvcError);
    assert.deepEqual(parseQpsList('5, 10,20', 'sweep'), [5, 10, 20]);
  });

  it('names targets', () => {
    assert.deepEqual(
      parseTargets(['http://127.0.0.1:1/v1/completions']).map((t) => t.name),
      ['127.0.0.1:1'],
    );
    assert.deepEqual(
      parseTargets(['rr=http://127.0.0.1:1', 'http://127.0.0.1:2']).map((t) => t.name),
      ['rr', 'target-2'],
    );
    assert.throws(() => parseTargets(['not a url']), LlmisvcError);
  });
});
