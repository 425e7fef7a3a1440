import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  blockHashes,
  countTokens,
  outputTokenSource,
  outputTokens,
  seededRandom,
  tokenize,
} from './tokens.js';

describe('tokens', () => {
  it('tokenizes one token per whitespace-led word and round-trips the text', () => {
    const text = 'You are  a helpful\nbot.';
    assert.deepEqual(tokenize(text), ['You', ' are', '  a', ' helpful', '\nbot.']);
    assert.equal(tokenize(text).join(''), text);
    assert.deepEqual(tokenize('   '), []);
  });

  it('counts the tokens tokenize makes, whatever the whitespace', () => {
    for (const text of [
      '',
      '   ',
      'one',
      ' You are  a helpful\nbot. ',
      'a\u00a0b\u2003c\u3000d\ufeffe\u2028f\u200bg\u0085h\tI\vj\fk\rl',
      '\u{1F600} \u{1F600}\u{1F600}',
    ])
      assert.equal(countTokens(text), tokenize(text).length, JSON.stringify(text));
  });

  it('chains block hashes so equal prefixes share hashes and a change spoils every later block', () => {
    const a = blockHashes(['1', '2', '3', '4', '5'], 2);
    const b = blockHashes(['1', '2', '3', '9', '5'], 2);
    const c = blockHashes(['0', '2', '3', '4'], 2);
    assert.equal(a.length, 2, 'the partial last block is not hashed');
    assert.equal(a[0], b[0]);
    assert.notEqual(a[1], b[1]);
    assert.notEqual(a[1], c[1], 'the second block hash depends on the first block');
    assert.notEqual(blockHashes(['1', '2'], 2, 'lora-x')[0], a[0], 'the salt separates adapters');
  });

  it('generates the same text for the same seed and prompt', () => {
    assert.deepEqual(outputTokens(7, 'hello', 12), outputTokens(7, 'hello', 12));
    assert.notDeepEqual(outputTokens(7, 'hello', 12), outputTokens(8, 'hello', 12));
    assert.equal(outputTokens(7, 'hello', 12).length, 12);
    const next = outputTokenSource(7, 'hello');
    assert.deepEqual(
      Array.from({ length: 12 }, () => next()),
      outputTokens(7, 'hello', 12),
      'one at a time gives the same text',
    );
    const random = seededRandom(1);
    const values = [random(), random(), random()];
    assert.ok(values.every((v) => v >= 0 && v < 1));
    assert.deepEqual(values, ((r) => [r(), r(), r()])(seededRandom(1)));
  });
});
