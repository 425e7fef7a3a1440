import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bodyRouting as routingOf,
  createBodyRouterHandler,
  MODEL_NAME_HEADER,
  SPLIT_DRAW_HEADER,
} from './body-router.js';
import type { GrpcCall } from '../transport/index.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- ext_proc messages are dynamic protobuf objects */

test('bodyRouting: the model of a JSON body; hostile and odd bodies route by path or are refused', () => {
  const json = (v: unknown) => Buffer.from(JSON.stringify(v));
  // The decoded body rides along for the EPP in the same process; what routes is the kind and the model.
  const bodyRouting = (contentType: string | undefined, body: Buffer | undefined) => {
    const routing = routingOf(contentType, body);
    return routing.kind === 'route' ? { kind: routing.kind, model: routing.model } : routing;
  };
  assert.deepEqual(routingOf('application/json', json({ model: 'ns/m', prompt: 'x' })), {
    kind: 'route',
    model: 'ns/m',
    json: { model: 'ns/m', prompt: 'x' },
  });
  // No content type: read as JSON (curl -d sends form-urlencoded, most clients JSON).
  assert.deepEqual(bodyRouting(undefined, json({ model: 'm' })), { kind: 'route', model: 'm' });
  assert.deepEqual(bodyRouting('application/json', undefined), { kind: 'route', model: undefined });
  assert.deepEqual(bodyRouting('application/json', Buffer.alloc(0)), { kind: 'route', model: undefined });
  // Another content type (a multipart upload): not read, routes by path.
  assert.deepEqual(bodyRouting('multipart/form-data; boundary=x', Buffer.from('--x')), {
    kind: 'route',
    model: undefined,
  });
  // Not a header value: routes by path only, so no model-name rule matches it.
  for (const model of [
    42,
    null,
    ['m'],
    { a: 1 },
    'm\u0000',
    'é',
    'a\r\nx-gateway-destination-endpoint: 1',
    '',
    'x'.repeat(4097),
  ])
    assert.deepEqual(
      bodyRouting('application/json', json({ model })),
      { kind: 'route', model: undefined },
      JSON.stringify(model),
    );
  assert.deepEqual(bodyRouting('application/json', json({ model: 'x'.repeat(4096) })).kind, 'route');
  // __proto__ as a key is data, not a prototype.
  assert.deepEqual(bodyRouting('application/json', Buffer.from('{"__proto__":{"model":"m"}}')), {
    kind: 'route',
    model: undefined,
  });
  for (const body of ['{"model": ', 'null', '[1]', '"m"', '7', '\u00ff'])
    assert.equal(bodyRouting('application/json', Buffer.from(body)).kind, 'reject', body);
});

/** A call that records what the handler sends. */
function recordingCall(): {
  call: GrpcCall<Record<string, any>>;
  sent: Record<string, any>[];
  ended: () => boolean;
} {
  const sent: Record<string, any>[] = [];
  let ended = false;
  return {
    call: { send: (m) => sent.push(m), end: () => (ended = true), isOpen: () => !ended },
    sent,
    ended: () => ended,
  };
}

const headerKeys = (mutation: any) =>
  (mutation.set_headers as { header: { key: string; raw_value: Buffer } }[]).map((o) => [
    o.header.key,
    o.header.raw_value.toString(),
  ]);

test('the ext_proc handler: headers answered at once, the body decides, the route cache cleared', () => {
  const { call, sent, ended } = recordingCall();
  const h = createBodyRouterHandler({ random: () => 0.5 })(call);
  h.message({
    request: 'request_headers',
    request_headers: { headers: { 'content-type': 'application/json', [MODEL_NAME_HEADER]: 'forged' } },
  });
  assert.deepEqual(sent[0], { request_headers: { response: {} } });
  assert.equal(sent.length, 1);
  h.message({
    request: 'request_body',
    request_body: { body: Buffer.from('{"model":"ns/m"}'), end_of_stream: true },
  });
  const answer = sent[1]!['request_body'].response;
  assert.equal(answer.clear_route_cache, true);
  assert.deepEqual(headerKeys(answer.header_mutation), [
    [SPLIT_DRAW_HEADER, String(2 ** 31)],
    [MODEL_NAME_HEADER, 'ns/m'],
  ]);
  assert.ok(ended());
});

test('the ext_proc handler: a request without a body loses any model-name header; bad JSON gets 400', () => {
  const bare = recordingCall();
  createBodyRouterHandler({ random: () => 0 })(bare.call).message({
    request: 'request_headers',
    request_headers: { headers: { [MODEL_NAME_HEADER]: 'forged' }, end_of_stream: true },
  });
  const response = bare.sent[0]!['request_headers'].response;
  assert.equal(response.clear_route_cache, true);
  assert.deepEqual(response.header_mutation.remove_headers, [MODEL_NAME_HEADER]);
  assert.deepEqual(headerKeys(response.header_mutation), [[SPLIT_DRAW_HEADER, '0']]);

  const bad = recordingCall();
  const h = createBodyRouterHandler()(bad.call);
  h.message({ request: 'request_headers', request_headers: { headers: {} } });
  h.message({
    request: 'request_body',
    request_body: { body: Buffer.from('{"model": '), end_of_stream: true },
  });
  const immediate = bad.sent[1]!['immediate_response'];
  assert.equal(immediate.status.code, 400);
  assert.match(immediate.body.toString(), /not valid JSON/);
  assert.ok(bad.ended());
  // Anything after the answer is ignored.
  h.message({ request: 'request_body', request_body: { body: Buffer.from('{}') } });
  assert.equal(bad.sent.length, 2);

  const big = recordingCall();
  const hb = createBodyRouterHandler({ bodyLimitBytes: 4 })(big.call);
  hb.message({ request: 'request_headers', request_headers: { headers: {} } });
  hb.message({
    request: 'request_body',
    request_body: { body: Buffer.from('{"a":1}'), end_of_stream: true },
  });
  assert.equal(big.sent[1]!['immediate_response'].status.code, 413);
});
