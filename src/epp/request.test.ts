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
