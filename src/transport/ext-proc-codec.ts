/**
 * @module transport/ext-proc-codec
 * Envoy's ext_proc messages on the wire, from the codecs generated out of the vendored protos (`generated/ext-proc.ts`,
 * by `scripts/generate-proto-codecs.mjs`): the EPP decodes `ProcessingRequest` with its own view
 * (`decodeEppProcessingRequest`: header maps as records, fields it never reads skipped unread) and encodes
 * `ProcessingResponse`; a gateway's client encodes requests and decodes responses with the full codecs.
 *
 * The objects have the shape `@grpc/proto-loader` gave with `keepCase` (snake_case fields, the oneof's name in
 * `request`/`response`, bytes as Buffers, enums as numbers, `google.protobuf.Struct` values in camelCase), so the EPP
 * and its clients read them as before.
 */
export {
  decodeEppProcessingRequest,
  decodeProcessingRequest,
  decodeProcessingResponse,
  encodeProcessingRequest,
  encodeProcessingResponse,
  type EppProcessingRequest,
  type ProcessingRequest,
  type ProcessingResponse,
} from './generated/ext-proc.js';
import { ProcessingMode_BodySendMode } from './generated/ext-proc.js';

/** Body send modes as Envoy numbers them (`ProcessingMode.BodySendMode`). */
export const BodySendMode = ProcessingMode_BodySendMode;
