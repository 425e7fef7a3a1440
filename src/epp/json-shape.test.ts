import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonShapeProblem, MAX_JSON_DEPTH } from './json-shape.js';
import { parseRequestBody, RequestError } from './request.js';

const shape = (text: string, maxDepth = 3, maxContainers = 5) =>
  jsonShapeProblem(Buffer.from(text), { maxDepth, maxContainers });

test('jsonShapeProblem counts depth and containers outside strings only', () => {
  assert.equal(shape('{"a":[[1]]}'), undefined);
  assert.match(shape('{"a":[[[1]]]}')!, /deeper than 3 levels/);
  assert.match(shape('[[],[],[],[],[]]')!, /more than 5 arrays and objects/);
  // Brackets and escaped quotes inside strings are text.
  assert.equal(shape('{"a":"[[[[{{{{\\\\\\"[[[["}'), undefined);
  assert.equal(
    jsonShapeProblem(Buffer.from('[['.repeat(MAX_JSON_DEPTH / 2) + ']]'.repeat(MAX_JSON_DEPTH / 2))),
    undefined,
  );
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
