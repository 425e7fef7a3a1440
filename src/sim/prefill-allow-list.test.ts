import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normalizeHostPort, prefillRefusal } from './prefill-allow-list.js';

test('prefill allow-list: only an exact host:port of the list passes', () => {
  const allowed = new Set(['10.0.0.5:8000', '[fd00::1]:8000']);
  assert.equal(prefillRefusal('x-prefiller-host-port', '10.0.0.5:8000', allowed), undefined);
  assert.equal(prefillRefusal('x-prefiller-host-port', ' [FD00::1]:8000 ', allowed), undefined);
  for (const [value, status] of [
    ['10.0.0.5:8001', 403], // another port of an allowed host
    ['127.0.0.1:22', 403],
    ['metadata.internal:80', 403],
    ['10.0.0.5:8000/x', 400],
    ['http://10.0.0.5:8000', 400],
    ['10.0.0.5:8000, 127.0.0.1:1', 400], // two values joined
    ['10.0.0.5', 400],
    ['10.0.0.5:0', 400],
  ] as const) {
    const refusal = prefillRefusal('x-prefiller-host-port', value, allowed);
    assert.equal(refusal?.status, status, value);
    assert.match(refusal.message, /x-prefiller-host-port/);
    assert.ok(refusal.message.includes(JSON.stringify(value)), 'the message names the endpoint');
    if (!value.includes('10.0.0.5')) assert.ok(!refusal.message.includes('10.0.0.5'), 'the list is not told');
  }
  assert.equal(
    prefillRefusal('x-prefiller-host-port', '10.0.0.5:8000', new Set())?.status,
    403,
    'empty: none',
  );
});

test('prefill allow-list: entries are normalised host:port pairs', () => {
  assert.equal(normalizeHostPort('Prefill-0.Pool.svc:8000'), 'prefill-0.pool.svc:8000');
  assert.equal(normalizeHostPort('10.0.0.5:65536'), undefined);
  assert.equal(normalizeHostPort(''), undefined);
});
