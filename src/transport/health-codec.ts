/**
 * @module transport/health-codec
 * `grpc.health.v1` on the wire, from the codecs generated out of the vendored `grpc/health/v1/health.proto`
 * (`generated/health.ts`), with statuses by name as the EPP's health server and its clients use them.
 */
import {
  decodeHealthCheckRequest as decodeRequest,
  decodeHealthCheckResponse as decodeResponse,
  encodeHealthCheckRequest,
  encodeHealthCheckResponse as encodeResponse,
  HealthCheckResponse_ServingStatus,
} from './generated/health.js';

export { encodeHealthCheckRequest };
export const ServingStatus = HealthCheckResponse_ServingStatus;
export type ServingStatusName = keyof typeof ServingStatus;

/** The requested service name (`''` when absent); other fields are skipped, and a malformed message throws. */
export function decodeHealthCheckRequest(bytes: Uint8Array): { service: string } {
  return { service: decodeRequest(bytes).service ?? '' };
}

export function encodeHealthCheckResponse(message: { status: ServingStatusName }): Uint8Array {
  return encodeResponse(message);
}

/** A response's status by name; a number this proto does not name reads as UNKNOWN. */
export function decodeHealthCheckResponse(bytes: Uint8Array): { status: ServingStatusName } {
  const status = Number(decodeResponse(bytes).status ?? 0);
  const name = (Object.keys(ServingStatus) as ServingStatusName[]).find((k) => ServingStatus[k] === status);
  return { status: name ?? 'UNKNOWN' };
}
