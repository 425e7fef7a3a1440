import { test } from 'node:test';
import assert from 'node:assert/strict';
import { microTime } from './leader-election.js';

test('MicroTime has six fractional digits as the API server expects', () => {
  assert.equal(microTime(new Date('2026-01-02T03:04:05.678Z')), '2026-01-02T03:04:05.678000Z');
});
