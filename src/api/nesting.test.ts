import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_NESTING_DEPTH, nestingProblem } from './nesting.js';
import { validateObject } from './documents.js';

/** `{ a: { a: … } }` `depth` levels deep, built without recursion. */
function nested(depth: number): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  let at = root;
  for (let i = 0; i < depth; i++) {
    const next: Record<string, unknown> = {};
    at['a'] = next;
    at = next;
  }
  return root;
}

test('nestingProblem names the first path past the limit, through objects and lists', () => {
  assert.equal(nestingProblem({ a: [{ b: 1 }] }, 'spec', 3), undefined);
  assert.deepEqual(nestingProblem({ a: [{ b: {} }] }, 'spec', 2)?.path, 'spec.a[0].b');
  assert.equal(nestingProblem(nested(MAX_NESTING_DEPTH), ''), undefined);
  assert.match(nestingProblem(nested(MAX_NESTING_DEPTH + 1), '')!.message, /nests deeper than 100 levels/);
});

test('a manifest nested far deeper than any stack is reported, not thrown', () => {
  // 200,000 levels: schema checks, structuredClone and JSON.stringify each overflow the stack on a few thousand.
  const object = {
    apiVersion: 'serving.kserve.io/v1alpha2',
    kind: 'LLMInferenceService',
    metadata: { name: 'deep' },
    spec: { model: { uri: 'hf://x/y' }, router: { route: { http: { spec: nested(200_000) } } } },
  };
  const problems = validateObject(object);
  assert.equal(problems.length, 1);
  assert.match(problems[0]!.path, /^spec\.router\.route\.http\.spec\.a\.a\.a/);
  assert.match(problems[0]!.message, /nests deeper than 100 levels/);
});
