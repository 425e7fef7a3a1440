/**
 * @module gateway/inprocess-picker
 * The picker of a gateway whose EPP runs in the same process (`llmisvc up`: the builtin gateway and the EPP share one
 * Node process). Each request is a session of the EPP's (`epp/request-session`), called directly: the very session
 * the EPP's ext_proc handler drives, so the decision, the in-flight accounting, flow control and the metrics are the
 * same as behind Envoy, without the ext_proc messages in between. At idle, building and reading those messages in
 * process cost about as much as the decision itself (bench/results/peers/README.md).
 */
import type { RequestSession, RoutingAnswer } from '../epp/index.js';
import { pickHeaders, type EndpointPicker, type PickResult } from './extproc-client.js';

/** Opens a session for one request; `answer` hears the EPP's decision (`RunningEpp.openSession`). */
export type OpenSession = (answer: (answer: RoutingAnswer) => void) => RequestSession;

const NON_ASCII = /[^\p{ASCII}]/u;

/**
 * A header value as the gateway reads it from an ext_proc answer: the EPP sends its UTF-8 bytes, and Node writes a
 * header value's characters as bytes (Latin-1), so the bytes reach the model server as the EPP meant them.
 */
function asHeaderValue(value: string): string {
  return NON_ASCII.test(value) ? Buffer.from(value, 'utf8').toString('latin1') : value;
}

function headerRecord(headers: readonly [string, string][]): Record<string, string> {
  const record: Record<string, string> = {};
  for (const [name, value] of headers) record[name] = asHeaderValue(value);
  return record;
}

/** A picker over the EPP in this process; after `close` every pick fails at once. */
export function inProcessPicker(openSession: OpenSession): EndpointPicker {
  let closed = false;
  return {
    pick(request, options = {}) {
      if (closed) return Promise.reject(new Error('the endpoint picker in this process has stopped'));
      return new Promise<PickResult>((resolve, reject) => {
        let settled = false;
        let timer: NodeJS.Timeout | undefined;
        const onAbort = () => fail(new Error('the client went away'));
        let waiting = false;
        const settle = (): boolean => {
          if (settled) return false;
          settled = true;
          if (waiting) {
            clearTimeout(timer);
            options.signal?.removeEventListener('abort', onAbort);
          }
          return true;
        };
        const fail = (error: Error) => {
          if (!settle()) return;
          session.cancel();
          reject(error);
        };
        const done = (upstreamStatus?: number) => {
          if (upstreamStatus !== undefined) session.hearResponse(upstreamStatus, false);
          session.finish();
        };
        const session = openSession((answer) => {
          if (!settle()) return;
          if (answer.kind === 'refused') {
            resolve({
              endpoint: undefined,
              headers: {},
              removeHeaders: [],
              body: undefined,
              immediateResponse: {
                status: answer.status,
                headers: headerRecord(answer.headers),
                body: answer.body,
              },
              done,
            });
            return;
          }
          const headers = headerRecord(answer.headers);
          resolve({
            endpoint: answer.endpoint.address,
            headers,
            removeHeaders: answer.removeHeaders,
            body: request.body === undefined ? undefined : (answer.rewrittenBody ?? request.body),
            done,
          });
        });
        if (session.receive(pickHeaders(request), request.subsetHint && new Set(request.subsetHint)))
          session.route(request.body, request.json);
        // Most decisions are made by now, in this call; one that waits (flow control, a preparer) is bounded by the
        // timeout and given up when the client leaves.
        if (settled) return;
        const signal = options.signal;
        if (signal?.aborted) return fail(new Error('the client went away'));
        waiting = true;
        signal?.addEventListener('abort', onAbort, { once: true });
        if (options.timeoutMs) {
          const ms = options.timeoutMs;
          timer = setTimeout(
            () => fail(new Error(`no decision from the endpoint picker within ${ms} ms`)),
            ms,
          );
        }
      });
    },
    failing: () => false,
    close() {
      closed = true;
    },
  };
}
