/**
 * @module kube/client
 * A small Kubernetes REST client: JSON requests, server-side apply, streaming watches. Connection and credentials
 * come from a kubeconfig (or the in-cluster service account) through `@kubernetes/client-node`'s KubeConfig, which
 * knows every auth flavour; the requests themselves go through one keep-alive agent so that every call is counted
 * (the controller's "zero writes in steady state" promise is measured here) and rate limited like client-go.
 *
 * The one client of the project: the controller uses its typed helpers, the development API server (dev/) and the
 * dependency tooling (deps/) apply raw manifests through `send` with paths from `Discovery.objectPath`. Manifests
 * must go out as JSON exactly as parsed from the file: @kubernetes/client-node's `KubernetesObjectApi` serializes
 * known kinds through its generated models, which silently drops keys the models spell differently — CRD schemas
 * lose `x-kubernetes-int-or-string`, `x-kubernetes-validations` (CEL rules) and the like. So client-node only
 * supplies the kubeconfig handling (every auth flavour it understands works) and never sees a body.
 */
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { LlmisvcError } from '../errors/index.js';
import type { KubeObject, ResourceRef } from './resources.js';
import { resourcePath } from './resources.js';

/** The API server answered with a non-2xx status (or a watch delivered an ERROR event). */
export class KubeApiError extends LlmisvcError {
  readonly status: number;
  readonly reason: string;
  /** The Status object's `details` (which object the answer is about), when the server sent them. */
  readonly details: { kind?: string; name?: string; group?: string } | undefined;

  constructor(
    status: number,
    reason: string,
    message: string,
    details?: { kind?: string; name?: string; group?: string },
  ) {
    super('LLMISVC_ERR_KUBE', message, {
      hint:
        status === 403
          ? 'the controller ServiceAccount lacks a permission: compare deploy/rbac.yaml with the verb and resource above'
          : undefined,
    });
    this.name = 'KubeApiError';
    this.status = status;
    this.reason = reason;
    this.details = details;
  }
}

export function isNotFound(error: unknown): boolean {
  return error instanceof KubeApiError && error.status === 404;
}
export function isConflict(error: unknown): boolean {
  return error instanceof KubeApiError && error.status === 409;
}
export function isGone(error: unknown): boolean {
  return error instanceof KubeApiError && error.status === 410;
}

export interface KubeClientOptions {
  /** Path of a kubeconfig file; default: $KUBECONFIG / ~/.kube/config, or in-cluster when `inCluster`. */
  kubeconfig?: string;
  context?: string;
  inCluster?: boolean;
  /** Client-side request rate (requests per second) and burst, as client-go's QPS/Burst. */
  qps?: number;
  burst?: number;
  userAgent?: string;
  /** Act as this user (and groups), like `kubectl --as`; used to check the controller's RBAC in tests. */
  impersonate?: { user: string; groups?: string[] };
  /**
   * Gives up on a plain request whose connection stays silent this long (watches are exempt; they have
   * `idleTimeoutMs`). Unset: no limit, as the controller retries through its work queue; one-shot tools set 30 s.
   */
  requestTimeoutMs?: number;
  /** What sends the requests; default node:http(s) through the client's agents. Tests pass a fake (`KubeTransport`). */
  transport?: KubeTransport;
}

/** Attempts of one request the server answers 429 (client-go makes up to 10; a one-shot tool should not wait long). */
const MAX_429_ATTEMPTS = 5;

/** Retry-After in seconds → ms: 1 s when absent or not a number, at most 10 s. */
export function retryAfterMs(header: string | undefined): number {
  const seconds = Number(header);
  return Number.isFinite(seconds) && seconds >= 0 ? Math.min(seconds, 10) * 1000 : 1000;
}

/** An answer as the client reads it: its status, then the body as a stream. `http.IncomingMessage` is one. */
export type KubeResponse = Readable & {
  statusCode?: number | undefined;
  headers?: Record<string, string | string[] | undefined>;
  socket?: { setTimeout(ms: number, callback?: () => void): unknown } | null;
};

/** One request as the client sends it, for a `KubeTransport`. */
export interface KubeRequest {
  method: string;
  url: URL;
  headers: Record<string, string | string[]>;
  body: string | undefined;
  signal: AbortSignal | undefined;
  /** A watch: a long-lived stream, exempt from `requestTimeoutMs`. */
  watch: boolean;
}

/**
 * Sends one request and resolves with the answer once its head is in (rejects when there is no answer). The seam
 * that lets a unit test feed the client, and the informers over it, without an API server.
 */
export type KubeTransport = (request: KubeRequest) => Promise<KubeResponse>;

/** A raw answer of `send`: the status and the body, parsed as JSON when it is JSON, else the text. */
export interface RawResponse {
  status: number;
  body: unknown;
}

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'apply' | 'delete';
const WRITE_VERBS: ReadonlySet<Verb> = new Set(['create', 'update', 'patch', 'apply', 'delete']);

/** One completed request, for metrics and the benchmark's write counter. */
export interface RequestRecord {
  verb: Verb;
  path: string;
  status: number;
}

interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  verb: Verb;
}

/** A token bucket: `take()` resolves when a request may go. */
class TokenBucket {
  private tokens: number;
  private last = Date.now();
  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }
  async take(): Promise<void> {
    for (;;) {
      const now = Date.now();
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
      this.last = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await sleep(Math.ceil(((1 - this.tokens) / this.rate) * 1000));
    }
  }
}

export class KubeClient {
  readonly server: URL;
  /** Requests counted by verb since start (watch streams count once per connection). */
  readonly counts = new Map<Verb, number>();
  private readonly listeners: ((record: RequestRecord) => void)[] = [];
  private readonly agent: http.Agent;
  /** Watches hold their connection for minutes: a pool of their own, so they can never starve plain requests. */
  private readonly watchAgent: http.Agent;
  private headers: Record<string, string | string[]> = {};
  private headersAt = 0;
  private readonly bucket: TokenBucket;
  private readonly userAgent: string;
  private readonly impersonate: KubeClientOptions['impersonate'];
  private readonly requestTimeoutMs: number | undefined;
  private readonly transport: KubeTransport;

  private constructor(
    private readonly config: KubeConfig,
    tls: https.AgentOptions,
    options: KubeClientOptions,
  ) {
    const cluster = config.getCurrentCluster();
    if (!cluster) throw new LlmisvcError('LLMISVC_ERR_CONFIG', 'the kubeconfig has no current cluster');
    this.server = new URL(cluster.server);
    const agentOptions = { keepAlive: true, maxSockets: 32 };
    const secure = this.server.protocol === 'https:';
    this.agent = secure ? new https.Agent({ ...tls, ...agentOptions }) : new http.Agent(agentOptions);
    this.watchAgent = secure ? new https.Agent({ ...tls }) : new http.Agent();
    this.bucket = new TokenBucket(options.qps ?? 100, options.burst ?? 200);
    this.userAgent = options.userAgent ?? 'llmisvc';
    this.impersonate = options.impersonate;
    this.requestTimeoutMs = options.requestTimeoutMs;
    this.transport = options.transport ?? ((request) => this.sendOverHttp(request));
  }

  /**
   * A client of `server` whose requests all go to `transport`, with no credentials: for unit tests.
   *
   * @example
   * const client = KubeClient.forTransport(fake.transport);
   */
  static forTransport(
    transport: KubeTransport,
    options: Omit<KubeClientOptions, 'transport'> = {},
  ): KubeClient {
    const config = new KubeConfig();
    config.loadFromOptions({
      clusters: [{ name: 'fake', server: 'https://kube.invalid', skipTLSVerify: false }],
      users: [{ name: 'fake' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
      currentContext: 'fake',
    });
    return new KubeClient(config, {}, { ...options, transport });
  }

  /** Builds a client from a kubeconfig file, the default kubeconfig, or the in-cluster service account. */
  static async create(options: KubeClientOptions = {}): Promise<KubeClient> {
    const config = new KubeConfig();
    try {
      if (options.inCluster) config.loadFromCluster();
      else if (options.kubeconfig) config.loadFromFile(options.kubeconfig);
      else config.loadFromDefault();
      if (options.context) config.setCurrentContext(options.context);
    } catch (error) {
      throw new LlmisvcError(
        'LLMISVC_ERR_CONFIG',
        `cannot load the kubeconfig: ${(error as Error).message}`,
        {
          hint: 'pass --kubeconfig FILE, set KUBECONFIG, or run inside a cluster',
          cause: error,
        },
      );
    }
    const tls: https.RequestOptions = {};
    await config.applyToHTTPSOptions(tls);
    const agentTls: https.AgentOptions = {
      ca: tls.ca,
      cert: tls.cert,
      key: tls.key,
      ...(tls.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: tls.rejectUnauthorized }),
      ...(tls.servername ? { servername: tls.servername } : {}),
    };
    return new KubeClient(config, agentTls, options);
  }

  /** Calls `listener` after every request; used for metrics and API-write counting. */
  onRequest(listener: (record: RequestRecord) => void): void {
    this.listeners.push(listener);
  }

  /** Number of write requests (create/update/patch/apply/delete) since start. */
  writes(): number {
    let total = 0;
    for (const [verb, count] of this.counts) if (WRITE_VERBS.has(verb)) total += count;
    return total;
  }

  close(): void {
    this.agent.destroy();
    this.watchAgent.destroy();
  }

  // Tokens from exec plugins or projected service-account files rotate; refresh the headers once a minute.
  private async authHeaders(): Promise<Record<string, string | string[]>> {
    if (Date.now() - this.headersAt > 60_000) {
      const opts: https.RequestOptions = {};
      await this.config.applyToHTTPSOptions(opts);
      const headers: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(opts.headers ?? {})) headers[k] = String(v);
      if (opts.auth) headers['Authorization'] = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
      if (this.impersonate) {
        headers['Impersonate-User'] = this.impersonate.user;
        // One header line per group: the API server does not split comma-joined values.
        if (this.impersonate.groups?.length) headers['Impersonate-Group'] = this.impersonate.groups;
      }
      this.headers = headers;
      this.headersAt = Date.now();
    }
    return this.headers;
  }

  private record(verb: Verb, path: string, status: number): void {
    this.counts.set(verb, (this.counts.get(verb) ?? 0) + 1);
    for (const listener of this.listeners) listener({ verb, path, status });
  }

  private url(path: string, query?: RequestOptions['query']): URL {
    const url = new URL(path, this.server);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    return url;
  }

  private sendOverHttp({ method, url, headers, body, signal, watch }: KubeRequest): Promise<KubeResponse> {
    const transport = url.protocol === 'https:' ? https : http;
    const agent = watch ? this.watchAgent : this.agent;
    const timeoutMs = watch ? undefined : this.requestTimeoutMs;
    return new Promise((resolve, reject) => {
      const req = transport.request(url, { method, agent, headers, signal }, resolve);
      if (timeoutMs) {
        req.setTimeout(timeoutMs, () => req.destroy(new Error(`timed out after ${timeoutMs / 1000} s`)));
      }
      req.on('error', reject);
      req.end(body);
    });
  }

  /** One request, answered with its status and body text; only a connection failure throws. */
  private async exchange(
    method: string,
    path: string,
    options: RequestOptions,
  ): Promise<{ status: number; text: string }> {
    await this.bucket.take();
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const headers: Record<string, string | string[]> = {
      ...(await this.authHeaders()),
      Accept: 'application/json',
      'User-Agent': this.userAgent,
    };
    if (body !== undefined) {
      headers['Content-Type'] = options.contentType ?? 'application/json';
      // Node does not frame DELETE bodies by default (no chunked encoding): without a length the server would read
      // the body as the start of the next request on this keep-alive connection.
      headers['Content-Length'] = String(Buffer.byteLength(body));
    }
    const url = this.url(path, options.query);
    for (let attempt = 1; ; attempt++) {
      const answer = await this.exchangeOnce(method, path, url, headers, body, options);
      // As client-go: a 429 ("too many requests", or "storage is (re)initializing" right after the API server
      // starts) is retried after its Retry-After, a few times, before it reaches the caller.
      if (answer.status !== 429 || attempt >= MAX_429_ATTEMPTS) return answer;
      await sleep(retryAfterMs(answer.retryAfter));
    }
  }

  private async exchangeOnce(
    method: string,
    path: string,
    url: URL,
    headers: Record<string, string | string[]>,
    body: string | undefined,
    options: RequestOptions,
  ): Promise<{ status: number; text: string; retryAfter: string | undefined }> {
    let res: KubeResponse;
    try {
      res = await this.transport({ method, url, headers, body, signal: undefined, watch: false });
    } catch (error) {
      this.record(options.verb, path, 0);
      throw new LlmisvcError('LLMISVC_ERR_KUBE', `${method} ${path}: ${(error as Error).message}`, {
        hint: `is the API server at ${this.server.origin} reachable?`,
        cause: error,
      });
    }
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const status = res.statusCode ?? 0;
    this.record(options.verb, path, status);
    const retryAfter = res.headers?.['retry-after'];
    return { status, text, retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter };
  }

  /** One JSON request; throws KubeApiError on a non-2xx answer. */
  async request<T>(method: string, path: string, options: RequestOptions): Promise<T> {
    const { status, text } = await this.exchange(method, path, options);
    if (status < 200 || status >= 300) throw apiError(status, method, path, text);
    return (text ? JSON.parse(text) : {}) as T;
  }

  /**
   * One request that answers whatever the server says (non-2xx included) as `{ status, body }`; the body goes out as
   * JSON exactly as given, so raw manifests keep every field. `path` may carry its query string.
   *
   * @example
   * const r = await client.send('PATCH', `${path}?fieldManager=me&force=true`, manifest, 'application/apply-patch+yaml');
   * if (r.status >= 300) throw new Error(statusMessage(r));
   */
  async send(method: string, path: string, body?: unknown, contentType?: string): Promise<RawResponse> {
    const { status, text } = await this.exchange(method, path, {
      verb: verbOf(method, contentType),
      body,
      contentType,
    });
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON (an HTML proxy error page, say): keep the text
    }
    return { status, body: parsed };
  }

  get<T extends KubeObject>(ref: ResourceRef, namespace: string | undefined, name: string): Promise<T> {
    return this.request<T>('GET', resourcePath(ref, namespace, name), { verb: 'get' });
  }

  /** Lists one page; `continue` pages through large collections. */
  list<T extends KubeObject>(
    ref: ResourceRef,
    namespace: string | undefined,
    query: Record<string, string | number | undefined> = {},
  ): Promise<KubeList<T>> {
    return this.request<KubeList<T>>('GET', resourcePath(ref, namespace), { verb: 'list', query });
  }

  create<T extends KubeObject>(ref: ResourceRef, object: T, fieldManager = 'llmisvc'): Promise<T> {
    return this.request<T>('POST', resourcePath(ref, object.metadata.namespace), {
      verb: 'create',
      body: object,
      query: { fieldManager },
    });
  }

  update<T extends KubeObject>(ref: ResourceRef, object: T, subresource?: string): Promise<T> {
    return this.request<T>(
      'PUT',
      resourcePath(ref, object.metadata.namespace, object.metadata.name, subresource),
      {
        verb: 'update',
        body: object,
        query: { fieldManager: 'llmisvc' },
      },
    );
  }

  /** Server-side apply (`application/apply-patch+yaml`, JSON is valid YAML). */
  apply<T extends KubeObject>(
    ref: ResourceRef,
    object: KubeObject,
    options: { fieldManager: string; force: boolean; subresource?: string; dryRun?: boolean },
  ): Promise<T> {
    return this.request<T>(
      'PATCH',
      resourcePath(ref, object.metadata.namespace, object.metadata.name, options.subresource),
      {
        verb: 'apply',
        body: object,
        contentType: 'application/apply-patch+yaml',
        query: {
          fieldManager: options.fieldManager,
          force: options.force ? 'true' : undefined,
          dryRun: options.dryRun ? 'All' : undefined,
        },
      },
    );
  }

  /** JSON merge patch, used for finalizers where list replacement is what we want. */
  mergePatch<T extends KubeObject>(
    ref: ResourceRef,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    subresource?: string,
  ): Promise<T> {
    return this.request<T>('PATCH', resourcePath(ref, namespace, name, subresource), {
      verb: 'patch',
      body: patch,
      contentType: 'application/merge-patch+json',
      query: { fieldManager: 'llmisvc' },
    });
  }

  /** JSON patch (RFC 6902), for test-and-set edits such as removing our finalizer only if still there. */
  jsonPatch<T extends KubeObject>(
    ref: ResourceRef,
    namespace: string | undefined,
    name: string,
    ops: unknown[],
  ): Promise<T> {
    return this.request<T>('PATCH', resourcePath(ref, namespace, name), {
      verb: 'patch',
      body: ops,
      contentType: 'application/json-patch+json',
      query: { fieldManager: 'llmisvc' },
    });
  }

  /** Deletes an object; `uid` makes it a precondition so that a re-created namesake survives. */
  async delete(
    ref: ResourceRef,
    namespace: string | undefined,
    name: string,
    options: { uid?: string; propagationPolicy?: 'Background' | 'Foreground' | 'Orphan' } = {},
  ): Promise<void> {
    await this.request('DELETE', resourcePath(ref, namespace, name), {
      verb: 'delete',
      body: {
        kind: 'DeleteOptions',
        apiVersion: 'v1',
        propagationPolicy: options.propagationPolicy ?? 'Background',
        ...(options.uid ? { preconditions: { uid: options.uid } } : {}),
      },
    });
  }

  /**
   * Opens a watch and calls `onEvent` for each event until the server ends the stream (resolves), the signal
   * aborts (resolves), the connection drops (rejects) or an ERROR event arrives (rejects with its status, 410 for
   * an expired resourceVersion). `idleTimeoutMs` turns a silent half-open connection into an error.
   */
  async watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    onEvent: (event: WatchEvent) => void,
    options: { signal?: AbortSignal; idleTimeoutMs?: number } = {},
  ): Promise<void> {
    await this.bucket.take();
    const url = this.url(path, { ...query, watch: 'true' });
    const headers = {
      ...(await this.authHeaders()),
      Accept: 'application/json',
      'User-Agent': this.userAgent,
    };
    let res: KubeResponse;
    try {
      res = await this.transport({
        method: 'GET',
        url,
        headers,
        body: undefined,
        signal: options.signal,
        watch: true,
      });
    } catch (error) {
      this.record('watch', path, 0);
      if (options.signal?.aborted) return;
      throw new LlmisvcError('LLMISVC_ERR_KUBE', `watch ${path}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    const status = res.statusCode ?? 0;
    this.record('watch', path, status);
    if (status !== 200) {
      const chunks: Buffer[] = [];
      for await (const chunk of res) chunks.push(chunk as Buffer);
      throw apiError(status, 'WATCH', path, Buffer.concat(chunks).toString('utf8'));
    }
    res.setEncoding('utf8');
    if (options.idleTimeoutMs) {
      res.socket?.setTimeout(options.idleTimeoutMs, () =>
        res.destroy(new Error(`no data for ${options.idleTimeoutMs} ms`)),
      );
    }
    let buffer = '';
    try {
      for await (const chunk of res) {
        buffer += chunk as string;
        let newline: number;
        while ((newline = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, newline).trim();
          buffer = buffer.slice(newline + 1);
          if (!line) continue;
          const event = JSON.parse(line) as WatchEvent;
          if (event.type === 'ERROR') {
            const s = event.object as unknown as KubeStatus;
            throw new KubeApiError(
              s.code ?? 500,
              s.reason ?? 'Unknown',
              `watch ${path}: ${s.message ?? 'error'}`,
            );
          }
          onEvent(event);
        }
      }
    } catch (error) {
      if (options.signal?.aborted) return;
      if (error instanceof KubeApiError) throw error;
      throw new LlmisvcError('LLMISVC_ERR_KUBE', `watch ${path}: ${(error as Error).message}`, {
        cause: error,
      });
    } finally {
      res.socket?.setTimeout(0);
      res.destroy();
    }
  }
}

export interface KubeList<T> {
  apiVersion: string;
  kind: string;
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: KubeObject;
}

interface KubeStatus {
  kind?: string;
  code?: number;
  reason?: string;
  message?: string;
  details?: { kind?: string; name?: string; group?: string };
}

/** The message of a Kubernetes Status answer of `send`, or the raw body. */
export function statusMessage(response: RawResponse): string {
  const body = response.body as { message?: string } | string | undefined;
  if (typeof body === 'object' && body?.message) return body.message;
  return typeof body === 'string' ? body.slice(0, 500) : JSON.stringify(body ?? '').slice(0, 500);
}

/** The verb a raw request is counted under. */
function verbOf(method: string, contentType: string | undefined): Verb {
  switch (method.toUpperCase()) {
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return contentType === 'application/apply-patch+yaml' ? 'apply' : 'patch';
    case 'DELETE':
      return 'delete';
    default:
      return 'get';
  }
}

function apiError(status: number, method: string, path: string, text: string): KubeApiError {
  let parsed: KubeStatus = {};
  try {
    parsed = JSON.parse(text) as KubeStatus;
  } catch {
    parsed = { message: text.slice(0, 500) };
  }
  return new KubeApiError(
    status,
    parsed.reason ?? String(status),
    `${method} ${path}: ${status} ${parsed.reason ?? ''}: ${parsed.message ?? (text.slice(0, 500) || '(empty body)')}`,
    parsed.details,
  );
}
