/**
 * @module gateway/body-router
 * The body-based router (BBR) in front of Envoy's routes, as GIE's BBR: an ext_proc server that reads a request's
 * JSON body and puts its `model` in the model-name header (`X-Gateway-Model-Name`), then asks Envoy to match the
 * routes again (`clear_route_cache`), so the HTTPRoute rules that match that header — a routing group's shared
 * model name — apply to a request that names the model in its body only. `llmisvc up --gateway envoy` runs one in
 * its own process for a file of several services.
 *
 * The model-name header is this router's alone: a client's own value is removed from every request (Envoy's early
 * header mutation removes it before any route is matched too), so no client steers a request to another service by
 * naming its model in a header. The same holds for the split-draw header: the random number Envoy's weighted
 * clusters draw from (`WeightedCluster.header_name`), set here so the draw is the same each time Envoy matches the
 * routes again (after this router and after the Endpoint Picker), and seeded in tests.
 *
 * Envoy sends the whole body (`BUFFERED`): this answers the headers at once and decides on the body.
 */
import {
  createGrpcServer,
  decodeEppProcessingRequest,
  encodeProcessingResponse,
  setHeaderOption,
  type GrpcCall,
  type GrpcCallHandlers,
  type GrpcServer,
} from '../transport/index.js';
import { DEFAULT_BODY_LIMIT, RequestError, decodeJsonBody } from '../epp/index.js';
import { openAiErrorJson } from './openai-error.js';

export const MODEL_NAME_HEADER = 'x-gateway-model-name';
/** The random value Envoy's weighted clusters pick by (`WeightedCluster.header_name`). */
export const SPLIT_DRAW_HEADER = 'x-llmisvc-split-draw';

/** Longest model name copied into the header (a header value, not a document). */
const MAX_MODEL_LENGTH = 4096;

/** What the router does with one request's body. */
export type BodyRouting =
  | {
      kind: 'route';
      model: string | undefined;
      /** The body decoded, when it is JSON: the EPP in the same process need not decode it again. */
      json?: Record<string, unknown>;
    }
  | { kind: 'reject'; status: 400 | 413; message: string };

/**
 * The model a request body names, as the model-name header carries it. A body that is not JSON (another content
 * type) routes by path only; a JSON body that does not parse, or is not an object, is refused (400). A `model` that
 * is not a string of visible ASCII up to 4,096 characters cannot be a header value and routes by path only (so
 * it matches no model-name rule), as on the builtin gateway.
 * @example bodyRouting('application/json', Buffer.from('{"model":"m"}')) // → { kind: 'route', model: 'm' }
 */
export function bodyRouting(contentType: string | undefined, body: Buffer | undefined): BodyRouting {
  if (!body || body.length === 0) return { kind: 'route', model: undefined };
  if (contentType !== undefined && !/json/i.test(contentType)) return { kind: 'route', model: undefined };
  let json: Record<string, unknown>;
  try {
    json = decodeJsonBody(body);
  } catch (error) {
    if (error instanceof RequestError) return { kind: 'reject', status: 400, message: error.message };
    throw error;
  }
  const model = json['model'];
  return {
    kind: 'route',
    model:
      typeof model === 'string' && model.length <= MAX_MODEL_LENGTH && /^[\x20-\x7e]+$/.test(model)
        ? model
        : undefined,
    json,
  };
}

/* eslint-disable @typescript-eslint/no-explicit-any -- the messages are dynamic protobuf objects */
type Message = Record<string, any>;

export interface BodyRouterOptions {
  /** Random numbers in [0, 1) for the split draw (default Math.random; tests pass a seeded one). */
  random?: (() => number) | undefined;
  /** Largest body accepted (Envoy buffers at most its own limit; this bounds a direct client). */
  bodyLimitBytes?: number;
  onError?: (error: unknown) => void;
}

/** The `Process` handler: one ext_proc stream per request. */
export function createBodyRouterHandler(
  options: BodyRouterOptions = {},
): (call: GrpcCall<Message>) => GrpcCallHandlers<Message> {
  const random = options.random ?? Math.random;
  const limit = options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT;
  return (call) => {
    let contentType: string | undefined;
    let answered = false;
    /** The headers the router owns: the client's removed, its own set (the model only when the body names one). */
    const mutation = (model: string | undefined): Message => ({
      set_headers: [
        // Envoy reads the value as a uint64 and takes it modulo the total weight.
        setHeaderOption(SPLIT_DRAW_HEADER, String(Math.floor(random() * 2 ** 32))),
        ...(model !== undefined ? [setHeaderOption(MODEL_NAME_HEADER, model)] : []),
      ],
      remove_headers: model === undefined ? [MODEL_NAME_HEADER] : [],
    });
    const finish = (message: Message) => {
      answered = true;
      call.send(message);
      call.end();
    };
    return {
      message(message: Message) {
        if (answered) return;
        switch (message['request']) {
          case 'request_headers': {
            const h = message['request_headers'] ?? {};
            const headers = (h['headers'] as Record<string, string> | undefined) ?? {};
            contentType = headers['content-type'];
            if (h['end_of_stream']) {
              // No body: nothing names a model; the draw is still set for a weighted path rule.
              finish({
                request_headers: {
                  response: { header_mutation: mutation(undefined), clear_route_cache: true },
                },
              });
              return;
            }
            call.send({ request_headers: { response: {} } });
            return;
          }
          case 'request_body': {
            const b = message['request_body'] ?? {};
            const body = Buffer.from((b['body'] as Uint8Array | undefined) ?? new Uint8Array());
            const routing: BodyRouting =
              body.length > limit
                ? { kind: 'reject', status: 413, message: `request body exceeds the limit of ${limit} bytes` }
                : bodyRouting(contentType, body);
            if (routing.kind === 'reject') {
              const type = routing.status === 400 ? 'BadRequestError' : 'RequestTooLargeError';
              const error = openAiErrorJson(routing.status, routing.message, type);
              finish({
                immediate_response: {
                  status: { code: routing.status },
                  headers: { set_headers: [setHeaderOption('content-type', 'application/json')] },
                  body: Buffer.from(error),
                  details: `llmisvc_body_router_${routing.status}`,
                },
              });
              return;
            }
            finish({
              request_body: {
                response: { header_mutation: mutation(routing.model), clear_route_cache: true },
              },
            });
            return;
          }
          default:
            // Nothing else is configured to reach the router (trailers, responses): let it through unchanged.
            if (message['request'] === 'request_trailers') call.send({ request_trailers: {} });
        }
      },
      end() {
        if (!answered) call.end();
      },
      abort() {
        answered = true;
      },
    };
  };
}

export interface RunningBodyRouter {
  port: number;
  close(): Promise<void>;
}

/** Starts the body router's ext_proc server on `host:port` (0 = any free port). */
export async function startBodyRouter(
  host: string,
  port: number,
  options: BodyRouterOptions = {},
): Promise<RunningBodyRouter> {
  const limit = options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT;
  const server: GrpcServer = createGrpcServer({
    methods: {
      '/envoy.service.ext_proc.v3.ExternalProcessor/Process': {
        decode: decodeEppProcessingRequest,
        encode: encodeProcessingResponse,
        open: createBodyRouterHandler(options),
      },
    },
    maxMessageBytes: limit + 1024 * 1024,
    onError: options.onError,
  });
  const bound = await server.listen(host, port);
  return { port: bound, close: () => server.close() };
}
