import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { childName, childNames } from './index.js';

describe('childName', () => {
  it('joins short names', () => assert.equal(childName('llama', '-kserve'), 'llama-kserve'));

  it('keeps every child of a 63-character service name a valid DNS label, stable and distinct', () => {
    const service = 'a' + 'b'.repeat(61) + 'c';
    const names = Object.values(childNames(service));
    for (const name of names) {
      assert.ok(name.length <= 63, `${name} is ${name.length} characters`);
      assert.match(name, /^[a-z]([-a-z0-9]*[a-z0-9])?$/);
    }
    assert.equal(new Set(names).size, names.length);
    assert.deepEqual(Object.values(childNames(service)), names);
    assert.notEqual(childName(service, '-kserve'), childName(service.slice(0, 62) + 'd', '-kserve'));
  });

  it('ends with the suffix, so shortened names still say what they are', () => {
    assert.ok(childName('x'.repeat(60), '-inference-pool').endsWith('-inference-pool'));
  });
});
