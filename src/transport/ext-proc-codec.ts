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
import { HeaderValueOption_HeaderAppendAction, ProcessingMode_BodySendMode } from './generated/ext-proc.js';

/** Body send modes as Envoy numbers them (`ProcessingMode.BodySendMode`). */
export const BodySendMode = ProcessingMode_BodySendMode;

/** A header an ext_proc answer sets (`HeaderValueOption`), as the EPP and the body router write them. */
export interface SetHeaderOption {
  header: { key: string; raw_value: Buffer };
  append_action: number;
}

/** Sets `key` to `value` (its UTF-8 bytes in `raw_value`), replacing any header of that name. */
export function setHeaderOption(key: string, value: string): SetHeaderOption {
  return {
    header: { key, raw_value: Buffer.from(value) },
    append_action: HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD,
  };
}
