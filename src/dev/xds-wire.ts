/**
 * @module dev/xds-wire
 * Editing Envoy's xDS messages in protobuf's wire format without their schema: a message is a list of fields, and
 * an edit drops, replaces or appends whole fields while every other byte is kept as it came. That is how the dev
 * cluster's Envoy Gateway extension (`dev/inference-pool-xds`) changes a few fields of a Listener, Route or Cluster
 * that Envoy Gateway translated, without a codec of Envoy's whole configuration API — and without losing the fields
 * it does not know. Field numbers are the callers', each named where it is used.
 */
import { LENGTH_DELIMITED, Reader, VARINT } from '../transport/index.js';

/** One field of a message: its number, wire type, the whole encoded field, and a length-delimited field's content. */
export interface WireField {
  field: number;
  wireType: number;
  raw: Buffer;
  /** The content of a length-delimited field (a nested message, string or bytes); empty for other wire types. */
  payload: Buffer;
  /** The value of a varint field. */
  value: number;
}

/** The fields of one encoded message, in order. A malformed message throws. */
export function wireFields(message: Uint8Array): WireField[] {
  const reader = Reader.of(message);
  const fields: WireField[] = [];
  while (reader.more()) {
    const start = reader.pos;
    const tag = reader.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    let payload: Buffer = EMPTY;
    let value = 0;
    if (wireType === LENGTH_DELIMITED) payload = reader.bytes();
    else if (wireType === VARINT) value = reader.varint();
    else reader.skip(wireType);
    fields.push({ field, wireType, raw: reader.buf.subarray(start, reader.pos), payload, value });
  }
  return fields;
}

const EMPTY = Buffer.alloc(0);

function varintBytes(value: number): Buffer {
  const bytes: number[] = [];
  let v = value;
  while (v >= 0x80) {
    bytes.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

/** A length-delimited field holding `parts` one after another (a nested message of those fields). */
export function messageField(field: number, ...parts: Uint8Array[]): Buffer {
  const content = Buffer.concat(parts);
  return Buffer.concat([varintBytes(field * 8 + LENGTH_DELIMITED), varintBytes(content.length), content]);
}

export function stringField(field: number, value: string): Buffer {
  return messageField(field, Buffer.from(value, 'utf8'));
}

/** A varint field (enums, bools, small numbers); zero is written too, as a present field. */
export function varintField(field: number, value: number): Buffer {
  return Buffer.concat([varintBytes(field * 8 + VARINT), varintBytes(value)]);
}

/** A `google.protobuf.Any` field: `type_url` 1, `value` 2. */
export function anyField(field: number, typeUrl: string, value: Uint8Array): Buffer {
  return messageField(field, stringField(1, typeUrl), messageField(2, value));
}

/** A `map<string, Any>` entry (`key` 1, `value` 2), as Envoy's `typed_per_filter_config` holds them. */
export function typedMapEntry(field: number, key: string, typeUrl: string, value: Uint8Array): Buffer {
  return messageField(field, stringField(1, key), anyField(2, typeUrl, value));
}

/** A `google.protobuf.Duration` field of whole milliseconds. */
export function durationField(field: number, ms: number): Buffer {
  const seconds = Math.floor(ms / 1000);
  const nanos = (ms % 1000) * 1_000_000;
  return messageField(
    field,
    ...(seconds ? [varintField(1, seconds)] : []),
    ...(nanos ? [varintField(2, nanos)] : []),
  );
}

/** The first length-delimited field `field` of a message as a string, if present. */
export function stringOf(message: Uint8Array, field: number): string | undefined {
  const found = wireFields(message).find((f) => f.field === field && f.wireType === LENGTH_DELIMITED);
  return found?.payload.toString('utf8');
}

/** Every length-delimited field `field` of a message (the elements of a repeated message field). */
export function messagesOf(message: Uint8Array, field: number): Buffer[] {
  return wireFields(message)
    .filter((f) => f.field === field && f.wireType === LENGTH_DELIMITED)
    .map((f) => f.payload);
}

/**
 * The message with each length-delimited field `field` passed through `edit` (which returns its new content), and
 * every other field as it was.
 */
export function editMessages(message: Uint8Array, field: number, edit: (payload: Buffer) => Buffer): Buffer {
  return Buffer.concat(
    wireFields(message).map((f) =>
      f.field === field && f.wireType === LENGTH_DELIMITED ? messageField(field, edit(f.payload)) : f.raw,
    ),
  );
}

/** The message without the fields numbered in `drop`, followed by `append`. */
export function withFields(
  message: Uint8Array,
  drop: readonly number[],
  append: readonly Uint8Array[],
): Buffer {
  return Buffer.concat([
    ...wireFields(message)
      .filter((f) => !drop.includes(f.field))
      .map((f) => f.raw),
    ...append,
  ]);
}
