/**
 * @module transport
 * The EPP's wire: HTTP/2 (RFC 9113) with HPACK, a gRPC server on it, and protobuf codecs for the two services the
 * EPP serves (Envoy's ext_proc and gRPC health), generated at build time from the protos vendored under proto/.
 * Written here rather than taken from `node:http2` + `@grpc/grpc-js` because those cost more CPU per ext_proc stream
 * than the EPP's own work (see `http2-connection.ts`). Beside it, a strict HTTP/1.1 response parser for the clients
 * that talk to model servers (the builtin gateway's upstream pool and the EPP's metrics scraper), and for the HTTP/1.1
 * servers that take requests from anyone (the builtin gateway, the webhooks, the dev cluster's routing sidecar) a
 * bounded reader of request bodies and a pipelining guard that runs a connection's requests one at a time.
 *
 * Threat model. The peer is a gateway (Envoy, or ours) on the cluster network; anything that can reach the EPP's port
 * can speak to it, so every byte is hostile until parsed: frames, HPACK blocks, gRPC framing and protobuf fields are
 * bounds-checked and a violation ends the stream or the connection with the RFC's error, never the process. What a
 * peer can make this server hold or do is bounded per connection (header-list size and frames, message size,
 * concurrent streams, queued writes, floods of resets, PINGs, SETTINGS, stray and empty frames, idle, preface and
 * header-block time: `Http2Limits`), and per server (connections open, unfinished header blocks held).
 * TLS, when on, is served without client authentication, as GIE's EPP does; authenticating the gateway is the
 * network policy's job. This folder imports nothing of the EPP: it knows streams and messages, not requests.
 */
export {
  createGrpcServer,
  GrpcStatus,
  type GrpcCall,
  type GrpcCallHandlers,
  type GrpcMethod,
  type GrpcServer,
  type GrpcServerOptions,
  type TlsCredentials,
} from './grpc-server.js';
export {
  BodySendMode,
  decodeEppProcessingRequest,
  decodeProcessingRequest,
  decodeProcessingResponse,
  encodeProcessingRequest,
  encodeProcessingResponse,
  setHeaderOption,
  type EppProcessingRequest,
  type ProcessingRequest,
  type ProcessingResponse,
  type SetHeaderOption,
} from './ext-proc-codec.js';
export {
  decodeHealthCheckRequest,
  decodeHealthCheckResponse,
  encodeHealthCheckRequest,
  encodeHealthCheckResponse,
  ServingStatus,
  type ServingStatusName,
} from './health-codec.js';
export {
  assertNodeTransportSupported,
  createNodeGrpcServer,
  NODE_TRANSPORT_MIN_VERSION,
  nodeTransportSupported,
  type NodeGrpcServerOptions,
} from './node-grpc-server.js';
export {
  DEFAULT_HTTP2_LIMITS,
  Http2Connection,
  Http2ErrorCode,
  Http2GoawayError,
  HeaderBlockBudget,
  resolveHttp2Limits,
  type Http2ConnectionOptions,
  type Http2Limits,
} from './http2-connection.js';
export { encodeHeaderBlock, HpackDecoder, HpackError } from './hpack.js';
export { closeAfterAnswer, readAtMost, readRequestBody, type BodyBudget } from './request-body.js';
export { jsonShapeProblem } from './json-shape.js';
export {
  FIELD_VALUE,
  Http1ResponseParser,
  TOKEN,
  UpstreamProtocolError,
  type ResponseEvents,
  type ResponseParserOptions,
} from './http1-response.js';
export { ConnectionLimitError, limitConnections, type ConnectionLimits } from './server-lifecycle.js';
export {
  isLoopbackAddress,
  isLoopbackHostHeader,
  misdirectedHostMessage,
  refusedMisdirected,
} from './loopback-host.js';
export { LENGTH_DELIMITED, Reader, VARINT } from './protobuf-wire.js';
export { MAX_PIPELINED_REQUESTS, oneRequestAtATime } from './pipelining.js';
export { hostPort } from './host-port.js';
