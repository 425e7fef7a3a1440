/**
 * @module bench/open-loop
 * Open-loop HTTP/1.1 load from a process of its own: `startLoadGenerator` forks this module, which sends POSTs on a
 * fixed schedule whether or not earlier ones have finished and measures each one from the send call to the last
 * byte of its response.
 *
 * A pause of the load generator delays the sends and reads it falls on, so it is measured as latency of whatever
 * path is under load. Hence its own process (no other work, a small heap) that allocates next to nothing per
 * request: requests prebuilt once as bytes (a send is one `socket.write`), raw keep-alive sockets kept across runs
 * (one request in flight on each, no pipelining), reads into one static buffer (`onread`) parsed at the byte level.
 */
import { fork } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { forgetChild, killOnExit } from '../src/process/index.js';

export interface OpenLoopResult {
  /** Milliseconds from the send call to the last byte, of each request answered 200, in the order they finished. */
  latencies: Float64Array;
  sent: number;
  ok: number;
  /** Failed requests by kind: `HTTP <status>`, a socket error code, or what went wrong. */
  errors: Record<string, number>;
  /** How long sending took: the run's seconds plus the lateness of the timer tick that ended it. */
  sendSeconds: number;
}

export interface LoadGenerator {
  /** Sends `rate` requests per second to 127.0.0.1:`port` for `seconds`, then waits for their responses. One at a time. */
  run(port: number, rate: number, seconds: number): Promise<OpenLoopResult>;
  stop(): Promise<void>;
}

type Command =
  /** All requests back to back in `bytes`, request i ending at `ends[i]`. */
  | { kind: 'requests'; bytes: Buffer; ends: Uint32Array }
  | { kind: 'run'; port: number; rate: number; seconds: number };

const LOAD_GENERATOR_FLAG = '--load-generator';

/**
 * Forks the load generator. It POSTs the JSON `bodies` to `path` in turn, cycling through them across runs.
 * `nodeOptions` are the child's Node flags (e.g. `--trace-gc` to see its own pauses).
 */
export function startLoadGenerator(
  path: string,
  bodies: string[],
  nodeOptions: string[] = [],
): LoadGenerator {
  const child = fork(fileURLToPath(import.meta.url), [LOAD_GENERATOR_FLAG], {
    // V8's memory reducer takes a process that allocates as little as this one for idle and, 8 s after start,
    // shrinks its heap with full collections (two of 1.5–1.8 ms seen at 500 req/s): in the middle of a run.
    execArgv: ['--no-memory-reducer', ...nodeOptions],
    serialization: 'advanced', // a Float64Array of latencies crosses as bytes, not as JSON numbers
  });
  // Never outlives this process (the exit hook of process/); an IPC child also exits when its channel closes.
  killOnExit(child);
  let waiting: { resolve(result: OpenLoopResult): void; reject(error: Error): void } | undefined;
  let exitError: Error | undefined;
  child.on('message', (result: OpenLoopResult) => {
    const w = waiting;
    waiting = undefined;
    w?.resolve(result);
  });
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      forgetChild(child);
      exitError = new Error(`the load generator exited (${signal ?? code})`);
      waiting?.reject(exitError);
      resolve();
    }),
  );
  const command = (c: Command) => child.send(c);
  command(requestBytes(path, bodies));
  return {
    run: (port, rate, seconds) =>
      new Promise((resolve, reject) => {
        if (exitError) return reject(exitError);
        waiting = { resolve, reject };
        command({ kind: 'run', port, rate, seconds });
      }),
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * The requests, built here: in the child, 4096 bodies of 2 KB as strings would grow the heap that its garbage
 * collections go through (with a compaction a few seconds later, in the middle of a run, when V8 shrinks it again).
 */
function requestBytes(path: string, bodies: string[]): Command {
  const requests = bodies.map((body) =>
    Buffer.from(
      `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    ),
  );
  const ends = new Uint32Array(requests.length);
  let end = 0;
  for (let i = 0; i < requests.length; i++) {
    end += requests[i]!.length;
    ends[i] = end;
  }
  return { kind: 'requests', bytes: Buffer.concat(requests), ends };
}

/** A send that finds every connection busy and this many open fails: the target has stopped keeping up. */
const MAX_CONNECTIONS = 256;
/** How long a run waits, once sending ends, for the responses still outstanding before counting them as failed. */
const ANSWER_TIMEOUT_MS = 30_000;
const NO_FREE_CONNECTION = `no free connection (${MAX_CONNECTIONS} open)`;
const CLOSED_MID_RESPONSE = 'connection closed before the response ended';
const NO_RESPONSE = `no response within ${ANSWER_TIMEOUT_MS / 1000} s`;
const NO_LENGTH = 'response with neither content-length nor chunked';
const BYTES_AFTER_RESPONSE = 'bytes after the response';

/** Every socket reads into this: the parser is done with the bytes before the next read. */
const readBuffer = Buffer.alloc(65536);
/** The longest head or chunk-size line kept; the parser only looks at the start of a line. */
const LINE_BYTES = 256;
const LF = 10;
const CR = 13;

const CONTENT_LENGTH = Buffer.from('content-length:');
const TRANSFER_ENCODING = Buffer.from('transfer-encoding:');
const CONNECTION = Buffer.from('connection:');
const CHUNKED = Buffer.from('chunked');
const CLOSE = Buffer.from('close');

// What a connection's parser expects next.
const IDLE = 0;
const HEAD = 1;
const BODY = 2;
const CHUNK_SIZE = 3;
const CHUNK_DATA = 4;
const CHUNK_END = 5;
const TRAILERS = 6;

/** Counts of one run. */
class RunRecord {
  latencies: Float64Array;
  sent = 0;
  ok = 0;
  outstanding = 0;
  readonly errors: Record<string, number> = {};

  constructor(expectedRequests: number) {
    this.latencies = new Float64Array(Math.max(1024, Math.ceil(expectedRequests * 1.25)));
  }

  succeed(latencyMs: number): void {
    if (this.ok === this.latencies.length) {
      const grown = new Float64Array(this.latencies.length * 2);
      grown.set(this.latencies);
      this.latencies = grown;
    }
    this.latencies[this.ok++] = latencyMs;
  }

  fail(kind: string): void {
    this.errors[kind] = (this.errors[kind] ?? 0) + 1;
  }

  result(sendSeconds: number): OpenLoopResult {
    return {
      latencies: this.latencies.slice(0, this.ok),
      sent: this.sent,
      ok: this.ok,
      errors: this.errors,
      sendSeconds,
    };
  }
}

/** Whether `line` starts with `prefix`, ignoring ASCII case (`prefix` in lower case). */
function startsWithLower(line: Buffer, length: number, prefix: Buffer): boolean {
  if (length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if ((line[i]! | 0x20) !== prefix[i]) return false;
  return true;
}

/** Whether `word` occurs in `line` from `from` on, ignoring ASCII case (`word` in lower case). */
function includesLower(line: Buffer, from: number, length: number, word: Buffer): boolean {
  for (let start = from; start + word.length <= length; start++) {
    let i = 0;
    while (i < word.length && (line[start + i]! | 0x20) === word[i]) i++;
    if (i === word.length) return true;
  }
  return false;
}

/** The number in `line` from `from` on (after spaces), in `base` 10 or 16; stops at the first other byte. */
function parseNumber(line: Buffer, from: number, length: number, base: 10 | 16): number {
  let at = from;
  while (at < length && line[at] === 32) at++;
  let value = 0;
  for (; at < length; at++) {
    const c = line[at]! | 0x20;
    const digit = c >= 48 && c <= 57 ? c - 48 : base === 16 && c >= 97 && c <= 102 ? c - 87 : -1;
    if (digit === -1) break;
    value = value * base + digit;
  }
  return value;
}

/** One keep-alive connection with at most one request in flight, and the parser of its responses. */
class Connection {
  inFlight = false;
  private readonly socket: Socket;
  private readonly line = Buffer.alloc(LINE_BYTES);
  private lineLength = 0;
  private expect = IDLE;
  private statusLine = false;
  private status = 0;
  private contentLength = -1;
  private chunked = false;
  private closeAfterResponse = false;
  /** Body or chunk bytes still to come. */
  private remaining = 0;
  private sentAt = 0;
  private run: RunRecord | undefined;
  private errorCode: string | undefined;
  private retired = false;

  constructor(
    private readonly pool: ConnectionPool,
    port: number,
  ) {
    this.socket = connect({
      host: '127.0.0.1',
      port,
      noDelay: true,
      onread: { buffer: readBuffer, callback: (n) => this.receive(n) },
    });
    this.socket.on('error', (error: NodeJS.ErrnoException) => {
      this.errorCode = error.code ?? error.message;
    });
    this.socket.on('close', () => this.retire(this.errorCode));
  }

  send(request: Buffer, sentAt: number, run: RunRecord): void {
    this.run = run;
    this.sentAt = sentAt;
    this.inFlight = true;
    this.expect = HEAD;
    this.statusLine = true;
    this.contentLength = -1;
    this.chunked = false;
    this.closeAfterResponse = false;
    this.lineLength = 0;
    this.socket.write(request);
  }

  /** Takes the connection out of service and closes it; a request still on it fails as `failure`. */
  retire(failure = CLOSED_MID_RESPONSE): void {
    if (this.retired) return;
    this.retired = true;
    this.pool.remove(this);
    if (this.inFlight) this.finish().fail(failure);
    this.socket.destroy();
  }

  private receive(n: number): boolean {
    let at = 0;
    while (at < n && this.inFlight) at = this.parse(at, n);
    if (at < n && !this.retired) {
      this.run?.fail(BYTES_AFTER_RESPONSE);
      this.retire();
    }
    return true;
  }

  /** Consumes bytes of `readBuffer` from `at` (before `end`) and returns where it stopped. */
  private parse(at: number, end: number): number {
    if (this.expect === BODY || this.expect === CHUNK_DATA) {
      const take = Math.min(this.remaining, end - at);
      this.remaining -= take;
      if (this.remaining === 0) {
        if (this.expect === BODY) this.complete();
        else this.expect = CHUNK_END;
      }
      return at + take;
    }
    return this.readLine(at, end);
  }

  /** Copies bytes up to a line feed into `line` (a line may be split across reads) and handles a finished line. */
  private readLine(at: number, end: number): number {
    while (at < end && readBuffer[at] !== LF) {
      if (this.lineLength < LINE_BYTES) this.line[this.lineLength++] = readBuffer[at]!;
      at++;
    }
    if (at === end) return end;
    if (this.lineLength > 0 && this.line[this.lineLength - 1] === CR) this.lineLength--;
    this.handleLine();
    this.lineLength = 0;
    return at + 1;
  }

  private handleLine(): void {
    const { line, lineLength } = this;
    if (this.expect === HEAD) {
      if (this.statusLine) {
        this.statusLine = false;
        this.status = parseNumber(line, 'HTTP/1.1 '.length, lineLength, 10);
      } else if (lineLength === 0) this.endHead();
      else this.handleHeader();
    } else if (this.expect === CHUNK_SIZE) {
      this.remaining = parseNumber(line, 0, lineLength, 16);
      this.expect = this.remaining === 0 ? TRAILERS : CHUNK_DATA;
    } else if (this.expect === CHUNK_END) this.expect = CHUNK_SIZE;
    else if (this.expect === TRAILERS && lineLength === 0) this.complete();
  }

  private handleHeader(): void {
    const { line, lineLength } = this;
    if (startsWithLower(line, lineLength, CONTENT_LENGTH))
      this.contentLength = parseNumber(line, CONTENT_LENGTH.length, lineLength, 10);
    else if (startsWithLower(line, lineLength, TRANSFER_ENCODING))
      this.chunked = includesLower(line, TRANSFER_ENCODING.length, lineLength, CHUNKED);
    else if (startsWithLower(line, lineLength, CONNECTION))
      this.closeAfterResponse = includesLower(line, CONNECTION.length, lineLength, CLOSE);
  }

  private endHead(): void {
    if (this.chunked) this.expect = CHUNK_SIZE;
    else if (this.contentLength > 0) {
      this.remaining = this.contentLength;
      this.expect = BODY;
    } else if (this.contentLength === 0) this.complete();
    // HTTP/1.1 would have the body end when the connection closes; a server that does that ends keep-alive.
    else this.retire(NO_LENGTH);
  }

  private complete(): void {
    const latencyMs = performance.now() - this.sentAt;
    const run = this.finish();
    if (this.status === 200) run.succeed(latencyMs);
    else run.fail(`HTTP ${this.status}`);
    if (this.closeAfterResponse) this.retire();
    else this.pool.release(this);
  }

  /** Ends the request in flight and returns its run, to record how it went. */
  private finish(): RunRecord {
    const run = this.run!;
    this.inFlight = false;
    this.expect = IDLE;
    run.outstanding--;
    return run;
  }
}

/** The connections to one port, kept across runs. */
class ConnectionPool {
  private readonly free: Connection[] = [];
  private readonly open = new Set<Connection>();

  constructor(private readonly port: number) {}

  /** A free connection, else a new one unless `MAX_CONNECTIONS` are open. */
  take(): Connection | undefined {
    const free = this.free.pop();
    if (free || this.open.size >= MAX_CONNECTIONS) return free;
    const connection = new Connection(this, this.port);
    this.open.add(connection);
    return connection;
  }

  release(connection: Connection): void {
    this.free.push(connection);
  }

  remove(connection: Connection): void {
    this.open.delete(connection);
    const i = this.free.indexOf(connection);
    if (i !== -1) this.free.splice(i, 1);
  }

  /** Fails and closes the connections whose request is still unanswered, so no late answer lands in a later run. */
  abandonInFlight(kind: string): void {
    for (const connection of this.open) if (connection.inFlight) connection.retire(kind);
  }
}

/** The prebuilt requests, handed out in turn. */
class RequestCycle {
  private readonly requests: Buffer[] = [];
  private nextIndex = 0;

  constructor(bytes: Buffer, ends: Uint32Array) {
    let start = 0;
    for (const end of ends) {
      this.requests.push(bytes.subarray(start, end));
      start = end;
    }
  }

  next(): Buffer {
    const request = this.requests[this.nextIndex]!;
    this.nextIndex = (this.nextIndex + 1) % this.requests.length;
    return request;
  }
}

function sendOne(pool: ConnectionPool, request: Buffer, run: RunRecord): void {
  const sentAt = performance.now();
  run.sent++;
  const connection = pool.take();
  if (!connection) return run.fail(NO_FREE_CONNECTION);
  run.outstanding++;
  connection.send(request, sentAt, run);
}

/** Every millisecond, sends the requests due by then: `floor(elapsed × rate)` in all. */
function sendOnSchedule(
  pool: ConnectionPool,
  requests: RequestCycle,
  run: RunRecord,
  rate: number,
  seconds: number,
): Promise<number> {
  const started = performance.now();
  return new Promise<number>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = (performance.now() - started) / 1000;
      if (elapsed >= seconds) {
        clearInterval(timer);
        resolve(elapsed);
        return;
      }
      const due = Math.floor(elapsed * rate);
      while (run.sent < due) sendOne(pool, requests.next(), run);
    }, 1);
  });
}

function allAnswered(run: RunRecord, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (run.outstanding > 0 && performance.now() < deadline) return;
      clearInterval(timer);
      resolve();
    }, 1);
  });
}

async function runOpenLoop(
  pool: ConnectionPool,
  requests: RequestCycle,
  rate: number,
  seconds: number,
): Promise<OpenLoopResult> {
  const run = new RunRecord(rate * seconds);
  const sendSeconds = await sendOnSchedule(pool, requests, run, rate, seconds);
  await allAnswered(run, ANSWER_TIMEOUT_MS);
  pool.abandonInFlight(NO_RESPONSE);
  return run.result(sendSeconds);
}

/** Child mode: answers each `run` command with its result, one at a time. */
function serveLoadGenerator(): void {
  const reply = process.send?.bind(process);
  if (!reply) throw new Error(`${LOAD_GENERATOR_FLAG} needs the IPC channel of startLoadGenerator`);
  const pools = new Map<number, ConnectionPool>();
  let requests: RequestCycle | undefined;
  process.on('message', (message: Command) => {
    if (message.kind === 'requests') {
      requests = new RequestCycle(message.bytes, message.ends);
      return;
    }
    let pool = pools.get(message.port);
    if (!pool) pools.set(message.port, (pool = new ConnectionPool(message.port)));
    void runOpenLoop(pool, requests!, message.rate, message.seconds).then((result) => reply(result));
  });
  // The parent is gone (it died without stopping this process): the open sockets would keep this one running.
  process.once('disconnect', () => process.exit(0));
}

if (process.argv[2] === LOAD_GENERATOR_FLAG) serveLoadGenerator();
