/**
 * @module bench/load
 * The open-loop load generator: requests leave at Poisson arrival times whatever the server's state (a closed loop
 * would slow down with the server and hide its queue), each streamed over undici so time to first token and the
 * gaps between tokens are measured on the client, as a user would see them.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request, type Dispatcher } from 'undici';
import { poissonArrivals } from './random.js';
import { summarize, type Summary } from './stats.js';
import type { Workload, WorkloadRequest } from './workloads.js';

export type Outcome = 'ok' | 'error' | 'shed' | 'timeout';

/** What happened to one request. Times are milliseconds; `sentAt` counts from the start of the run. */
export interface RequestRecord {
  index: number;
  sentAt: number;
  outcome: Outcome;
  status: number | undefined;
  group: string;
  /** The serving endpoint, from the `x-inference-pod` response header. */
  pod: string | undefined;
  ttftMs: number | undefined;
  interTokenMs: number[];
  e2eMs: number;
  outputTokens: number;
  error: string | undefined;
}

export interface LoadProgress {
  elapsedMs: number;
  durationMs: number;
  sent: number;
  planned: number;
  done: number;
  inFlight: number;
  failed: number;
}

export interface LoadOptions {
  /** Base URL of an OpenAI-compatible server or gateway, such as `http://127.0.0.1:8080`. */
  url: string;
  workload: Workload;
  /** Mean arrival rate, requests per second. */
  qps: number;
  /** How long requests keep arriving, in milliseconds. */
  durationMs: number;
  /** Seed of the arrival times. */
  seed?: number;
  /** Stream responses (default) to measure TTFT and inter-token latency; without streaming TTFT is unknown. */
  stream?: boolean;
  /** A request still unanswered after this long is aborted and counted as a timeout (default 5 minutes). */
  timeoutMs?: number;
  /** Extra request headers. */
  headers?: Readonly<Record<string, string>>;
  /** An undici dispatcher to send through; by default one is created for the run and closed after it. */
  dispatcher?: Dispatcher;
  onProgress?: (progress: LoadProgress) => void;
  /** Stops sending new requests and aborts those in flight. */
  signal?: AbortSignal;
}

export interface LoadResult {
  workload: string;
  qps: number;
  durationMs: number;
  /** From the first request sent to the last response finished. */
  elapsedMs: number;
  counts: { sent: number; ok: number; errors: number; shed: number; timeouts: number };
  ttftMs: Summary;
  interTokenMs: Summary;
  e2eMs: Summary;
  outputTokens: number;
  /** Output tokens of successful requests per second of `elapsedMs`. */
  outputTokensPerSecond: number;
  /** Successful requests per second of `elapsedMs`. */
  requestsPerSecond: number;
  /** Requests served per endpoint (from `x-inference-pod`). */
  pods: Record<string, number>;
  records: RequestRecord[];
}

/**
 * Sends a workload at `qps` for `durationMs`, waits for the responses and summarizes them.
 *
 * @example
 * const result = await runLoad({ url, workload: createWorkload('shared-prefix', { model }), qps: 10, durationMs: 30_000 });
 * console.log(result.ttftMs.p90, result.outputTokensPerSecond);
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const base = baseUrl(options.url);
  const arrivals = poissonArrivals(options.seed ?? 0, options.qps, options.durationMs);
  const dispatcher = options.dispatcher ?? new Agent({ keepAliveTimeout: 30_000, connections: null });
  const records: RequestRecord[] = [];
  const inFlight = new Set<Promise<void>>();
  const abort = new AbortController();
  const onAbort = (): void => abort.abort();
  options.signal?.addEventListener('abort', onAbort);
  const start = performance.now();
  let failed = 0;
  const progress = (): void =>
    options.onProgress?.({
      elapsedMs: performance.now() - start,
      durationMs: options.durationMs,
      sent: records.length + inFlight.size,
      planned: arrivals.length,
      done: records.length,
      inFlight: inFlight.size,
      failed,
    });
  const ticker = options.onProgress ? setInterval(progress, 200) : undefined;

  try {
    for (let index = 0; index < arrivals.length && !abort.signal.aborted; index++) {
      const due = arrivals[index] as number;
      const wait = due - (performance.now() - start);
      if (wait > 1) await pause(wait, abort.signal);
      if (abort.signal.aborted) break;
      const next = options.workload.next();
      const sentAt = performance.now() - start;
      const pending = sendRequest(base, next, index, sentAt, options, dispatcher, abort.signal).then(
        (record) => {
          records.push(record);
          if (record.outcome !== 'ok') failed++;
          inFlight.delete(pending);
        },
      );
      inFlight.add(pending);
    }
    await Promise.all(inFlight);
  } finally {
    if (ticker) clearInterval(ticker);
    options.signal?.removeEventListener('abort', onAbort);
    if (!options.dispatcher) await dispatcher.close();
  }
  progress();
  const elapsedMs = Math.max(
    options.durationMs,
    records.reduce((end, r) => Math.max(end, r.sentAt + r.e2eMs), 0),
  );
  return summarizeRun(options.workload.name, options.qps, options.durationMs, elapsedMs, records);
}

/** The summary of a run's records (exported so results can be recomputed from saved records). */
export function summarizeRun(
  workload: string,
  qps: number,
  durationMs: number,
  elapsedMs: number,
  unordered: readonly RequestRecord[],
): LoadResult {
  const records = [...unordered].sort((a, b) => a.index - b.index);
  const ok = records.filter((r) => r.outcome === 'ok');
  const count = (outcome: Outcome): number => records.filter((r) => r.outcome === outcome).length;
  const outputTokens = ok.reduce((total, r) => total + r.outputTokens, 0);
  const pods: Record<string, number> = {};
  for (const r of ok) if (r.pod) pods[r.pod] = (pods[r.pod] ?? 0) + 1;
  const seconds = elapsedMs / 1000;
  return {
    workload,
    qps,
    durationMs,
    elapsedMs,
    counts: {
      sent: records.length,
      ok: ok.length,
      errors: count('error'),
      shed: count('shed'),
      timeouts: count('timeout'),
    },
    ttftMs: summarize(ok.flatMap((r) => (r.ttftMs === undefined ? [] : [r.ttftMs]))),
    interTokenMs: summarize(ok.flatMap((r) => r.interTokenMs)),
    e2eMs: summarize(ok.map((r) => r.e2eMs)),
    outputTokens,
    outputTokensPerSecond: seconds > 0 ? outputTokens / seconds : 0,
    requestsPerSecond: seconds > 0 ? ok.length / seconds : 0,
    pods,
    records,
  };
}

/** The server's base URL: a URL given with an OpenAI path (`.../v1/completions`) is cut before `/v1`. */
export function baseUrl(url: string): string {
  const parsed = new URL(url);
  const cut = parsed.pathname.indexOf('/v1');
  const path = cut >= 0 ? parsed.pathname.slice(0, cut) : parsed.pathname;
  return `${parsed.origin}${path.replace(/\/+$/, '')}`;
}

/**
 * Sends one request and records how it ended, never throwing: the one HTTP client of the load generators (`runLoad`
 * here, the chaos scenarios' fixed-rate loop in bench/). `sentAt` is only recorded.
 */
export async function sendRequest(
  base: string,
  next: WorkloadRequest,
  index: number,
  sentAt: number,
  options: Pick<LoadOptions, 'stream' | 'timeoutMs' | 'headers'>,
  dispatcher: Dispatcher,
  runSignal: AbortSignal,
): Promise<RequestRecord> {
  const stream = options.stream ?? true;
  const body = stream ? { ...next.body, stream: true, stream_options: { include_usage: true } } : next.body;
  const timeoutMs = options.timeoutMs ?? 300_000;
  const signal = AbortSignal.any([runSignal, AbortSignal.timeout(timeoutMs)]);
  const record: RequestRecord = {
    index,
    sentAt,
    outcome: 'error',
    status: undefined,
    group: next.group,
    pod: undefined,
    ttftMs: undefined,
    interTokenMs: [],
    e2eMs: 0,
    outputTokens: 0,
    error: undefined,
  };
  const t0 = performance.now();
  try {
    const response = await request(`${base}${next.path}`, {
      method: 'POST',
      dispatcher,
      signal,
      headers: { 'content-type': 'application/json', ...options.headers },
      body: JSON.stringify(body),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    record.status = response.statusCode;
    const pod = response.headers['x-inference-pod'];
    record.pod = typeof pod === 'string' ? pod : undefined;
    if (response.statusCode !== 200) {
      const text = await response.body.text();
      record.outcome = response.statusCode === 429 ? 'shed' : 'error';
      record.error = `HTTP ${response.statusCode}: ${text.slice(0, 200)}`;
    } else if (stream) {
      await readStream(response.body, t0, record);
    } else {
      const json = (await response.body.json()) as { usage?: { completion_tokens?: number } };
      record.outputTokens = json.usage?.completion_tokens ?? 0;
      record.outcome = 'ok';
    }
  } catch (error) {
    const timedOut = signal.aborted && !runSignal.aborted;
    record.outcome = timedOut ? 'timeout' : 'error';
    record.error = timedOut ? `no complete answer within ${timeoutMs} ms` : (error as Error).message;
  }
  record.e2eMs = performance.now() - t0;
  return record;
}

/** Reads an SSE response, timing each chunk that carries text. */
async function readStream(body: AsyncIterable<Buffer>, t0: number, record: RequestRecord): Promise<void> {
  const decoder = new TextDecoder();
  let buffer = '';
  let chunks = 0;
  let usageTokens: number | undefined;
  let last = 0;
  let done = false;
  for await (const data of body) {
    const now = performance.now();
    buffer += decoder.decode(data, { stream: true });
    let end: number;
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
      for (const line of event.split(/\r?\n/)) {
        if (!line.startsWith('data:')) continue;
        const payload = line.slice(5).trim();
        if (payload === '[DONE]') {
          done = true;
          continue;
        }
        const parsed = JSON.parse(payload) as {
          choices?: { text?: string; delta?: { content?: string | null } }[];
          usage?: { completion_tokens?: number } | null;
          error?: { message?: string };
        };
        if (parsed.error) throw new Error(`error event: ${parsed.error.message ?? payload}`);
        if (parsed.usage?.completion_tokens !== undefined) usageTokens = parsed.usage.completion_tokens;
        const choice = parsed.choices?.[0];
        const text = choice?.text ?? choice?.delta?.content ?? '';
        if (!text) continue;
        if (chunks === 0) record.ttftMs = now - t0;
        else record.interTokenMs.push(now - last);
        last = now;
        chunks++;
      }
    }
  }
  if (!done) throw new Error('the stream ended without data: [DONE]');
  record.outputTokens = usageTokens ?? chunks;
  record.outcome = 'ok';
}

/** Waits `ms`, or less when `signal` aborts: resolves either way, since the callers check the signal next. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return sleep(ms, undefined, { signal }).catch(() => undefined);
}
