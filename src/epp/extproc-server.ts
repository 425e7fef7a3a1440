/**
 * @module epp/extproc-server
 * The Envoy ext_proc stream handler: one gRPC stream per HTTP request. It collects the request headers and body,
 * asks the director where the request goes, and answers with the destination in header
 * `x-gateway-destination-endpoint` and in dynamic metadata `envoy.lb` — or with an immediate OpenAI-style error.
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
import type { Logger } from 'pino';
import type { EndpointPickerConfig } from './config.js';
import type { Datastore } from './datastore.js';
import { decide, requestPriority, type ModelDirectory } from './director.js';
import type { EppMetrics, RequestObservation } from './epp-metrics.js';
import { endpointNames } from './metrics-http.js';
import {
  BodySendMode,
  setHeaderOption,
  type GrpcCall,
  type GrpcCallHandlers,
  type SetHeaderOption,
} from '../transport/index.js';
import {
  MAX_FAIRNESS_ID_LENGTH,
  fairnessIdOf,
  refusalOf,
  sloDeadline,
  type FlowController,
  type QueueOutcome,
  type Ticket,
} from './flow-control/index.js';
import { RequestError, openAiErrorBody, parseRequestBody, type ParsedBody } from './request.js';
import {
  requestTokenOf,
  RESPONSE_METADATA_NAMESPACE,
  responseMetadata,
  SERVED_BY_HEADER,
} from './response-observer.js';
import { routingHeadersToRemove } from './routing-headers.js';
import { estimatedTokens, type Endpoint, type SchedulingRequest } from './types.js';

export const DESTINATION_HEADER = 'x-gateway-destination-endpoint';
export const DESTINATION_METADATA_NAMESPACE = 'envoy.lb';
export const SUBSET_HINT_NAMESPACE = 'envoy.lb.subset_hint';
export const SUBSET_HINT_KEY = 'x-gateway-destination-endpoint-subset';

/** What the stream handler needs; `config` and `directory` are read per request so they can change live. */
export interface ExtProcDeps {
  datastore: Datastore;
  config: () => EndpointPickerConfig;
  directory: () => ModelDirectory;
  metrics: EppMetrics;
  logger: Logger;
  /** Largest request body accepted; larger gets 413. */
  bodyLimitBytes: number;
  /**
   * Request-body bytes all streams together may hold while they arrive (default 256 MiB, at least one largest body):
   * past it a stream gets 503 at once. Each stream is bounded by `bodyLimitBytes`, but a connection carries up to
   * a thousand streams and anyone in the cluster network can open connections.
   */
  bodyBudgetBytes?: number;
  /** Flow control (the `flowControl` feature gate): requests wait here while the pool is saturated. */
  flowControl?: FlowController | undefined;
  /**
   * Name the serving endpoint in an `x-served-by` response header (KServe's `enable-served-by-header`): the pod
   * the request went to, which only the picker knows.
   */
  servedByHeader?: boolean;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- the messages are dynamic protobuf objects */
type Message = Record<string, any>;

/** The header mutation of a routed request: the EPP's headers set, every other routing header removed. */
function routingMutation(set: SetHeaderOption[]): Message {
  return { set_headers: set, remove_headers: routingHeadersToRemove(set.map((o) => o.header.key)) };
}

/** Before the decision (buffered body mode answers the headers first): no routing header of the client's survives. */
const REMOVE_ROUTING_HEADERS: Message = Object.freeze({ remove_headers: routingHeadersToRemove() });

/** Addresses from `envoy.lb.subset_hint`, expanded so that a bare IP admits every port of that IP. */
function subsetHint(message: Message, endpoints: readonly Endpoint[]): Set<string> | undefined {
  const ns = message['metadata_context']?.['filter_metadata']?.[SUBSET_HINT_NAMESPACE];
  const values = ns?.['fields']?.[SUBSET_HINT_KEY]?.['listValue']?.['values'];
  if (!Array.isArray(values)) return undefined;
  const hinted = new Set<string>();
  for (const v of values) if (typeof v?.stringValue === 'string') hinted.add(v.stringValue);
  const allowed = new Set<string>();
  for (const e of endpoints) {
    const names = endpointNames(e.address);
    if ([...names.withPort, ...names.host].some((name) => hinted.has(name))) allowed.add(e.address);
  }
  return allowed;
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

let requestCounter = 0;

/** Creates the `Process` method: what to do with each ext_proc stream (one per HTTP request). */
export function createProcessHandler(
  deps: ExtProcDeps,
): (call: GrpcCall<Message>) => GrpcCallHandlers<Message> {
  /** Routed requests still in flight, by the token a response observer's stream names them with. */
  const awaitingResponse = new Map<string, (status: number, endOfStream: boolean) => void>();
  const bodyBudget = Math.max(deps.bodyBudgetBytes ?? 256 * 1024 * 1024, deps.bodyLimitBytes);
  let bufferedBodyBytes = 0;
  return function processStream(call) {
    let headers: Record<string, string> | undefined;
    let subset: Set<string> | undefined;
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
    let routedRequest: SchedulingRequest | undefined;
    /**
     * Until the response is done: the endpoint the request went to (counted in flight there), then every other one a
     * profile picked (for P/D the prefill endpoint); each hears the response.
     */
    let servedBy: Endpoint[] = [];
    /** The prompt tokens counted in flight on `servedBy[0]`, released with it. */
    let routedTokens = 0;
    let model = '';
    let targetModel = '';
    let firstMessageAt = 0;
    let observed: RequestObservation | undefined;
    /** Set while the request waits in flow control. */
    let ticket: Ticket | undefined;
    /** The upstream's `:status`; 0 until its response headers pass. */
    let responseStatus = 0;
    /** This request's key in `awaitingResponse`, once routed. */
    let token: string | undefined;

    function write(message: Message): void {
      if (closed || !call.isOpen()) return;
      call.send(message);
    }

    /** The response headers, heard on this stream or by a response observer's. */
    function hearResponse(status: number, endOfStream: boolean): void {
      responseStatus = status;
      observed?.responseStatus(status, endOfStream);
    }

    function finish(): void {
      if (token !== undefined) awaitingResponse.delete(token);
      token = undefined;
      observed?.done(performance.now());
      observed = undefined;
      const served = servedBy;
      if (served.length === 0) return;
      servedBy = [];
      served[0]!.inFlight = Math.max(0, served[0]!.inFlight - 1);
      served[0]!.inFlightTokens = Math.max(0, served[0]!.inFlightTokens - routedTokens);
      for (const endpoint of served) deps.datastore.noteRouting(endpoint.address);
      // No answer at all (refused, reset, or the client left first) or a 5xx: the server may be gone.
      if (responseStatus === 0 || responseStatus >= 500) deps.datastore.noteTrouble(served[0]!.address);
      // Capacity freed: a request waiting in flow control may go now.
      deps.flowControl?.poke();
      for (const hook of deps.config().scheduler.postResponse) {
        for (const endpoint of served) {
          try {
            hook.postResponse(routedRequest!, endpoint);
          } catch (error) {
            deps.logger.error({ err: error, plugin: hook.name }, 'post-response hook failed');
          }
        }
      }
    }

    /**
     * Ends the call (OK) and the request with it: after an immediate response, or once the response has passed
     * through and nothing is left for Envoy to send (rather than waiting for Envoy to close the call, as a gRPC
     * server does when its answer is complete).
     */
    function complete(): void {
      releaseBody();
      finish();
      closed = true;
      call.end();
    }

    function immediate(error: RequestError): void {
      deps.metrics.requests.inc({ model, outcome: String(error.status) });
      if (error.status === 429) deps.metrics.shed.inc({ model });
      const labels = deps.metrics.requestLabels(model, targetModel || model, headers ?? {}, deps.directory());
      deps.metrics.recordRefusal(labels, error.status);
      write({
        immediate_response: {
          status: { code: error.status },
          headers: {
            set_headers: [
              setHeaderOption('content-type', 'application/json'),
              ...Object.entries(error.headers).map(([k, v]) => setHeaderOption(k, v)),
            ],
          },
          body: Buffer.from(openAiErrorBody(error)),
          details: `llmisvc_epp_${error.status}`,
        },
      });
      // The stream ends here, so a request routed earlier on it (a protocol error after the pick) is done too.
      complete();
    }

    /**
     * The request is complete: with flow control it is admitted first (and may wait for capacity), then the
     * config's preparers run (they may wait on a model server), then it is scheduled.
     */
    function route(body: Buffer | undefined, trailersFollow: boolean): void {
      decided = true;
      releaseBody();
      const flow = deps.flowControl;
      if (!flow) return prepare(body, trailersFollow, undefined);
      const h = headers ?? {};
      let parsed: ParsedBody | undefined;
      try {
        if (body !== undefined && body.length > 0) parsed = parseRequestBody(h[':path'] ?? '', body);
      } catch (error) {
        if (error instanceof RequestError) return immediate(error);
        throw error;
      }
      const fairnessId = fairnessIdOf(h);
      if (fairnessId.length > MAX_FAIRNESS_ID_LENGTH) {
        return immediate(
          new RequestError(
            400,
            `the fairness id header is ${fairnessId.length} characters long; at most ${MAX_FAIRNESS_ID_LENGTH} are accepted`,
          ),
        );
      }
      model = parsed?.model ?? '';
      let headerBytes = 0;
      for (const k in h) headerBytes += k.length + h[k]!.length;
      const admitted = (outcome: QueueOutcome) => {
        ticket = undefined;
        if (outcome === 'Dispatched') prepare(body, trailersFollow, parsed);
        else immediate(refusalOf(outcome));
      };
      const result = flow.admit(
        {
          priority: requestPriority(model, h, deps.directory()),
          fairnessId,
          bytes: bodyBytes + headerBytes,
          sloDeadline: sloDeadline(firstMessageAt, h),
          labels: deps.metrics.requestLabels(model, model, h, deps.directory()),
        },
        admitted,
      );
      if (typeof result === 'string') admitted(result);
      else ticket = result;
    }

    /** The config's preparers (token-producer) run before scheduling; a preparer may wait on a model server. */
    function prepare(
      body: Buffer | undefined,
      trailersFollow: boolean,
      parsed: ParsedBody | undefined,
    ): void {
      const preparers = deps.config().preparers;
      if (preparers.length === 0 || body === undefined)
        return schedule(body, trailersFollow, parsed, undefined);
      const data = new Map<string, unknown>();
      const input = { path: headers?.[':path'] ?? '', headers: headers ?? {}, body };
      const endpoints = deps.datastore.endpoints();
      void Promise.allSettled(preparers.map((p) => p.prepareRequestData(input, endpoints, data))).then(() => {
        if (closed) return;
        try {
          schedule(body, trailersFollow, parsed, data);
        } catch (error) {
          deps.logger.error({ err: error }, 'ext_proc message handling failed');
          if (!closed) immediate(new RequestError(500, 'internal error in the endpoint picker'));
        }
      });
    }

    function schedule(
      body: Buffer | undefined,
      trailersFollow: boolean,
      parsed: ParsedBody | undefined,
      requestData: ReadonlyMap<string, unknown> | undefined,
    ): void {
      if (closed) return;
      const started = performance.now();
      // Observed after the answer is written, below and in immediate().
      const observePhase = () =>
        deps.metrics.observeRequestPhase((performance.now() - firstMessageAt) / 1000);
      const id = headers?.['x-request-id'] ?? `epp-${++requestCounter}`;
      const endpoints = deps.datastore.endpoints();
      const decision = decide(
        {
          requestId: id,
          path: headers?.[':path'] ?? '',
          headers: headers ?? {},
          body,
          subsetHint: subset,
          requestData,
          parsed,
        },
        endpoints,
        deps.config(),
        deps.directory(),
        Date.now(),
      );
      deps.metrics.observeScheduling((performance.now() - started) / 1000);
      model = decision.model;
      if (decision.kind === 'reject') {
        if (deps.logger.isLevelEnabled('debug')) {
          deps.logger.debug(
            { requestId: id, model, status: decision.error.status, reason: decision.error.message },
            'request refused',
          );
        }
        immediate(decision.error);
        observePhase();
        return;
      }
      const endpoint = decision.endpoint;
      endpoint.inFlight++;
      routedTokens = estimatedTokens(decision.request.prompt);
      endpoint.inFlightTokens += routedTokens;
      routedRequest = decision.request;
      deps.metrics.requests.inc({ model, outcome: 'routed' });
      targetModel = decision.targetModel;
      const labels = deps.metrics.requestLabels(model, targetModel, headers ?? {}, deps.directory());
      observed = deps.metrics.startRequest(labels, endpoint, bodyBytes, firstMessageAt);
      if (decision.prefixHitRatio !== undefined) deps.metrics.prefixHitRatio.observe(decision.prefixHitRatio);
      servedBy = [endpoint];
      for (const [profile, result] of decision.result.results) {
        const target = result.targets[0];
        if (!target) continue;
        deps.metrics.picks.inc({ endpoint: target.address, profile });
        if (!servedBy.includes(target)) servedBy.push(target);
      }
      for (const target of servedBy) deps.datastore.noteRouting(target.address);
      if (deps.logger.isLevelEnabled('debug')) {
        deps.logger.debug(
          {
            requestId: id,
            model,
            targetModel: decision.targetModel,
            endpoint: endpoint.address,
            headers: decision.headers,
            criticality: decision.criticality,
          },
          'request scheduled',
        );
      }
      const mutations = [setHeaderOption(DESTINATION_HEADER, endpoint.address)];
      for (const [k, v] of Object.entries(decision.headers)) mutations.push(setHeaderOption(k, v));
      const outBody = decision.rewrittenBody ?? body;
      if (decision.rewrittenBody)
        mutations.push(setHeaderOption('content-length', String(decision.rewrittenBody.length)));
      token = randomUUID();
      awaitingResponse.set(token, hearResponse);
      const metadata = routingMetadata(
        endpoint.address,
        token,
        deps.servedByHeader ? endpoint.name : undefined,
      );
      const headerMutation = routingMutation(mutations);
      if (body === undefined) {
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
                streamed_response: { body: outBody ?? Buffer.alloc(0), end_of_stream: !trailersFollow },
              },
            },
          },
        });
        if (trailersFollow) write({ request_trailers: {} });
      } else {
        const response: Message = { header_mutation: headerMutation, clear_route_cache: true };
        if (decision.rewrittenBody) response['body_mutation'] = { body: decision.rewrittenBody };
        write({ request_body: { response }, dynamic_metadata: metadata });
      }
      observePhase();
    }

    function onMessage(message: Message): void {
      if (closed) return;
      if (firstMessageAt === 0) firstMessageAt = performance.now();
      const protocol = message['protocol_config'];
      if (protocol) {
        requestBodyMode = Number(protocol['request_body_mode'] ?? requestBodyMode);
        responseBodyMode = Number(protocol['response_body_mode'] ?? responseBodyMode);
      }
      switch (message['request']) {
        case 'request_headers': {
          if (headers !== undefined || decided)
            return immediate(new RequestError(400, 'request headers sent twice'));
          const h = message['request_headers'] ?? {};
          // Decoded to a record of lower-case name → value (ext-proc-codec).
          headers = (h['headers'] as Record<string, string> | undefined) ?? {};
          subset = subsetHint(message, deps.datastore.endpoints());
          const length = Number(headers['content-length']);
          if (Number.isFinite(length) && length > deps.bodyLimitBytes) {
            return immediate(
              new RequestError(
                413,
                `request body of ${length} bytes exceeds the limit of ${deps.bodyLimitBytes} bytes`,
              ),
            );
          }
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
            return immediate(
              new RequestError(413, `request body exceeds the limit of ${deps.bodyLimitBytes} bytes`),
            );
          }
          if (bufferedBodyBytes + chunk.length > bodyBudget) {
            return immediate(
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
          if (headers === undefined && !decided) return observeResponse(message, status, endOfStream);
          hearResponse(status, endOfStream);
          const servingEndpoint = servedBy[0];
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
          if (message['response_headers']?.['end_of_stream']) complete();
          return;
        }
        case 'response_body': {
          const b = message['response_body'] ?? {};
          observed?.responseBody(b['body'] ?? Buffer.alloc(0));
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
      if (named !== undefined) awaitingResponse.get(named)?.(status, endOfStream);
      if (!message['observability_mode']) write({ response_headers: { response: {} } });
      complete();
    }

    return {
      message(message: Message) {
        try {
          onMessage(message);
        } catch (error) {
          deps.logger.error({ err: error }, 'ext_proc message handling failed');
          if (!closed) immediate(new RequestError(500, 'internal error in the endpoint picker'));
        }
      },
      end() {
        // A request still waiting in flow control leaves the queue now.
        ticket?.cancel();
        releaseBody();
        finish();
        if (!closed) {
          closed = true;
          call.end();
        }
      },
      abort() {
        ticket?.cancel();
        releaseBody();
        finish();
        closed = true;
      },
    };
  };
}
