/**
 * @module transport/health-codec
 * Wire codec for `grpc.health.v1`: `HealthCheckRequest { string service = 1; }` in and
 * `HealthCheckResponse { ServingStatus status = 1; }` out. Written out because the two messages are this small, and so
 * the EPP's server loads no protobuf schema at all (see `ext-proc-codec.ts` for the ext_proc messages).
 */

import { LENGTH_DELIMITED, Reader, VARINT } from './protobuf-wire.js';

export const ServingStatus = { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } as const;
export type ServingStatusName = keyof typeof ServingStatus;

const SERVICE_TAG = (1 << 3) | LENGTH_DELIMITED;
const STATUS_TAG = (1 << 3) | VARINT;

/** The requested service name; other fields are skipped, and a malformed message throws. */
export function decodeHealthCheckRequest(bytes: Uint8Array): { service: string } {
  const r = Reader.of(bytes);
  let service = '';
  while (r.more()) {
    const tag = r.varint();
    if (tag === SERVICE_TAG) service = r.string();
    else r.skip(tag & 7);
  }
  return { service };
}

export function encodeHealthCheckResponse(message: { status: ServingStatusName }): Uint8Array {
  const status = ServingStatus[message.status];
  // A zero enum is the default and not written.
  return status === 0 ? new Uint8Array(0) : Uint8Array.of(STATUS_TAG, status);
}
