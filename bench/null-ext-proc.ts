/**
 * @module bench/null-ext-proc
 * An Envoy ext_proc server that decides next to nothing, on the Endpoint Picker's own gRPC transport (src/transport),
 * for `npm run bench:peers -- --envoy-hop`: it answers with the messages the EPP sends in Envoy's FULL_DUPLEX_STREAMED
 * body mode, so what it costs is the ext_proc hop on our transport and not a routing decision. A request goes to the
 * server a hash of its body's first 256 bytes names (the model and the start of the prompt: requests that share a
 * prefix meet the same server's cache, so the fleet answers about as fast as under a cache-aware router and the paths
 * compared see the same streams); without a body, round robin. Its twin in Go (bench/null-ext-proc-go) does the same
 * on grpc-go.
 *
 * Usage: node dist/bench/null-ext-proc.js <host:port>,<host:port>,… ; prints its port (127.0.0.1) on its first line.
 */
import {
  createGrpcServer,
  decodeEppProcessingRequest,
  encodeProcessingResponse,
  setHeaderOption,
  type EppProcessingRequest,
  type GrpcCall,
  type ProcessingResponse,
} from '../src/transport/index.js';

const addresses = (process.argv[2] ?? '').split(',').filter(Boolean);
if (addresses.length === 0) {
  console.error('usage: node dist/bench/null-ext-proc.js <host:port>,<host:port>,…');
  process.exit(2);
}
let next = 0;

/** FNV-1a over the body's first 256 bytes: the same prefix, the same server. */
function serverFor(body: Uint8Array): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < Math.min(256, body.length); i++) hash = Math.imul(hash ^ body[i]!, 0x01000193) >>> 0;
  return addresses[hash % addresses.length]!;
}

function open(call: GrpcCall<ProcessingResponse>) {
  const chunks: Uint8Array[] = [];
  const route = (body: Buffer | undefined): void => {
    const address = body ? serverFor(body) : addresses[next++ % addresses.length]!;
    const mutation = { set_headers: [setHeaderOption('x-gateway-destination-endpoint', address)] };
    call.send({ request_headers: { response: { header_mutation: mutation, clear_route_cache: true } } });
    if (body)
      call.send({
        request_body: {
          response: { body_mutation: { streamed_response: { body, end_of_stream: true } } },
        },
      });
  };
  return {
    message(message: EppProcessingRequest): void {
      switch (message.request) {
        case 'request_headers':
          if (message.request_headers?.end_of_stream) route(undefined);
          return;
        case 'request_body':
          chunks.push(message.request_body?.body ?? new Uint8Array());
          if (message.request_body?.end_of_stream) route(Buffer.concat(chunks));
          return;
        case 'request_trailers':
          call.send({ request_trailers: {} });
          return;
        case 'response_headers':
          // The response observer's stream: answered, then ended, as the EPP does.
          call.send({ response_headers: {} });
          call.end();
          return;
        case 'response_trailers':
          call.send({ response_trailers: {} });
          return;
        case 'response_body': // not asked for: the bootstraps measured send no response body
        case undefined:
          return;
      }
    },
    end: () => call.end(),
    abort: () => undefined,
  };
}

const server = createGrpcServer({
  methods: {
    '/envoy.service.ext_proc.v3.ExternalProcessor/Process': {
      decode: decodeEppProcessingRequest,
      encode: encodeProcessingResponse,
      open,
    },
  },
  maxMessageBytes: 17 * 1024 * 1024,
});
console.log(await server.listen('127.0.0.1', 0));
process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
