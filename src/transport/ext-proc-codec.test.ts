import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  decodeEppProcessingRequest,
  decodeProcessingRequest,
  decodeProcessingResponse,
  encodeProcessingRequest,
  encodeProcessingResponse,
} from './ext-proc-codec.js';
import { extProcReference } from '../../test/harness/proto-reference.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- plain protobuf-shaped objects */
type Message = Record<string, any>;

/** The reference: protobufjs reading the vendored protos (proto/), an implementation independent of ours. */
const reference = extProcReference();

/** A deterministic generator, so a failure reproduces. */
function random(seed: number): (n: number) => number {
  let state = seed;
  return (n) => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state % n;
  };
}

function text(next: (n: number) => number, max: number): string {
  const alphabet = 'abcxyzAXZ-_:/.0123456789 éü日';
  let out = '';
  for (let i = next(max); i > 0; i--) out += alphabet[next(alphabet.length)];
  return out;
}

function bytes(next: (n: number) => number, max: number): Buffer {
  return Buffer.from(Array.from({ length: next(max) }, () => next(256)));
}

function headerMap(next: (n: number) => number): Message {
  return {
    headers: Array.from({ length: next(6) }, () => {
      const h: Message = { key: text(next, 12) };
      if (next(3) === 0) h['value'] = text(next, 20);
      else h['raw_value'] = bytes(next, 300);
      return h;
    }),
  };
}

function structValue(next: (n: number) => number, depth: number): Message {
  switch (next(depth > 2 ? 4 : 6)) {
    case 0:
      return { nullValue: 0 };
    case 1:
      return { numberValue: next(1000) / 7 };
    case 2:
      return { stringValue: text(next, 30) };
    case 3:
      return { boolValue: next(2) === 1 };
    case 4:
      return { structValue: struct(next, depth + 1) };
    default:
      return { listValue: { values: Array.from({ length: next(4) }, () => structValue(next, depth + 1)) } };
  }
}

function struct(next: (n: number) => number, depth: number): Message {
  const fields: Message = {};
  for (let i = next(4); i > 0; i--) fields[text(next, 8) || 'k'] = structValue(next, depth);
  return { fields };
}

function processingRequest(next: (n: number) => number): Message {
  const message: Message = {};
  const kind = ['request_headers', 'response_headers', 'request_body', 'response_body', 'request_trailers'][
    next(6)
  ];
  if (kind === 'request_headers' || kind === 'response_headers')
    message[kind] = { headers: headerMap(next), end_of_stream: next(2) === 1 };
  else if (kind === 'request_body' || kind === 'response_body')
    message[kind] = { body: bytes(next, next(4) === 0 ? 20_000 : 200), end_of_stream: next(2) === 1 };
  else if (kind === 'request_trailers') message[kind] = { trailers: headerMap(next) };
  else message['response_trailers'] = {};
  if (next(3) === 0)
    message['metadata_context'] = { filter_metadata: { [text(next, 20) || 'ns']: struct(next, 0) } };
  if (next(2) === 0)
    message['protocol_config'] = {
      request_body_mode: next(5),
      response_body_mode: next(5),
      send_body_without_waiting_for_header_response: next(2) === 1,
    };
  // Fields the EPP does not read: the decoder must skip them.
  if (next(3) === 0) message['attributes'] = { [text(next, 10) || 'a']: struct(next, 0) };
  if (next(3) === 0) message['observability_mode'] = true;
  return message;
}

/** For comparing as JSON: bytes as hex (a Buffer reaches a replacer already as `{ type: 'Buffer', data }`). */
function hexBytes(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  const json = value as { type?: unknown; data?: number[] } | null;
  return json?.type === 'Buffer' && Array.isArray(json.data) ? Buffer.from(json.data).toString('hex') : value;
}

/** protobufjs's `HeaderMap` as the hand-written decoder gives it: a record of lower-case name → value. */
function headerRecord(map: Message | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of map?.['headers'] ?? []) {
    if (!h.key) continue;
    out[h.key.toLowerCase()] = h.raw_value?.length
      ? Buffer.from(h.raw_value).toString('latin1')
      : (h.value ?? '');
  }
  return out;
}

/** What the EPP reads of a decoded request, so both decoders are compared on it. */
function relevant(message: Message): Message {
  const out: Message = {};
  for (const key of ['request', 'metadata_context', 'protocol_config']) {
    if (message[key] !== undefined) out[key] = message[key];
  }
  const oneof = message['request'];
  if (oneof) out[oneof] = message[oneof];
  return JSON.parse(JSON.stringify(out, hexBytes));
}

/**
 * protobufjs leaves out default values (false, 0, empty strings, lists and maps) that the hand-written decoder may set. Empty
 * messages stay: a oneof's presence is an empty message.
 */
function withoutDefaults(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutDefaults);
  if (value && typeof value === 'object') {
    const out: Message = {};
    for (const [k, v] of Object.entries(value)) {
      if (v === false || v === 0 || v === '' || (Array.isArray(v) && v.length === 0 && k !== 'values'))
        continue;
      if (k === 'fields' && Object.keys(v as object).length === 0) continue;
      out[k] = withoutDefaults(v);
    }
    return out;
  }
  return value;
}

test("ext_proc codec: the EPP's ProcessingRequest view decodes as protobufjs decodes it (2,000 random messages)", () => {
  const next = random(7);
  for (let i = 0; i < 2000; i++) {
    const message = processingRequest(next);
    const wire = reference.processingRequest.encode(message);
    const expected = reference.processingRequest.decode(wire);
    for (const kind of ['request_headers', 'response_headers'])
      if (expected[kind]) expected[kind]['headers'] = headerRecord(expected[kind]['headers']);
    if (expected['request_trailers'])
      expected['request_trailers']['trailers'] = headerRecord(expected['request_trailers']['trailers']);
    assert.deepEqual(
      withoutDefaults(relevant(decodeEppProcessingRequest(wire))),
      withoutDefaults(relevant(expected)),
      `message ${i}: ${JSON.stringify(relevant(message)).slice(0, 300)}`,
    );
  }
});

test('ext_proc codec: a malformed ProcessingRequest throws instead of returning garbage', () => {
  const wire = Buffer.from(
    reference.processingRequest.encode({ request_body: { body: Buffer.alloc(300, 1), end_of_stream: true } }),
  );
  for (let cut = 1; cut < wire.length; cut += 37) {
    for (const decode of [decodeEppProcessingRequest, decodeProcessingRequest])
      assert.throws(() => decode(wire.subarray(0, cut)), /truncated|past its message/);
  }
  for (const decode of [decodeEppProcessingRequest, decodeProcessingRequest, decodeProcessingResponse])
    assert.throws(() => decode(Buffer.from([0x0b])), /wire type 3/); // a group: not in this schema
});

function headerMutation(next: (n: number) => number): Message {
  return {
    set_headers: Array.from({ length: next(4) }, () => ({
      header: { key: text(next, 12) || 'x', raw_value: bytes(next, 200) },
      append_action: next(4),
    })),
    remove_headers: Array.from({ length: next(3) }, () => text(next, 10) || 'y'),
  };
}

function processingResponse(next: (n: number) => number): Message {
  const common = (): Message => {
    const response: Message = { header_mutation: headerMutation(next), clear_route_cache: next(2) === 1 };
    const body = next(4);
    if (body === 1) response['body_mutation'] = { body: bytes(next, 20_000) };
    if (body === 2) response['body_mutation'] = { clear_body: true };
    if (body === 3)
      response['body_mutation'] = {
        streamed_response: { body: bytes(next, next(2) ? 20_000 : 100), end_of_stream: next(2) === 1 },
      };
    if (next(4) === 0) response['status'] = 1;
    return response;
  };
  const message: Message = {};
  switch (next(6)) {
    case 0:
      message['request_headers'] = { response: common() };
      break;
    case 1:
      message['response_headers'] = next(2) ? { response: common() } : {};
      break;
    case 2:
      message['request_body'] = { response: common() };
      break;
    case 3:
      message['response_body'] = { response: common() };
      break;
    case 4:
      message[next(2) ? 'request_trailers' : 'response_trailers'] = next(2)
        ? { header_mutation: headerMutation(next) }
        : {};
      break;
    default:
      message['immediate_response'] = {
        status: { code: 400 + next(200) },
        headers: headerMutation(next),
        body: bytes(next, 500),
        details: text(next, 20),
      };
  }
  if (next(2) === 0) message['dynamic_metadata'] = struct(next, 0);
  return message;
}

test('ext_proc codec: ProcessingResponse encodes to what protobufjs decodes back to the same message', () => {
  const next = random(11);
  for (let i = 0; i < 2000; i++) {
    const message = processingResponse(next);
    const decoded = reference.processingResponse.decode(encodeProcessingResponse(message));
    // The names of the oneofs set, which proto-loader adds.
    const oneofNames = new Set(['response', 'mutation', 'kind']);
    const plain = (m: unknown) =>
      withoutDefaults(
        JSON.parse(JSON.stringify(m, (k, v: unknown) => (oneofNames.has(k) ? undefined : hexBytes(k, v)))),
      );
    assert.deepEqual(plain(decoded), plain(message), `message ${i}`);
  }
});

test('ext_proc codec: a field the schema does not have is an error, not silently dropped', () => {
  assert.throws(
    () =>
      encodeProcessingResponse({ mode_override: { response_header_mode: 2, no_such_mode: 1 } } as Message),
    /envoy\.extensions\.filters\.http\.ext_proc\.v3\.ProcessingMode has no field no_such_mode/,
  );
  assert.throws(
    () => encodeProcessingRequest({ request_headers: {}, header: {} } as Message),
    /ProcessingRequest has no field header/,
  );
  assert.throws(
    () => encodeProcessingResponse({ mode_override: { request_body_mode: 'SIDEWAYS' } } as Message),
    /request_body_mode: unknown enum value SIDEWAYS/,
  );
});

test('ext_proc codec: the full ProcessingRequest decoder reads every field as protobufjs does; encoding round-trips', () => {
  const next = random(13);
  for (let i = 0; i < 1000; i++) {
    const message = processingRequest(next);
    const wire = reference.processingRequest.encode(message);
    const plain = (m: unknown) => withoutDefaults(JSON.parse(JSON.stringify(m, hexBytes)));
    assert.deepEqual(plain(decodeProcessingRequest(wire)), plain(reference.processingRequest.decode(wire)));
    // The gateway's direction: our encoder, protobufjs reads back what was given.
    const ours = reference.processingRequest.decode(encodeProcessingRequest(message));
    const oneofs = new Set(['request', 'kind']);
    const noOneofs = (m: unknown) =>
      withoutDefaults(
        JSON.parse(JSON.stringify(m, (k, v: unknown) => (oneofs.has(k) ? undefined : hexBytes(k, v)))),
      );
    assert.deepEqual(noOneofs(ours), noOneofs(message), `message ${i}`);
  }
});

test('ext_proc codec: ProcessingResponse decodes as protobufjs encoded it (the gateway reading the EPP)', () => {
  const next = random(17);
  for (let i = 0; i < 1000; i++) {
    const message = processingResponse(next);
    const wire = reference.processingResponse.encode(message);
    const plain = (m: unknown) => withoutDefaults(JSON.parse(JSON.stringify(m, hexBytes)));
    assert.deepEqual(plain(decodeProcessingResponse(wire)), plain(reference.processingResponse.decode(wire)));
  }
});

test('ext_proc codec: known byte vectors, written out from the protobuf encoding rules', () => {
  // ProcessingRequest.request_body (4, length-delimited) { body (1) "hi", end_of_stream (2) true }
  const body = Buffer.from([0x22, 0x06, 0x0a, 0x02, 0x68, 0x69, 0x10, 0x01]);
  assert.deepEqual(
    encodeProcessingRequest({ request_body: { body: Buffer.from('hi'), end_of_stream: true } }),
    body,
  );
  assert.deepEqual(decodeEppProcessingRequest(body), {
    request_body: { body: Buffer.from('hi'), end_of_stream: true },
    request: 'request_body',
  });
  // request_headers (2) { headers (1) HeaderMap { headers (1) HeaderValue { key (1) "A", raw_value (3) "b" } } }
  const headers = Buffer.from([0x12, 0x0a, 0x0a, 0x08, 0x0a, 0x06, 0x0a, 0x01, 0x41, 0x1a, 0x01, 0x62]);
  assert.deepEqual(decodeEppProcessingRequest(headers).request_headers, { headers: { a: 'b' } });
  assert.deepEqual(decodeProcessingRequest(headers).request_headers, {
    headers: { headers: [{ key: 'A', raw_value: Buffer.from('b') }] },
  });
  // ProcessingResponse.immediate_response (7) { status (1) HttpStatus { code (1) 429 } } and a negative int32 enum
  // value (ten bytes, two's complement) read back as negative.
  const immediate = Buffer.from([0x3a, 0x05, 0x0a, 0x03, 0x08, 0xad, 0x03]);
  assert.deepEqual(encodeProcessingResponse({ immediate_response: { status: { code: 429 } } }), immediate);
  assert.deepEqual(decodeProcessingResponse(immediate).immediate_response, { status: { code: 429 } });
  const negative = encodeProcessingResponse({ immediate_response: { status: { code: -1 } } });
  assert.equal(negative.length, 2 + 2 + 1 + 10);
  assert.equal(decodeProcessingResponse(negative).immediate_response?.status?.code, -1);
});

test('ext_proc codec: a map key or header named __proto__ is data, not a prototype', () => {
  const wire = reference.processingRequest.encode({
    request_headers: { headers: { headers: [{ key: '__proto__', raw_value: Buffer.from('x') }] } },
    metadata_context: { filter_metadata: { ['__proto__']: { fields: { a: { stringValue: 'b' } } } } },
  });
  const epp = decodeEppProcessingRequest(wire);
  assert.equal(Object.getPrototypeOf(epp.request_headers!.headers), Object.prototype);
  assert.equal(Object.getOwnPropertyDescriptor(epp.request_headers!.headers, '__proto__')?.value, 'x');
  const filter = epp.metadata_context!.filter_metadata!;
  assert.equal(Object.getPrototypeOf(filter), Object.prototype);
  assert.deepEqual(Object.getOwnPropertyDescriptor(filter, '__proto__')?.value, {
    fields: { a: { stringValue: 'b', kind: 'stringValue' } },
  });
});

test('ext_proc codec: header removals reach the wire as protobufjs reads them, next to the headers set', () => {
  const mutation = {
    set_headers: [
      { header: { key: 'x-gateway-destination-endpoint', raw_value: Buffer.from('10.0.0.2:8000') } },
    ],
    remove_headers: ['x-prefiller-host-port', 'x-gateway-destination-endpoint-subset'],
  };
  for (const message of [
    { request_headers: { response: { header_mutation: mutation, clear_route_cache: true } } },
    { request_body: { response: { header_mutation: { remove_headers: mutation.remove_headers } } } },
  ]) {
    const decoded = reference.processingResponse.decode(encodeProcessingResponse(message));
    const common = (decoded['request_headers'] ?? decoded['request_body']).response;
    assert.deepEqual(common.header_mutation.remove_headers, mutation.remove_headers);
  }
});
