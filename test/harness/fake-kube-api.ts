/**
 * @module test/harness/fake-kube-api
 * A scripted Kubernetes API for unit tests of `KubeClient` and the informers: `transport` is a `KubeTransport`; each
 * request waits in a queue until the test takes it (`next()`) and answers it: JSON, a watch stream it writes events
 * into, or a failed connection. Nothing is timed: the test and the code under test take turns.
 */
import { PassThrough } from 'node:stream';
import type { KubeObject, KubeResponse, KubeTransport, WatchEvent } from '../../src/kube/index.js';

export interface PendingRequest {
  method: string;
  url: URL;
  watch: boolean;
  /** A query parameter of the request ('' when absent). */
  param(name: string): string;
  /** Answers with `status` and `body` as JSON (and response `headers`, lower-case names). */
  json(status: number, body: unknown, headers?: Record<string, string>): void;
  /**
   * Answers 200 and returns the watch stream; `send` writes one event, `end` closes it cleanly, `drop` breaks it
   * (discarding what the client has not read yet, as a destroyed socket does).
   */
  stream(): FakeWatch;
  /** Fails the connection (no answer). */
  fail(error?: Error): void;
}

export interface FakeWatch {
  send(type: WatchEvent['type'], object: KubeObject): void;
  /** An ERROR event with a Status of `code` (410 for an expired resourceVersion). */
  error(code: number, reason: string): void;
  /** Bytes as they come, for framing tests (events split across chunks). */
  raw(text: string): void;
  end(): void;
  drop(): void;
}

function response(status: number, text: string, headers: Record<string, string> = {}): KubeResponse {
  const body = new PassThrough() as PassThrough & { statusCode: number; headers: Record<string, string> };
  body.statusCode = status;
  body.headers = headers;
  body.end(text);
  return body;
}

export class FakeKubeApi {
  private readonly queued: PendingRequest[] = [];
  private readonly takers: ((request: PendingRequest) => void)[] = [];
  /** Every request seen, in order. */
  readonly seen: PendingRequest[] = [];

  readonly transport: KubeTransport = (request) =>
    new Promise<KubeResponse>((resolve, reject) => {
      let answered = false;
      const once = (fn: () => void) => {
        if (answered) throw new Error(`${request.method} ${request.url.href} was answered twice`);
        answered = true;
        fn();
      };
      const abortError = () => Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
      request.signal?.addEventListener('abort', () => {
        if (!answered) once(() => reject(abortError()));
      });
      const pending: PendingRequest = {
        method: request.method,
        url: request.url,
        watch: request.watch,
        param: (name) => request.url.searchParams.get(name) ?? '',
        json: (status, body, headers) => once(() => resolve(response(status, JSON.stringify(body), headers))),
        fail: (error = new Error('socket hang up')) => once(() => reject(error)),
        stream: () => {
          const body = new PassThrough() as PassThrough & { statusCode: number };
          body.statusCode = 200;
          request.signal?.addEventListener('abort', () => body.destroy(abortError()));
          once(() => resolve(body));
          return {
            send: (type, object) => body.write(JSON.stringify({ type, object }) + '\n'),
            error: (code, reason) =>
              body.write(
                JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code, reason, message: reason } }) +
                  '\n',
              ),
            raw: (text) => body.write(text),
            end: () => body.end(),
            drop: () => body.destroy(new Error('connection reset')),
          };
        },
      };
      this.seen.push(pending);
      const taker = this.takers.shift();
      if (taker) taker(pending);
      else this.queued.push(pending);
    });

  /** The next request the client sends (waits for it). */
  next(): Promise<PendingRequest> {
    const queued = this.queued.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => this.takers.push(resolve));
  }
}

/** A namespaced test object at `resourceVersion`. */
export function configMap(
  name: string,
  resourceVersion: string,
  data: Record<string, string> = {},
): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace: 'ns', resourceVersion },
    data,
  };
}

/** A list answer of `items` at `resourceVersion`, with `continue` when more pages follow. */
export function listOf(items: KubeObject[], resourceVersion: string, cont?: string): unknown {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMapList',
    metadata: { resourceVersion, ...(cont ? { continue: cont } : {}) },
    items,
  };
}
