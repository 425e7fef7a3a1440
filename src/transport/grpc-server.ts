/**
 * @module transport/grpc-server
 * A small gRPC server for the EPP's two services: the ext_proc `Process` stream, which every request through the
 * gateway opens, and `grpc.health.v1.Health`. It runs on the HTTP/2 connection of `http2-connection.ts`, which says
 * why not `node:http2`; `@grpc/grpc-js`'s server sits on `node:http2` and costs more CPU per stream still.
 * The wire format is small: a POST to `/package.Service/Method` with `content-type: application/grpc`, messages
 * framed as 1 flag byte + 4 length bytes + protobuf, and the status in trailers (`grpc-status`, `grpc-message`).
 * This speaks that for any method shape: each stream gets handlers for its messages, its half-close and its abort.
 * Compression is not offered (`grpc-accept-encoding: identity`), so conforming clients never compress.
 */
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { encodeHeaderBlock } from './hpack.js';
import { limitConnections, drainServer, listenAndReadPort } from './server-lifecycle.js';
import {
  Http2Connection,
  IGNORE_STREAM,
  HeaderBlockBudget,
  resolveHttp2Limits,
  type Http2Limits,
  type RequestHead,
  type ServerStream,
  type StreamHandler,
} from './http2-connection.js';

/** A PEM certificate chain and its private key, as `node:tls` takes them. */
export interface TlsCredentials {
  cert: Buffer;
  key: Buffer;
}

/** gRPC status codes used here. */
export const GrpcStatus = {
  OK: 0,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
} as const;

/** The server side of one call, as a method handler sees it. */
export interface GrpcCall<Out> {
  /** Sends one message (ignored once the call is over). */
  send(message: Out): void;
  /** Ends the call with OK. */
  end(): void;
  /** False once the call ended, either side. */
  isOpen(): boolean;
}

/** What a method does with one call's events. */
export interface GrpcCallHandlers<In> {
  message(message: In): void;
  /** The client half-closed: it sends no more messages. */
  end(): void;
  /** The call ended without a clean half-close (reset, connection lost, protocol error, server shutdown). */
  abort(): void;
}

export interface GrpcMethod<In, Out> {
  decode(bytes: Uint8Array): In;
  encode(message: Out): Uint8Array;
  open(call: GrpcCall<Out>): GrpcCallHandlers<In>;
}

export interface GrpcServerOptions {
  /** Handlers by path, e.g. `/grpc.health.v1.Health/Check`. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each method has its own message types
  methods: Record<string, GrpcMethod<any, any>>;
  /** Largest message accepted; a larger one ends the call with RESOURCE_EXHAUSTED. */
  maxMessageBytes: number;
  /** Serve TLS (ALPN h2) with this key pair. */
  tls?: TlsCredentials | undefined;
  /** Called with errors the server swallows (bad frames, undecodable messages, handler exceptions). */
  onError?: (error: unknown) => void;
  /** Each connection's HTTP/2 limits, over `DEFAULT_HTTP2_LIMITS`. */
  http2Limits?: Partial<Http2Limits> | undefined;
  /** Connections open at once, in all and from one client address (`ConnectionLimits`). */
  maxConnections?: number | undefined;
  maxConnectionsPerAddress?: number | undefined;
  /** Bytes of unfinished multi-frame header blocks all connections may hold together (default 16 MiB). */
  headerBlockBudgetBytes?: number | undefined;
}

export const DEFAULT_HEADER_BLOCK_BUDGET_BYTES = 16 << 20;

export interface GrpcServer {
  listen(host: string, port: number): Promise<number>;
  /** Stops listening and drops every open call (their handlers see `abort`). */
  close(): Promise<void>;
  /**
   * A graceful shutdown: stops listening, sends every connection GOAWAY and lets the open calls finish; after
   * `timeoutMs` the calls still open are dropped as by `close`. Resolves with how many were dropped.
   */
  drain(timeoutMs: number): Promise<{ dropped: number }>;
}

const GRPC_CONTENT_TYPE = 'application/grpc';
const FRAME_HEADER_BYTES = 5;

/** The blocks every successful call sends: encoded once. */
const RESPONSE_HEADERS = encodeHeaderBlock([
  [':status', '200'],
  ['content-type', GRPC_CONTENT_TYPE],
  ['grpc-accept-encoding', 'identity'],
]);
const OK_TRAILERS = encodeHeaderBlock([['grpc-status', '0']]);

export function createGrpcServer(options: GrpcServerOptions): GrpcServer {
  const connections = new Set<Http2Connection>();
  const connectionOptions = {
    onStream: (stream: ServerStream, head: RequestHead) => openCall(stream, head, options),
    onError: options.onError,
    // Checked once here, so a bad limit fails at startup rather than on the first connection.
    limits: resolveHttp2Limits(options.http2Limits),
    headerBlockBudget: new HeaderBlockBudget(
      options.headerBlockBudgetBytes ?? DEFAULT_HEADER_BLOCK_BUDGET_BYTES,
    ),
  };
  const serve = (socket: Socket): void => {
    // Refused at a connection limit.
    if (socket.destroyed) return;
    socket.setNoDelay(true);
    const connection = new Http2Connection(socket, connectionOptions);
    connections.add(connection);
    socket.once('close', () => connections.delete(connection));
  };
  const server: Server = options.tls
    ? createTlsServer({ key: options.tls.key, cert: options.tls.cert, ALPNProtocols: ['h2'] }, serve)
    : createTcpServer(serve);
  // A failed TLS handshake concerns that client only.
  server.on('tlsClientError', (error: Error) => options.onError?.(error));
  limitConnections(server, options, options.onError);
  return {
    listen(host, port) {
      return listenAndReadPort(server, host, port);
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        for (const connection of connections) connection.close();
      });
    },
    drain(timeoutMs) {
      // Each connection closes itself once its streams are done.
      return drainServer(
        server,
        timeoutMs,
        () => {
          for (const connection of connections) connection.goAwayGracefully();
        },
        () => {
          let dropped = 0;
          for (const connection of connections) {
            dropped += connection.openStreams;
            connection.close();
          }
          return dropped;
        },
      );
    },
  };
}

function openCall(stream: ServerStream, head: RequestHead, options: GrpcServerOptions): StreamHandler {
  if (head.method !== 'POST') return refuse(stream, '405');
  if (!head.contentType.startsWith(GRPC_CONTENT_TYPE)) return refuse(stream, '415');
  const method = Object.hasOwn(options.methods, head.path) ? options.methods[head.path] : undefined;
  if (!method) {
    stream.sendHeaders(trailersOnly(GrpcStatus.UNIMPLEMENTED, `unknown method ${head.path}`), true);
    return IGNORE_STREAM;
  }
  let deadlineMs = -1;
  if (head.grpcTimeout !== '') {
    deadlineMs = grpcTimeoutMs(head.grpcTimeout);
    if (Number.isNaN(deadlineMs)) {
      // As grpc-go answers it.
      stream.sendHeaders(
        trailersOnly(GrpcStatus.INTERNAL, `malformed grpc-timeout: ${head.grpcTimeout}`),
        true,
      );
      return IGNORE_STREAM;
    }
  }
  const call = new Call(stream, method, options);
  call.handlers = method.open(call);
  if (deadlineMs >= 0) call.setDeadline(deadlineMs);
  return call;
}

const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };
/** Longer than a timer can wait (2^31-1 ms, 24.8 days): no deadline then. */
const MAX_TIMER_MS = 0x7fffffff;

/**
 * A `grpc-timeout` value in ms (at most 8 digits and a unit, per the gRPC HTTP/2 protocol), -1 when it is longer
 * than a timer can wait, NaN when malformed.
 */
export function grpcTimeoutMs(value: string): number {
  const match = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!match) return NaN;
  const ms = Math.ceil(Number(match[1]) * TIMEOUT_UNIT_MS[match[2]!]!);
  return ms > MAX_TIMER_MS ? -1 : ms;
}

function refuse(stream: ServerStream, status: string): StreamHandler {
  stream.sendHeaders(encodeHeaderBlock([[':status', status]]), true);
  return IGNORE_STREAM;
}

/**
 * One call: the `GrpcCall` its method sees, and the stream's events, which it turns into messages. A class, so a
 * call is one object whose methods are shared, rather than a set of closures per call.
 */
class Call implements GrpcCall<unknown>, StreamHandler {
  handlers: GrpcCallHandlers<unknown> = IGNORE_HANDLERS;
  /** The call is over, either side: nothing more is sent or delivered. */
  private ended = false;
  private headersSent = false;
  /** Bytes of a message not complete yet, kept as chunks so a large message costs one copy, not one per chunk. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private needed = 0;
  /** The client's deadline (grpc-timeout), cleared when the call ends. */
  private deadline: NodeJS.Timeout | null = null;

  constructor(
    private readonly stream: ServerStream,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each method has its own message types
    private readonly method: GrpcMethod<any, any>,
    private readonly options: GrpcServerOptions,
  ) {}

  // ---- GrpcCall --------------------------------------------------------------------------------------------------

  send(message: unknown): void {
    if (!this.isOpen()) return;
    if (!this.headersSent) {
      this.headersSent = true;
      this.stream.sendHeaders(RESPONSE_HEADERS, false);
    }
    this.stream.sendData(frame(this.method.encode(message)));
  }

  end(): void {
    this.finish(GrpcStatus.OK);
  }

  isOpen(): boolean {
    return !this.ended && this.stream.isOpen();
  }

  // ---- StreamHandler ---------------------------------------------------------------------------------------------

  onData(chunk: Buffer): void {
    if (this.ended) return;
    let data = chunk;
    if (this.pendingBytes > 0) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      if (this.pendingBytes < this.needed) return;
      data = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
    }
    while (data.length >= FRAME_HEADER_BYTES) {
      if (data[0] !== 0) {
        this.fail(
          GrpcStatus.UNIMPLEMENTED,
          'compressed messages are not supported (grpc-accept-encoding: identity)',
        );
        return;
      }
      const length = data.readUInt32BE(1);
      if (length > this.options.maxMessageBytes) {
        this.fail(
          GrpcStatus.RESOURCE_EXHAUSTED,
          `message of ${length} bytes exceeds the limit of ${this.options.maxMessageBytes} bytes`,
        );
        return;
      }
      const end = FRAME_HEADER_BYTES + length;
      if (data.length < end) break;
      if (!this.deliver(data.subarray(FRAME_HEADER_BYTES, end)) || this.ended) return;
      data = data.subarray(end);
    }
    if (data.length > 0) {
      this.pending = [data];
      this.pendingBytes = data.length;
      this.needed =
        data.length >= FRAME_HEADER_BYTES ? FRAME_HEADER_BYTES + data.readUInt32BE(1) : FRAME_HEADER_BYTES;
    }
  }

  onEnd(): void {
    if (this.ended) return;
    if (this.pendingBytes > 0) {
      this.fail(GrpcStatus.INTERNAL, 'the stream ended inside a message');
      return;
    }
    try {
      this.handlers.end();
    } catch (error) {
      this.options.onError?.(error);
      this.finish(GrpcStatus.INTERNAL, 'internal error ending the call');
    }
  }

  onAbort(): void {
    if (this.ended) return;
    this.ended = true;
    this.clearDeadline();
    this.handlers.abort();
  }

  // ---- internals -------------------------------------------------------------------------------------------------

  /** Past `ms`, the call ends with DEADLINE_EXCEEDED and its handlers see `abort`. */
  setDeadline(ms: number): void {
    if (this.ended) return;
    this.deadline = setTimeout(() => {
      this.deadline = null;
      this.fail(GrpcStatus.DEADLINE_EXCEEDED, `deadline of ${ms} ms exceeded`);
    }, ms);
  }

  private clearDeadline(): void {
    if (this.deadline !== null) {
      clearTimeout(this.deadline);
      this.deadline = null;
    }
  }

  private deliver(bytes: Buffer): boolean {
    let message: unknown;
    try {
      message = this.method.decode(bytes);
    } catch (error) {
      this.options.onError?.(error);
      this.fail(GrpcStatus.INTERNAL, `cannot decode the request message: ${(error as Error).message}`);
      return false;
    }
    try {
      this.handlers.message(message);
    } catch (error) {
      this.options.onError?.(error);
      this.fail(GrpcStatus.INTERNAL, 'internal error handling the message');
      return false;
    }
    return true;
  }

  /** Ends the call with a status: in the trailers, or trailers-only if nothing was sent yet. */
  private finish(code: number, message?: string): void {
    if (this.ended) return;
    this.ended = true;
    this.clearDeadline();
    if (!this.headersSent) this.stream.sendHeaders(trailersOnly(code, message), true);
    else this.stream.sendTrailers(code === GrpcStatus.OK ? OK_TRAILERS : statusTrailers(code, message));
  }

  private fail(code: number, message: string): void {
    this.finish(code, message);
    this.handlers.abort();
  }
}

const IGNORE_HANDLERS: GrpcCallHandlers<unknown> = {
  message: () => undefined,
  end: () => undefined,
  abort: () => undefined,
};

/** A whole call answered in one HEADERS frame (gRPC's "Trailers-Only" response). */
function trailersOnly(code: number, message?: string): Buffer {
  return encodeHeaderBlock([
    [':status', '200'],
    ['content-type', GRPC_CONTENT_TYPE],
    ...statusFields(code, message),
  ]);
}

function statusTrailers(code: number, message?: string): Buffer {
  return encodeHeaderBlock(statusFields(code, message));
}

function statusFields(code: number, message?: string): [string, string][] {
  return message === undefined
    ? [['grpc-status', String(code)]]
    : [
        ['grpc-status', String(code)],
        ['grpc-message', encodeURIComponent(message)],
      ];
}

/** One length-prefixed, uncompressed gRPC message. */
function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, FRAME_HEADER_BYTES);
  return out;
}
