import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DESTINATION_HEADER, SUBSET_HINT_KEY } from './extproc-server.js';
import { PREFILL_HEADER } from './plugins/index.js';
import { EPP_ROUTING_HEADERS, isRoutingHeader, routingHeadersToRemove } from './routing-headers.js';

test('routing headers: every header the EPP sets or reads as a hint is one of its own', () => {
  for (const name of [DESTINATION_HEADER, SUBSET_HINT_KEY, PREFILL_HEADER])
    assert.ok(isRoutingHeader(name), name);
  assert.ok(isRoutingHeader('X-Prefiller-Host-Port'), 'any case');
  assert.ok(!isRoutingHeader('x-gateway-inference-objective'), "the objective is the client's to choose");
  assert.ok(!isRoutingHeader('x-request-id'));
});

test('routing headers: all are removed but those set in the same answer', () => {
  assert.deepEqual(routingHeadersToRemove(), [...EPP_ROUTING_HEADERS]);
  const removed = routingHeadersToRemove([DESTINATION_HEADER, 'X-Prefiller-Host-Port', 'x-unrelated']);
  assert.ok(!removed.includes(DESTINATION_HEADER) && !removed.includes(PREFILL_HEADER));
  assert.equal(removed.length, EPP_ROUTING_HEADERS.length - 2);
});
