import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonShapeProblem, MAX_JSON_DEPTH } from './json-shape.js';

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
