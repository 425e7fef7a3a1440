/**
 * @module epp/health-codec
 * Wire codec for `grpc.health.v1`: `HealthCheckRequest { string service = 1; }` in and
 * `HealthCheckResponse { ServingStatus status = 1; }` out. Written out because the two messages are this small, and so
 * the EPP's server loads no protobuf schema at all (see `ext-proc-codec.ts` for the ext_proc messages).
 */

export const ServingStatus = { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } as const;
export type ServingStatusName = keyof typeof ServingStatus;

const SERVICE_TAG = (1 << 3) | 2; // field 1, length-delimited
const STATUS_TAG = (1 << 3) | 0; // field 1, varint

/** The requested service name; other fields are skipped, and a malformed message throws. */
export function decodeHealthCheckRequest(bytes: Uint8Array): { service: string } {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let service = '';
  let pos = 0;
  const varint = (): number => {
    let value = 0;
    for (let scale = 1; pos < buf.length; scale *= 128) {
      const byte = buf[pos++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
    }
    throw new Error('truncated varint');
  };
  while (pos < buf.length) {
    const tag = varint();
    const wireType = tag & 7;
    let end = pos;
    if (wireType === 0) varint();
    else if (wireType === 1) end = pos += 8;
    else if (wireType === 5) end = pos += 4;
    else if (wireType === 2) {
      const length = varint();
      end = pos + length;
      if (tag === SERVICE_TAG && end <= buf.length) service = buf.toString('utf8', pos, end);
      pos = end;
    } else throw new Error(`unsupported wire type ${wireType}`);
    if (end > buf.length) throw new Error('field runs past the message');
  }
  return { service };
}

export function encodeHealthCheckResponse(message: { status: ServingStatusName }): Uint8Array {
  const status = ServingStatus[message.status];
  // A zero enum is the default and not written.
  return status === 0 ? new Uint8Array(0) : Uint8Array.of(STATUS_TAG, status);
}
