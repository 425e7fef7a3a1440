import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Parameters } from './parameters.js';
import { tokenProducerOptions } from './token-producer.js';
import { TokenPrefixStore } from './token-prefix-store.js';

/** A word tokenizer standing in for the model server's: one id per word or punctuation mark. */
function tokenize(text: string): number[] {
  return (text.match(/\w+|[^\w\s]/g) ?? []).map((w) => {
    let h = 7;
    for (let i = 0; i < w.length; i++) h = (Math.imul(h, 31) + w.charCodeAt(i)) >>> 0;
    return h;
  });
}

const words = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag}${i}`).join(' ');
const SYSTEM = words('sys', 300);
const isPrefixOf = (a: ArrayLike<number>, b: readonly number[]) =>
  a.length <= b.length && Array.from(a).every((t, i) => t === b[i]);

describe('token prefix store', () => {
  it('answers an exact repeat with the whole render, and nothing for text never rendered', () => {
    const store = new TokenPrefixStore({ chunkChars: 256, maxTokens: 100_000 });
    const text = `${SYSTEM} question one?`;
    assert.equal(store.lookup('m', text), undefined);
    store.learn('m', text, tokenize(text));
    const hit = store.lookup('m', text)!;
    assert.equal(hit.exact, true);
    assert.deepEqual(Array.from(hit.tokens), tokenize(text));
    assert.equal(store.lookup('other model', text), undefined, 'another scope never shares tokens');
    assert.equal(store.lookup('m', 'unrelated text '.repeat(40)), undefined);
  });

  it('gives a new prompt the tokens of its rendered text prefix, cut to what every render sharing it agrees on', () => {
    const store = new TokenPrefixStore({ chunkChars: 256, maxTokens: 100_000 });
    for (const q of ['what is one?', 'and two, then?']) {
      const text = `${SYSTEM} ${q}`;
      store.learn('m', text, tokenize(text));
    }
    const text = `${SYSTEM} a question never rendered, much longer than the others were`;
    const hit = store.lookup('m', text)!;
    assert.equal(hit.exact, false);
    assert.ok(
      isPrefixOf(hit.tokens, tokenize(text)),
      'the remembered tokens are the real tokens of its prefix',
    );
    // The prefix is 300 words; the last chunk boundary inside it leaves at most one chunk (~40 words) uncovered.
    assert.ok(hit.tokens.length >= 250, `covers most of the shared prefix (${hit.tokens.length} tokens)`);
    assert.ok(hit.coveredChars <= SYSTEM.length + 1);
  });

  it('stays within maxTokens, least recently used out first', () => {
    const store = new TokenPrefixStore({ chunkChars: 64, maxTokens: 5_000 });
    for (let i = 0; i < 200; i++) {
      const text = words(`p${i}x`, 100);
      store.learn('m', text, tokenize(text));
      assert.ok(store.size.tokens <= 5_000, `after ${i + 1} renders: ${store.size.tokens} tokens`);
    }
    const last = words('p199x', 100);
    assert.equal(store.lookup('m', last)?.exact, true, 'the newest render is kept');
    assert.equal(store.lookup('m', words('p0x', 100)), undefined, 'the oldest is gone');
  });

  it('bounds hostile input: a render larger than the budget is not kept, a huge prompt costs bounded keys', () => {
    const store = new TokenPrefixStore({ chunkChars: 256, maxTokens: 1_000 });
    const text = words('big', 5_000);
    store.learn('m', text, tokenize(text));
    assert.ok(store.size.tokens <= 1_000);
    assert.notEqual(store.lookup('m', text)?.exact, true, 'the whole render is over the budget');
    const huge = 'x'.repeat(8 << 20);
    store.learn('m', huge, new Uint32Array(10));
    assert.ok(store.size.entries <= store.size.tokens && store.size.tokens <= 1_000);
    store.learn('m', '', []);
    assert.equal(store.lookup('m', ''), undefined);
  });
});

describe('token-producer prefixStore parameters', () => {
  const parse = (prefixStore: unknown) => {
    const problems: { path: string; message: string }[] = [];
    const o = tokenProducerOptions(
      new Parameters({ vllm: { url: 'http://a:1' }, prefixStore }, 'p', problems),
    );
    return { o, problems: problems.map((x) => `${x.path} ${x.message}`).join('\n') };
  };
  it('defaults on for vllm, can be turned off, and names each bad field', () => {
    assert.equal(parse(undefined).o.prefixStore?.missWaitMs, 50);
    assert.equal(parse({ enabled: false }).o.prefixStore, undefined);
    assert.equal(parse({ missWait: '5ms', chunkChars: 64 }).o.prefixStore?.chunkChars, 64);
    const bad = parse({
      missWait: '1h',
      minPrefixOverlapRatio: 2,
      maxTokens: -1,
      chunkChars: 1e9,
      x: 1,
    }).problems;
    for (const field of ['missWait', 'minPrefixOverlapRatio', 'maxTokens', 'chunkChars', 'prefixStore.x'])
      assert.match(bad, new RegExp(field));
    assert.match(parse('on').problems, /prefixStore/);
  });
});
