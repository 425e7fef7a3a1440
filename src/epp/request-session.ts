/**
 * @module epp/request-session
 * One request's life in the EPP, whatever carries it to the EPP: its headers heard, then, once its body is whole,
 * admitted (flow control, where it may wait), prepared (the config's preparers, which may wait on a model server) and
 * scheduled; counted in flight on its endpoint until it is over; its response heard. Every refusal is counted in the
 * metrics and answered as an OpenAI-style error.
 *
 * Two carriers drive a session. The ext_proc stream handler (`extproc-server.ts`) turns Envoy's messages into these
 * calls and the answers into messages. The builtin gateway of `llmisvc up`, in the same process, calls it directly
 * (`gateway/inprocess-picker.ts`): at idle, building and reading the ext_proc messages of a request cost about as much
 * as the decision itself (bench/results/peers/README.md).
 */
import type { Logger } from 'pino';
import type { EndpointPickerConfig } from './config.js';
import type { Datastore } from './datastore.js';
import { decide, requestPriority, type ModelDirectory } from './director.js';
import { RequestObservation, type EppMetrics } from './epp-metrics.js';
import {
  MAX_FAIRNESS_ID_LENGTH,
  fairnessIdOf,
  refusalOf,
  sloDeadline,
  type FlowController,
  type QueueOutcome,
  type Ticket,
} from './flow-control/index.js';
import { endpointNames } from './metrics-http.js';
import { RequestError, openAiErrorBody, parseRequestBody, parsedBody, type ParsedBody } from './request.js';
import { routingHeadersToRemove } from './routing-headers.js';
import { estimatedTokens, type Endpoint, type SchedulingRequest } from './types.js';

export const DESTINATION_HEADER = 'x-gateway-destination-endpoint';

/** What a session needs of the EPP; `config` and `directory` are read per request so they can change live. */
export interface SessionDeps {
  datastore: Datastore;
  config: () => EndpointPickerConfig;
  directory: () => ModelDirectory;
  metrics: EppMetrics;
  logger: Logger;
  /** Largest request body accepted; larger gets 413. */
  bodyLimitBytes: number;
  /** Flow control (the `flowControl` feature gate): requests wait here while the pool is saturated. */
  flowControl?: FlowController | undefined;
}

/** The EPP's answer to a request: where it goes, or the error the client gets. */
export type RoutingAnswer =
  | {
      kind: 'routed';
      endpoint: Endpoint;
      /** Headers to set on the request, the destination first (`x-gateway-destination-endpoint`). */
      headers: [string, string][];
      /** The routing headers to remove: every one the EPP does not set (a client's would steer the request). */
      removeHeaders: readonly string[];
      /** The body to send instead of the client's (the model name mapped), its length among `headers`. */
      rewrittenBody: Buffer | undefined;
    }
  | { kind: 'refused'; status: number; headers: [string, string][]; body: Buffer };

const NO_HEADERS: Record<string, string> = Object.freeze({});

let requestCounter = 0;

/**
 * The addresses a gateway's subset hint admits (`envoy.lb.subset_hint`): each hinted `ip:port`, and every port of a
 * hinted bare IP.
 */
function subsetOf(hinted: ReadonlySet<string>, endpoints: readonly Endpoint[]): Set<string> {
  const allowed = new Set<string>();
  for (const e of endpoints) {
    const names = endpointNames(e.address);
    if ([...names.withPort, ...names.host].some((name) => hinted.has(name))) allowed.add(e.address);
  }
  return allowed;
}

export class RequestSession {
  private headers: Record<string, string> = NO_HEADERS;
  /** The endpoints the gateway allows (its subset hint); undefined: all. */
  private subset: Set<string> | undefined;
  private model = '';
  private targetModel = '';
  private readonly openedAt = performance.now();
  /** Set once the request is over: nothing is answered or counted after it. */
  private over = false;
  private routedRequest: SchedulingRequest | undefined;
  /**
   * Until the request is over: the endpoint it went to (counted in flight there), then every other one a profile
   * picked (for P/D the prefill endpoint); each hears the response.
   */
  private servedBy: Endpoint[] = [];
  /** The prompt tokens counted in flight on `servedBy[0]`, released with it. */
  private routedTokens = 0;
  private observed: RequestObservation | undefined;
  /** Set while the request waits in flow control. */
  private ticket: Ticket | undefined;
  /** The upstream's `:status`; 0 until its response headers pass. */
  private responseStatus = 0;

  /** `answer` hears the decision once, unless the session is over first (cancelled while it waits). */
  constructor(
    private readonly deps: SessionDeps,
    private readonly answer: (answer: RoutingAnswer) => void,
  ) {}

  /** The endpoint serving the request, once it is routed. */
  get endpoint(): Endpoint | undefined {
    return this.servedBy[0];
  }

  /**
   * The request's headers (lower-case names) and the addresses the gateway's subset hint names (`ip:port`, or a bare
   * IP for each of its ports). A `content-length` above the body limit refuses the request at once: returns false.
   */
  receive(headers: Record<string, string>, subsetHint?: ReadonlySet<string>): boolean {
    this.headers = headers;
    if (subsetHint) this.subset = subsetOf(subsetHint, this.deps.datastore.endpoints());
    const length = Number(headers['content-length']);
    if (Number.isFinite(length) && length > this.deps.bodyLimitBytes) {
      this.refuse(
        new RequestError(
          413,
          `request body of ${length} bytes exceeds the limit of ${this.deps.bodyLimitBytes} bytes`,
        ),
      );
      return false;
    }
    return true;
  }

  /**
   * The request is complete (`body` undefined: it has none; `json`: the body as a gateway in this process already
   * decoded it): with flow control it is admitted first (and may wait for capacity), then the config's preparers
   * run, then it is scheduled and answered.
   */
  route(body: Buffer | undefined, json?: Record<string, unknown>): void {
    try {
      this.admit(body, json);
    } catch (error) {
      this.deps.logger.error({ err: error }, 'routing a request failed');
      this.refuse(new RequestError(500, 'internal error in the endpoint picker'));
    }
  }

  private admit(body: Buffer | undefined, json: Record<string, unknown> | undefined): void {
    const flow = this.deps.flowControl;
    const h = this.headers;
    let parsed: ParsedBody | undefined;
    // Without flow control the director parses the body itself, unless it was decoded already.
    try {
      if (json !== undefined && body !== undefined) parsed = parsedBody(h[':path'] ?? '', json);
      else if (flow && body !== undefined && body.length > 0)
        parsed = parseRequestBody(h[':path'] ?? '', body);
    } catch (error) {
      if (error instanceof RequestError) return this.refuse(error);
      throw error;
    }
    if (!flow) return this.prepare(body, parsed);
    const fairnessId = fairnessIdOf(h);
    if (fairnessId.length > MAX_FAIRNESS_ID_LENGTH) {
      return this.refuse(
        new RequestError(
          400,
          `the fairness id header is ${fairnessId.length} characters long; at most ${MAX_FAIRNESS_ID_LENGTH} are accepted`,
        ),
      );
    }
    this.model = parsed?.model ?? '';
    let headerBytes = 0;
    for (const k in h) headerBytes += k.length + h[k]!.length;
    const admitted = (outcome: QueueOutcome) => {
      this.ticket = undefined;
      if (outcome === 'Dispatched') this.prepare(body, parsed);
      else this.refuse(refusalOf(outcome));
    };
    const directory = this.deps.directory();
    const result = flow.admit(
      {
        priority: requestPriority(this.model, h, directory),
        fairnessId,
        bytes: (body?.length ?? 0) + headerBytes,
        sloDeadline: sloDeadline(this.openedAt, h),
        labels: this.deps.metrics.requestLabels(this.model, this.model, h, directory),
      },
      admitted,
    );
    if (typeof result === 'string') admitted(result);
    else this.ticket = result;
  }

  /** Refuses the request, counted in the metrics; the request is over (a pick made earlier is released). */
  refuse(error: RequestError): void {
    if (this.over) return;
    const metrics = this.deps.metrics;
    metrics.requests.inc({ model: this.model, outcome: String(error.status) });
    if (error.status === 429) metrics.shed.inc({ model: this.model });
    const labels = metrics.requestLabels(
      this.model,
      this.targetModel || this.model,
      this.headers,
      this.deps.directory(),
    );
    metrics.recordRefusal(labels, error.status);
    this.answer({
      kind: 'refused',
      status: error.status,
      headers: [['content-type', 'application/json'], ...Object.entries(error.headers)],
      body: Buffer.from(openAiErrorBody(error)),
    });
    this.finish();
  }

  /** The response headers passed (heard from the gateway's stream or a response observer's). */
  hearResponse(status: number, endOfStream: boolean): void {
    this.responseStatus = status;
    this.observed?.responseStatus(status, endOfStream);
  }

  /** A piece of the response body passed (only where the gateway streams it through the EPP). */
  responseBody(chunk: Uint8Array): void {
    this.observed?.responseBody(chunk);
  }

  /** The gateway gave up on the request: it leaves the flow-control queue at once, and is over. */
  cancel(): void {
    this.ticket?.cancel();
    this.finish();
  }

  /**
   * The request is over: its endpoint's in-flight counts are released, a missing or 5xx answer marks the endpoint for
   * a prompt scrape, a request waiting in flow control may go, and the post-response hooks run. Idempotent.
   */
  finish(): void {
    if (this.over) return;
    this.over = true;
    this.observed?.done(performance.now());
    this.observed = undefined;
    const served = this.servedBy;
    if (served.length === 0) return;
    this.servedBy = [];
    const deps = this.deps;
    served[0]!.inFlight = Math.max(0, served[0]!.inFlight - 1);
    served[0]!.inFlightTokens = Math.max(0, served[0]!.inFlightTokens - this.routedTokens);
    for (const endpoint of served) deps.datastore.noteRouting(endpoint.address);
    // No answer at all (refused, reset, or the client left first) or a 5xx: the server may be gone.
    if (this.responseStatus === 0 || this.responseStatus >= 500)
      deps.datastore.noteTrouble(served[0]!.address);
    // Capacity freed: a request waiting in flow control may go now.
    deps.flowControl?.poke();
    for (const hook of deps.config().scheduler.postResponse) {
      for (const endpoint of served) {
        try {
          hook.postResponse(this.routedRequest!, endpoint);
        } catch (error) {
          deps.logger.error({ err: error, plugin: hook.name }, 'post-response hook failed');
        }
      }
    }
  }

  /** The config's preparers (token-producer) run before scheduling; a preparer may wait on a model server. */
  private prepare(body: Buffer | undefined, parsed: ParsedBody | undefined): void {
    const preparers = this.deps.config().preparers;
    if (preparers.length === 0 || body === undefined) return this.schedule(body, parsed, undefined);
    const data = new Map<string, unknown>();
    const input = { path: this.headers[':path'] ?? '', headers: this.headers, body };
    const endpoints = this.deps.datastore.endpoints();
    void Promise.allSettled(preparers.map((p) => p.prepareRequestData(input, endpoints, data))).then(() => {
      if (this.over) return;
      try {
        this.schedule(body, parsed, data);
      } catch (error) {
        this.deps.logger.error({ err: error }, 'routing a request failed');
        this.refuse(new RequestError(500, 'internal error in the endpoint picker'));
      }
    });
  }

  private schedule(
    body: Buffer | undefined,
    parsed: ParsedBody | undefined,
    requestData: ReadonlyMap<string, unknown> | undefined,
  ): void {
    if (this.over) return;
    const deps = this.deps;
    const metrics = deps.metrics;
    const started = performance.now();
    const headers = this.headers;
    const id = headers['x-request-id'] ?? `epp-${++requestCounter}`;
    const directory = deps.directory();
    const decision = decide(
      {
        requestId: id,
        path: headers[':path'] ?? '',
        headers,
        body,
        subsetHint: this.subset,
        requestData,
        parsed,
      },
      deps.datastore.endpoints(),
      deps.config(),
      directory,
      Date.now(),
    );
    const schedulingSeconds = (performance.now() - started) / 1000;
    metrics.later(() => metrics.observeScheduling(schedulingSeconds));
    this.model = decision.model;
    if (decision.kind === 'reject') {
      if (deps.logger.isLevelEnabled('debug')) {
        deps.logger.debug(
          { requestId: id, model: this.model, status: decision.error.status, reason: decision.error.message },
          'request refused',
        );
      }
      this.refuse(decision.error);
      this.observePhase();
      return;
    }
    const endpoint = decision.endpoint;
    endpoint.inFlight++;
    this.routedTokens = estimatedTokens(decision.request.prompt);
    endpoint.inFlightTokens += this.routedTokens;
    this.routedRequest = decision.request;
    this.targetModel = decision.targetModel;
    const labels = metrics.requestLabels(this.model, this.targetModel, headers, directory);
    this.observed = new RequestObservation(metrics, labels, this.openedAt);
    const servedBy = [endpoint];
    const picks: [string, string][] = [];
    for (const [profile, result] of decision.result.results) {
      const target = result.targets[0];
      if (!target) continue;
      picks.push([target.address, profile]);
      if (!servedBy.includes(target)) servedBy.push(target);
    }
    this.servedBy = servedBy;
    const model = this.model;
    const bytes = body?.length ?? 0;
    const hitRatio = decision.prefixHitRatio;
    metrics.later(() => {
      metrics.requests.inc({ model, outcome: 'routed' });
      metrics.countRouted(labels, endpoint, bytes);
      if (hitRatio !== undefined) metrics.prefixHitRatio.observe(hitRatio);
      for (const [address, profile] of picks) metrics.picks.inc({ endpoint: address, profile });
    });
    for (const target of servedBy) deps.datastore.noteRouting(target.address);
    if (deps.logger.isLevelEnabled('debug')) {
      deps.logger.debug(
        {
          requestId: id,
          model: this.model,
          targetModel: decision.targetModel,
          endpoint: endpoint.address,
          headers: decision.headers,
          criticality: decision.criticality,
        },
        'request scheduled',
      );
    }
    const set: [string, string][] = [[DESTINATION_HEADER, endpoint.address]];
    for (const k in decision.headers) set.push([k, decision.headers[k]!]);
    if (decision.rewrittenBody) set.push(['content-length', String(decision.rewrittenBody.length)]);
    this.answer({
      kind: 'routed',
      endpoint,
      headers: set,
      removeHeaders: routingHeadersToRemove(set.map(([name]) => name)),
      rewrittenBody: decision.rewrittenBody,
    });
    this.observePhase();
  }

  /** The request phase's duration, observed once the answer is out. */
  private observePhase(): void {
    const metrics = this.deps.metrics;
    const seconds = (performance.now() - this.openedAt) / 1000;
    metrics.later(() => metrics.observeRequestPhase(seconds));
  }
}
