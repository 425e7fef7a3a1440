/**
 * @module transport/ext-proc-codec
 * Protobuf wire codec for the two ext_proc messages on the EPP's hot path: `ProcessingRequest` in, `ProcessingResponse`
 * out. Every request through the gateway costs three to five of each, and the generic protobufjs codec (reflection,
 * `fromObject` / `toObject` copies) was a tenth of the EPP's CPU per request and a sixth of its garbage.
 *
 * The objects have the shape `@grpc/proto-loader` gives (snake_case fields, the oneof's name in `request`, bytes as
 * Buffers, `google.protobuf.Struct` values in camelCase), except that a `HeaderMap` decodes to a record of lower-case
 * name → value. Decoding reads only the fields the EPP uses and skips the rest by wire type; bytes are views into the
 * received message. `ext-proc-codec.test.ts` checks both directions against protobufjs with the full
 * Envoy schema.
 *
 * Field numbers: envoy/service/ext_proc/v3/external_processor.proto, envoy/config/core/v3/base.proto,
 * google/protobuf/struct.proto, envoy/type/v3/http_status.proto.
 */

import { FIXED64, LENGTH_DELIMITED, Reader, VARINT, Writer } from './protobuf-wire.js';

/** Body send modes as Envoy numbers them (`ProcessingMode.BodySendMode`). */
export const BodySendMode = {
  NONE: 0,
  STREAMED: 1,
  BUFFERED: 2,
  BUFFERED_PARTIAL: 3,
  FULL_DUPLEX_STREAMED: 4,
} as const;

/* eslint-disable @typescript-eslint/no-explicit-any -- the messages are plain protobuf-shaped objects */
type Message = Record<string, any>;

const REQUEST_ONEOF: Record<number, string> = {
  2: 'request_headers',
  3: 'response_headers',
  4: 'request_body',
  5: 'response_body',
  6: 'request_trailers',
  7: 'response_trailers',
};

/** Decodes a `ProcessingRequest`: the oneof it carries, `metadata_context` and `protocol_config`. */
export function decodeProcessingRequest(bytes: Uint8Array): Message {
  const r = Reader.of(bytes);
  const out: Message = {};
  while (r.more()) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    const oneof = REQUEST_ONEOF[field];
    if (oneof !== undefined && wireType === LENGTH_DELIMITED) {
      const sub = r.sub();
      out[oneof] = field <= 3 ? httpHeaders(sub) : field <= 5 ? httpBody(sub) : httpTrailers(sub);
      out['request'] = oneof;
    } else if (field === 8 && wireType === LENGTH_DELIMITED) out['metadata_context'] = metadata(r.sub());
    else if (field === 11 && wireType === LENGTH_DELIMITED) out['protocol_config'] = protocolConfig(r.sub());
    else r.skip(wireType);
  }
  return out;
}

/** `HttpHeaders`, with `headers` as a record (see `headerMap`). */
function httpHeaders(r: Reader): Message {
  const out: Message = {};
  while (r.more()) {
    const tag = r.varint();
    if (tag === ((1 << 3) | LENGTH_DELIMITED)) out['headers'] = headerMap(r.sub());
    else if (tag === ((3 << 3) | VARINT)) out['end_of_stream'] = r.varint() !== 0;
    else r.skip(tag & 7);
  }
  return out;
}

function httpBody(r: Reader): Message {
  const out: Message = {};
  while (r.more()) {
    const tag = r.varint();
    if (tag === ((1 << 3) | LENGTH_DELIMITED)) out['body'] = r.bytes();
    else if (tag === ((2 << 3) | VARINT)) out['end_of_stream'] = r.varint() !== 0;
    else r.skip(tag & 7);
  }
  return out;
}

function httpTrailers(r: Reader): Message {
  const out: Message = {};
  while (r.more()) {
    const tag = r.varint();
    if (tag === ((1 << 3) | LENGTH_DELIMITED)) out['trailers'] = headerMap(r.sub());
    else r.skip(tag & 7);
  }
  return out;
}

const HEADER_VALUE = (1 << 3) | LENGTH_DELIMITED;
const HEADER_KEY = (1 << 3) | LENGTH_DELIMITED;
const HEADER_STRING_VALUE = (2 << 3) | LENGTH_DELIMITED;
const HEADER_RAW_VALUE = (3 << 3) | LENGTH_DELIMITED;

/**
 * A `HeaderMap` as the EPP reads it: lower-case name → value, the value being `raw_value` as Latin-1 when set (what
 * Envoy sends) and `value` otherwise; a header without a name is skipped and a repeated name keeps its last value.
 * A record instead of protobufjs's list of `HeaderValue` objects: no object or Buffer view per header.
 */
function headerMap(r: Reader): Record<string, string> {
  const out: Record<string, string> = {};
  while (r.more()) {
    const tag = r.varint();
    if (tag !== HEADER_VALUE) {
      r.skip(tag & 7);
      continue;
    }
    const outerEnd = r.enter();
    let key = '';
    let value = '';
    let raw = '';
    while (r.more()) {
      const t = r.varint();
      if (t === HEADER_KEY) key = r.string();
      else if (t === HEADER_STRING_VALUE) value = r.string();
      else if (t === HEADER_RAW_VALUE) raw = r.latin1();
      else r.skip(t & 7);
    }
    r.leave(outerEnd);
    if (key) out[key.toLowerCase()] = raw || value;
  }
  return out;
}

function protocolConfig(r: Reader): Message {
  const out: Message = {};
  while (r.more()) {
    const tag = r.varint();
    if (tag === ((1 << 3) | VARINT)) out['request_body_mode'] = r.varint();
    else if (tag === ((2 << 3) | VARINT)) out['response_body_mode'] = r.varint();
    else if (tag === ((3 << 3) | VARINT))
      out['send_body_without_waiting_for_header_response'] = r.varint() !== 0;
    else r.skip(tag & 7);
  }
  return out;
}

/** `config.core.v3.Metadata`: only `filter_metadata` (map<string, Struct>), where Envoy puts the subset hint. */
function metadata(r: Reader): Message {
  const filterMetadata: Message = {};
  while (r.more()) {
    const tag = r.varint();
    if (tag === ((1 << 3) | LENGTH_DELIMITED)) {
      const [key, value] = mapEntry(r.sub(), struct);
      filterMetadata[key] = value ?? {};
    } else r.skip(tag & 7);
  }
  return { filter_metadata: filterMetadata };
}

/** A map entry message (key = 1, value = 2) with a string key. */
function mapEntry(r: Reader, value: (r: Reader) => Message): [string, Message | undefined] {
  let key = '';
  let decoded: Message | undefined;
  while (r.more()) {
    const tag = r.varint();
    if (tag === ((1 << 3) | LENGTH_DELIMITED)) key = r.string();
    else if (tag === ((2 << 3) | LENGTH_DELIMITED)) decoded = value(r.sub());
    else r.skip(tag & 7);
  }
  return [key, decoded];
}

function struct(r: Reader): Message {
  const fields: Message = {};
  while (r.more()) {
    const tag = r.varint();
    if (tag === ((1 << 3) | LENGTH_DELIMITED)) {
      const [key, value] = mapEntry(r.sub(), structValue);
      fields[key] = value ?? {};
    } else r.skip(tag & 7);
  }
  return { fields };
}

function structValue(r: Reader): Message {
  const out: Message = {};
  while (r.more()) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (field === 1 && wireType === VARINT) out['nullValue'] = r.varint();
    else if (field === 2 && wireType === FIXED64) out['numberValue'] = r.double();
    else if (field === 3 && wireType === LENGTH_DELIMITED) out['stringValue'] = r.string();
    else if (field === 4 && wireType === VARINT) out['boolValue'] = r.varint() !== 0;
    else if (field === 5 && wireType === LENGTH_DELIMITED) out['structValue'] = struct(r.sub());
    else if (field === 6 && wireType === LENGTH_DELIMITED) {
      const list = r.sub();
      const values: Message[] = [];
      while (list.more()) {
        const t = list.varint();
        if (t === ((1 << 3) | LENGTH_DELIMITED)) values.push(structValue(list.sub()));
        else list.skip(t & 7);
      }
      out['listValue'] = { values };
    } else r.skip(wireType);
  }
  return out;
}

const RESPONSE_ONEOF: Record<string, number> = {
  request_headers: 1,
  response_headers: 2,
  request_body: 3,
  response_body: 4,
  request_trailers: 5,
  response_trailers: 6,
  immediate_response: 7,
};

/**
 * Encodes a `ProcessingResponse` with the fields the EPP answers with: the phase answers (`CommonResponse` with
 * header and body mutations), `immediate_response` and `dynamic_metadata`. Any other field is an error, so a new
 * answer cannot silently lose a field.
 */
export function encodeProcessingResponse(message: Message): Buffer {
  const w = new Writer(256);
  for (const [name, value] of Object.entries(message)) {
    if (value === undefined || value === null) continue;
    const field = name === 'dynamic_metadata' ? 8 : RESPONSE_ONEOF[name];
    if (field === undefined)
      throw new Error(`ProcessingResponse field ${name} is not supported by the encoder`);
    const start = w.open(field);
    if (name === 'dynamic_metadata') writeStruct(w, value);
    else if (name === 'immediate_response') writeImmediateResponse(w, value);
    else if (name === 'request_trailers' || name === 'response_trailers') {
      if (value.header_mutation) writeMessage(w, 1, value.header_mutation, writeHeaderMutation);
    } else if (value.response) writeMessage(w, 1, value.response, writeCommonResponse);
    w.close(start);
  }
  return w.finish();
}

function writeMessage(
  w: Writer,
  field: number,
  value: Message,
  write: (w: Writer, m: Message) => void,
): void {
  const start = w.open(field);
  write(w, value);
  w.close(start);
}

function writeCommonResponse(w: Writer, m: Message): void {
  w.uint(1, m['status']);
  if (m['header_mutation']) writeMessage(w, 2, m['header_mutation'], writeHeaderMutation);
  const body = m['body_mutation'];
  if (body) {
    writeMessage(w, 3, body, (w2, b) => {
      if (b['body'] !== undefined) w2.bytes(1, b['body']);
      else if (b['clear_body'] !== undefined) w2.varintField(2, b['clear_body'] ? 1 : 0);
      else if (b['streamed_response'])
        writeMessage(w2, 3, b['streamed_response'], (w3, s) => {
          if (s['body']?.length) w3.bytes(1, s['body']);
          w3.bool(2, s['end_of_stream']);
        });
    });
  }
  w.bool(5, m['clear_route_cache']);
}

function writeHeaderMutation(w: Writer, m: Message): void {
  for (const option of m['set_headers'] ?? []) {
    writeMessage(w, 1, option, (w2, o) => {
      const header = o['header'];
      if (header)
        writeMessage(w2, 1, header, (w3, h) => {
          if (h['key']) w3.string(1, h['key']);
          if (h['value']) w3.string(2, h['value']);
          if (h['raw_value']?.length) w3.bytes(3, h['raw_value']);
        });
      w2.uint(3, o['append_action']);
    });
  }
  for (const name of m['remove_headers'] ?? []) w.string(2, name);
}

function writeImmediateResponse(w: Writer, m: Message): void {
  if (m['status']) writeMessage(w, 1, m['status'], (w2, s) => w2.uint(1, s['code']));
  if (m['headers']) writeMessage(w, 2, m['headers'], writeHeaderMutation);
  if (m['body']?.length) w.bytes(3, m['body']);
  if (m['details']) w.string(5, m['details']);
}

/** `google.protobuf.Struct` from the camelCase object form: `{ fields: { name: Value } }`. */
function writeStruct(w: Writer, m: Message): void {
  for (const [key, value] of Object.entries(m['fields'] ?? {})) {
    writeMessage(w, 1, value as Message, (w2, v) => {
      w2.string(1, key);
      writeMessage(w2, 2, v, writeValue);
    });
  }
}

function writeValue(w: Writer, v: Message): void {
  if (v['nullValue'] !== undefined) w.varintField(1, 0);
  else if (v['numberValue'] !== undefined) w.double(2, Number(v['numberValue']));
  else if (v['stringValue'] !== undefined) w.string(3, v['stringValue']);
  else if (v['boolValue'] !== undefined) w.varintField(4, v['boolValue'] ? 1 : 0);
  else if (v['structValue'] !== undefined) writeMessage(w, 5, v['structValue'], writeStruct);
  else if (v['listValue'] !== undefined)
    writeMessage(w, 6, v['listValue'], (w2, list) => {
      for (const item of list['values'] ?? []) writeMessage(w2, 1, item, writeValue);
    });
}
