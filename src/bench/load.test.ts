import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { baseUrl } from './load.js';

describe('baseUrl', () => {
  const cases: [string, string][] = [
    ['http://127.0.0.1:8080', 'http://127.0.0.1:8080'],
    ['http://127.0.0.1:8080/', 'http://127.0.0.1:8080'],
    ['http://127.0.0.1:8080/v1/completions', 'http://127.0.0.1:8080'],
    ['http://gw.local/ns/svc/v1/chat/completions', 'http://gw.local/ns/svc'],
    ['http://gw.local/ns/svc/', 'http://gw.local/ns/svc'],
  ];
  for (const [input, expected] of cases)
    it(`${input} → ${expected}`, () => assert.equal(baseUrl(input), expected));
});
