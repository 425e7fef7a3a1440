/**
 * @module epp/extproc-server
 * The Envoy ext_proc stream handler: one gRPC stream per HTTP request. It collects the request headers and body,
 * hands the request to a session (`request-session.ts`: admission, scheduling, in-flight accounting), and answers
 * with the destination in header `x-gateway-destination-endpoint` and in dynamic metadata `envoy.lb` — or with an
 * immediate OpenAI-style error.
 *
 * Body modes: with `FULL_DUPLEX_STREAMED` (what GIE gateways configure) Envoy sends the body without waiting for the
 * headers answer, so the headers answer is held until the body is complete and the body is then streamed back;
 * with `BUFFERED` Envoy waits for the headers answer first, so it is sent at once and the destination travels in
 * the body answer. The gateway's mode is read from `protocol_config` in the first message (Envoy ≥ 1.35); without
 * it, full duplex is assumed. Any message order or content is survived: the worst outcome for a broken stream is
 * an error answer on that stream.
 *
 * The response: the EPP hears its headers (status, and `x-served-by` to add) and, through the stream's end, when it is
 * over. A gateway may send the headers to a response observer's stream instead, so that they do not wait for the EPP
 * (`response-observer.ts`); every routing answer carries what such a stream needs.
 *
 * Routing headers (`routing-headers.ts`) are the EPP's alone: every answer that lets a request through removes those a
 * client sent, except the ones the EPP sets itself, so no gateway forwards a forged destination or prefill endpoint.
 */
import { randomUUID } from 'node:crypto';
import {
  BodySendMode,
  setHeaderOption,
  type GrpcCall,
  type GrpcCallHandlers,
  type SetHeaderOption,
} from '../transport/index.js';
import { RequestError } from './request.js';
import {
  DESTINATION_HEADER,
  RequestSession,
  type RoutingAnswer,
  type SessionDeps,
} from './request-session.js';
import {
  requestTokenOf,
  RESPONSE_METADATA_NAMESPACE,
  responseMetadata,
  SERVED_BY_HEADER,
} from './response-observer.js';
import { routingHeadersToRemove } from './routing-headers.js';

export { DESTINATION_HEADER };
export const DESTINATION_METADATA_NAMESPACE = 'envoy.lb';
export const SUBSET_HINT_NAMESPACE = 'envoy.lb.subset_hint';
export const SUBSET_HINT_KEY = 'x-gateway-destination-endpoint-subset';

/** What the stream handler needs: a session's, and the limits and options of the ext_proc carrier. */
export interface ExtProcDeps extends SessionDeps {
  /**
   * Request-body bytes all streams together may hold while they arrive (default 256 MiB, at least one largest body):
   * past it a stream gets 503 at once. Each stream is bounded by `bodyLimitBytes`, but a connection carries up to
   * a thousand streams and anyone in the cluster network can open connections.
   */
  bodyBudgetBytes?: number;
  /**
   * Name the serving endpoint in an `x-served-by` response header (KServe's `enable-served-by-header`): the pod
   * the request went to, which only the picker knows.
   */
  servedByHeader?: boolean;
  /** Called as each stream opens (the scraper's traffic pace). */
  onStream?: () => void;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- the messages are dynamic protobuf objects */
type Message = Record<string, any>;

/** Before the decision (buffered body mode answers the headers first): no routing header of the client's survives. */
const REMOVE_ROUTING_HEADERS: Message = Object.freeze({ remove_headers: routingHeadersToRemove() });

/** The addresses named in `envoy.lb.subset_hint`; undefined without a hint. */
function subsetHint(message: Message): Set<string> | undefined {
  const ns = message['metadata_context']?.['filter_metadata']?.[SUBSET_HINT_NAMESPACE];
  const values = ns?.['fields']?.[SUBSET_HINT_KEY]?.['listValue']?.['values'];
  if (!Array.isArray(values)) return undefined;
  const hinted = new Set<string>();
  for (const v of values) if (typeof v?.stringValue === 'string') hinted.add(v.stringValue);
  return hinted;
}

/** The routing answer's dynamic metadata: the destination (GIE's), and what a response observer needs. */
function routingMetadata(address: string, token: string, servedBy: string | undefined): Message {
  return {
    fields: {
      [DESTINATION_METADATA_NAMESPACE]: {
        structValue: { fields: { [DESTINATION_HEADER]: { stringValue: address } } },
      },
      [RESPONSE_METADATA_NAMESPACE]: responseMetadata(token, servedBy),
    },
  };
}

/** The header mutation of a routed request: the EPP's headers set, every other routing header removed. */
function routingMutation(answer: { headers: [string, string][]; removeHeaders: readonly string[] }): Message {
  const set: SetHeaderOption[] = answer.headers.map(([k, v]) => setHeaderOption(k, v));
  return { set_headers: set, remove_headers: answer.removeHeaders };
}

/** Creates the `Process` method: what to do with each ext_proc stream (one per HTTP request). */
export function createProcessHandler(
  deps: ExtProcDeps,
): (call: GrpcCall<Message>) => GrpcCallHandlers<Message> {
  /** Routed requests still in flight, by the token a response observer's stream names them with. */
  const awaitingResponse = new Map<string, RequestSession>();
  const bodyBudget = Math.max(deps.bodyBudgetBytes ?? 256 * 1024 * 1024, deps.bodyLimitBytes);
  let bufferedBodyBytes = 0;
  return function processStream(call) {
    deps.onStream?.();
    let heardHeaders = false;
    let requestBodyMode: number = BodySendMode.FULL_DUPLEX_STREAMED;
    let responseBodyMode: number = BodySendMode.NONE;
    const chunks: Uint8Array[] = [];
    let bodyBytes = 0;
    /** This stream's share of `bufferedBodyBytes`, given back once the body is whole or the stream is over. */
    let heldBodyBytes = 0;
    const releaseBody = (): void => {
      bufferedBodyBytes -= heldBodyBytes;
      heldBodyBytes = 0;
      chunks.length = 0;
    };
    let decided = false;
    let closed = false;
    /** The request's body as routed (undefined: none), and whether trailers end it. */
    let routedBody: Buffer | undefined;
    let trailersFollow = false;
    /** This request's key in `awaitingResponse`, once routed. */
    let token: string | undefined;
    const session = new RequestSession(deps, answer);

    function write(message: Message): void {
      if (closed || !call.isOpen()) return;
      call.send(message);
    }

    /**
     * Ends the call (OK) and the request with it: after an immediate response, or once the response has passed
     * through and nothing is left for Envoy to send (rather than waiting for Envoy to close the call, as a gRPC
     * server does when its answer is complete).
     */
    function complete(): void {
      over();
      session.finish();
      if (closed) return;
      closed = true;
      call.end();
    }

    /** What outlives the request's decision is let go: its body's share of the budget, its observer token. */
    function over(): void {
      releaseBody();
      if (token !== undefined) awaitingResponse.delete(token);
      token = undefined;
    }

    /** The session's answer, as ext_proc messages. */
    function answer(a: RoutingAnswer): void {
      if (a.kind === 'refused') {
        write({
          immediate_response: {
            status: { code: a.status },
            headers: { set_headers: a.headers.map(([k, v]) => setHeaderOption(k, v)) },
            body: a.body,
            details: `llmisvc_epp_${a.status}`,
          },
        });
        // The stream ends here, so a request routed earlier on it (a protocol error after the pick) is done too.
        complete();
        return;
      }
      token = randomUUID();
      awaitingResponse.set(token, session);
      const metadata = routingMetadata(
        a.endpoint.address,
        token,
        deps.servedByHeader ? a.endpoint.name : undefined,
      );
      const headerMutation = routingMutation(a);
      if (routedBody === undefined) {
        // Headers-only request: the headers answer carries everything.
        write({
          request_headers: { response: { header_mutation: headerMutation, clear_route_cache: true } },
          dynamic_metadata: metadata,
        });
      } else if (requestBodyMode === BodySendMode.FULL_DUPLEX_STREAMED) {
        write({
          request_headers: { response: { header_mutation: headerMutation, clear_route_cache: true } },
          dynamic_metadata: metadata,
        });
        write({
          request_body: {
            response: {
              body_mutation: {
                streamed_response: { body: a.rewrittenBody ?? routedBody, end_of_stream: !trailersFollow },
              },
            },
          },
        });
        if (trailersFollow) write({ request_trailers: {} });
      } else {
        const response: Message = { header_mutation: headerMutation, clear_route_cache: true };
        if (a.rewrittenBody) response['body_mutation'] = { body: a.rewrittenBody };
        write({ request_body: { response }, dynamic_metadata: metadata });
      }
    }

    function route(body: Buffer | undefined, trailers: boolean): void {
      decided = true;
      releaseBody();
      routedBody = body;
      trailersFollow = trailers;
      session.route(body);
    }

    function onMessage(message: Message): void {
      if (closed) return;
      const protocol = message['protocol_config'];
      if (protocol) {
        requestBodyMode = Number(protocol['request_body_mode'] ?? requestBodyMode);
        responseBodyMode = Number(protocol['response_body_mode'] ?? responseBodyMode);
      }
      switch (message['request']) {
        case 'request_headers': {
          if (heardHeaders || decided)
            return session.refuse(new RequestError(400, 'request headers sent twice'));
          heardHeaders = true;
          const h = message['request_headers'] ?? {};
          // Decoded to a record of lower-case name → value (ext-proc-codec).
          const headers = (h['headers'] as Record<string, string> | undefined) ?? {};
          if (!session.receive(headers, subsetHint(message))) return;
          if (h['end_of_stream']) return route(undefined, false);
          if (requestBodyMode !== BodySendMode.FULL_DUPLEX_STREAMED)
            write({ request_headers: { response: { header_mutation: REMOVE_ROUTING_HEADERS } } });
          return;
        }
        case 'request_body': {
          if (decided) return;
          const b = message['request_body'] ?? {};
          const chunk: Uint8Array = b['body'] ?? Buffer.alloc(0);
          bodyBytes += chunk.length;
          if (bodyBytes > deps.bodyLimitBytes) {
            return session.refuse(
              new RequestError(413, `request body exceeds the limit of ${deps.bodyLimitBytes} bytes`),
            );
          }
          if (bufferedBodyBytes + chunk.length > bodyBudget) {
            return session.refuse(
              new RequestError(
                503,
                'the endpoint picker holds too many request bodies at once; retry in a moment',
              ),
            );
          }
          bufferedBodyBytes += chunk.length;
          heldBodyBytes += chunk.length;
          // Copied: the chunk is a view into its whole gRPC message, which may carry far more (unknown fields are
          // skipped, not dropped) — kept as a view, a 1-byte body could hold a megabyte each.
          if (chunk.length > 0) chunks.push(Buffer.from(chunk));
          if (b['end_of_stream']) return route(Buffer.concat(chunks, bodyBytes), false);
          return;
        }
        case 'request_trailers': {
          // Trailers end the request body in full-duplex mode.
          if (!decided) return route(Buffer.concat(chunks, bodyBytes), true);
          write({ request_trailers: {} });
          return;
        }
        case 'response_headers': {
          const status = Number(message['response_headers']?.['headers']?.[':status'] ?? 0);
          const endOfStream = Boolean(message['response_headers']?.['end_of_stream']);
          // A stream that carried no request is a response observer's.
          if (!heardHeaders && !decided) return observeResponse(message, status, endOfStream);
          session.hearResponse(status, endOfStream);
          const servingEndpoint = session.endpoint;
          write({
            response_headers: {
              response:
                deps.servedByHeader && servingEndpoint
                  ? {
                      header_mutation: {
                        set_headers: [setHeaderOption(SERVED_BY_HEADER, servingEndpoint.name)],
                      },
                    }
                  : {},
            },
          });
          if (endOfStream) complete();
          return;
        }
        case 'response_body': {
          const b = message['response_body'] ?? {};
          session.responseBody(b['body'] ?? Buffer.alloc(0));
          if (responseBodyMode === BodySendMode.FULL_DUPLEX_STREAMED) {
            write({
              response_body: {
                response: {
                  body_mutation: {
                    streamed_response: {
                      body: b['body'] ?? Buffer.alloc(0),
                      end_of_stream: Boolean(b['end_of_stream']),
                    },
                  },
                },
              },
            });
          } else write({ response_body: { response: {} } });
          if (b['end_of_stream']) complete();
          return;
        }
        case 'response_trailers': {
          write({ response_trailers: {} });
          complete();
          return;
        }
        default:
          return;
      }
    }

    /**
     * A response observer's stream (`response-observer.ts`): its one message is the response headers of a request
     * routed on another stream, named by the token in the forwarded metadata. A token this EPP did not hand out, or
     * of a request already over, names nothing. In observability mode Envoy reads no answer.
     */
    function observeResponse(message: Message, status: number, endOfStream: boolean): void {
      const named = requestTokenOf(message);
      if (named !== undefined) awaitingResponse.get(named)?.hearResponse(status, endOfStream);
      if (!message['observability_mode']) write({ response_headers: { response: {} } });
      complete();
    }

    return {
      message(message: Message) {
        try {
          onMessage(message);
        } catch (error) {
          deps.logger.error({ err: error }, 'ext_proc message handling failed');
          if (!closed) session.refuse(new RequestError(500, 'internal error in the endpoint picker'));
        }
      },
      end() {
        // A request still waiting in flow control leaves the queue now.
        over();
        session.cancel();
        if (!closed) {
          closed = true;
          call.end();
        }
      },
      abort() {
        over();
        session.cancel();
        closed = true;
      },
    };
  };
}
