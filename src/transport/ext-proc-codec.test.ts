import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeProcessingRequest, encodeProcessingResponse } from './ext-proc-codec.js';
import { loadProtos } from '../gateway/proto.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- plain protobuf-shaped objects */
type Message = Record<string, any>;

/** The reference: protobufjs with Envoy's full schema (what the EPP used before the hand-written codec). */
const reference = loadProtos();

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
 * protobufjs leaves out default values (false, 0, empty lists and maps) that the hand-written decoder may set. Empty
 * messages stay: a oneof's presence is an empty message.
 */
function withoutDefaults(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutDefaults);
  if (value && typeof value === 'object') {
    const out: Message = {};
    for (const [k, v] of Object.entries(value)) {
      if (v === false || v === 0 || (Array.isArray(v) && v.length === 0 && k !== 'values')) continue;
      if (k === 'fields' && Object.keys(v as object).length === 0) continue;
      out[k] = withoutDefaults(v);
    }
    return out;
  }
  return value;
}

test('ext_proc codec: ProcessingRequest decodes as protobufjs decodes it (2,000 random messages)', () => {
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
      withoutDefaults(relevant(decodeProcessingRequest(wire))),
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
    assert.throws(() => decodeProcessingRequest(wire.subarray(0, cut)), /truncated|past its message/);
  }
  assert.throws(() => decodeProcessingRequest(Buffer.from([0x0b])), /wire type 3/); // a group: not in this schema
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

test('ext_proc codec: a response field the encoder does not know is an error, not silently dropped', () => {
  assert.throws(
    () => encodeProcessingResponse({ mode_override: { response_header_mode: 2 } }),
    /mode_override is not supported/,
  );
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
