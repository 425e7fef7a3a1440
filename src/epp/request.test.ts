import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RequestError, parseRequestBody } from './request.js';

test('request bodies: model and prompt per API', () => {
  const cases: [string, unknown, string, string][] = [
    ['/v1/completions', { model: 'm', prompt: 'hello' }, 'm', 'hello'],
    ['/v1/completions', { model: 'm', prompt: [1, 2, 3] }, 'm', '1 2 3'],
    [
      '/v1/chat/completions?x=1',
      {
        model: 'c',
        messages: [
          { role: 'system', content: 'be brief' },
          { role: 'user', content: [{ type: 'text', text: 'hi' }] },
        ],
      },
      'c',
      '<|system|>be brief<|user|>hi',
    ],
    ['/v1/responses', { model: 'r', instructions: 'I:', input: 'go' }, 'r', 'I:go'],
    ['/v1/embeddings', { model: 'e', input: ['a', 'b'] }, 'e', 'ab'],
  ];
  for (const [path, body, model, prompt] of cases) {
    const parsed = parseRequestBody(path, Buffer.from(JSON.stringify(body)));
    assert.equal(parsed.model, model, path);
    assert.equal(parsed.prompt, prompt, path);
  }
});

test('request bodies: malformed input is a 400', () => {
  for (const bad of ['', 'nul', '"text"', '{"model": 3}', '{"model": ""}', '\u0000\u0001']) {
    assert.throws(
      () => parseRequestBody('/v1/completions', Buffer.from(bad)),
      (e: unknown) => e instanceof RequestError && e.status === 400,
      JSON.stringify(bad),
    );
  }
});

test('a request body nested past the limit is a 400, before anything walks it', () => {
  // 100,000 levels: Array.prototype.join on the parsed prompt overflowed the stack (a 500 and an error log).
  const deep = `{"model":"m","prompt":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
  assert.throws(
    () => parseRequestBody('/v1/completions', Buffer.from(deep)),
    (e: unknown) => e instanceof RequestError && e.status === 400 && /deeper than 128 levels/.test(e.message),
  );
  // Nested within the limit: not a prompt of token ids, so not joined, and no error.
  const nested = parseRequestBody('/v1/completions', Buffer.from('{"model":"m","prompt":[[1,[2,[3]]],"x"]}'));
  assert.equal(nested.prompt, '1x');
});
