/**
 * @module transport/node-grpc-server
 * The same gRPC server as `grpc-server.ts` (same methods, codecs, message limit, `grpc-timeout`), on `node:http2`
 * instead of our HTTP/2: the EPP's `--transport node`, a way back to Node's nghttp2 should our transport misbehave.
 *
 * Node ≥ 22.10 only, and refused below: Envoy resets every ext_proc stream it is done with, and before 22.10 Node's
 * HTTP/2 counts those resets against nghttp2's fixed rapid-reset limit (a burst of 1,000, then 33 a second), so a
 * gateway sending more than ~33 requests a second has its connection ended with GOAWAY(ENHANCE_YOUR_CALM) after its
 * first thousand requests and every request in flight fails. 22.10 made the limit an option (`streamResetBurst`,
 * `streamResetRate`), which this sets above any gateway's request rate. Running with a warning instead would mean an
 * EPP that works in a quick try and fails under load, so it does not start.
 *
 * Limits, as far as node:http2 offers them: `maxConcurrentStreams` (advertised, excess streams refused), the header
 * list size, `maxSessionMemory` (nghttp2's buffered memory per connection, past which new streams are refused),
 * `idleTimeoutMs` (a connection with no activity is closed); PING and SETTINGS floods meet nghttp2's own
 * outbound-control-frame limit. Not offered: a preface timeout (the idle timeout covers a silent client), flood
 * windows per kind, and receive windows granted as data is consumed.
 */
import * as http2 from 'node:http2';
import { LlmisvcError } from '../errors/index.js';
import {
  GrpcStatus,
  grpcTimeoutMs,
  type GrpcCall,
  type GrpcServer,
  type GrpcServerOptions,
} from './grpc-server.js';
import { resolveHttp2Limits } from './http2-connection.js';
import { limitConnections, drainServer, listenAndReadPort } from './server-lifecycle.js';

/** The first Node with `streamResetBurst`/`streamResetRate` (see the module comment). */
export const NODE_TRANSPORT_MIN_VERSION = '22.10.0';

/** Whether `version` (`process.versions.node`) is at least `NODE_TRANSPORT_MIN_VERSION`. */
export function nodeTransportSupported(version: string): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > 22 || (major === 22 && minor >= 10);
}

export interface NodeGrpcServerOptions extends GrpcServerOptions {
  /** nghttp2's memory per connection in MB (`maxSessionMemory`, Node's default 10). */
  maxSessionMemoryMb?: number;
  /** The Node version to check (tests); default `process.versions.node`. */
  nodeVersion?: string;
}

/**
 * Resets allowed per second and in a burst. Node counts every RST_STREAM, Envoy's one per finished request among
 * them, so these sit above a gateway's request rate while still bounding a rapid-reset flood.
 */
const STREAM_RESET_RATE = 10_000;
const STREAM_RESET_BURST = 20_000;
const MAX_HEADER_LIST_BYTES = 64 << 10;

/** Throws an error users can act on when `version` is below `NODE_TRANSPORT_MIN_VERSION`. */
export function assertNodeTransportSupported(version = process.versions.node): void {
  if (!nodeTransportSupported(version)) {
    throw new LlmisvcError(
      'LLMISVC_ERR_CONFIG',
      `--transport node needs Node >= ${NODE_TRANSPORT_MIN_VERSION}; this is Node ${version}`,
      {
        hint:
          "Before 22.10 node:http2 ends a gateway's connection after ~1,000 ext_proc streams (Envoy resets each one it " +
          'is done with). Use the default --transport ours, or run the EPP with Node >= 22.10.',
      },
    );
  }
}

export function createNodeGrpcServer(options: NodeGrpcServerOptions): GrpcServer {
  assertNodeTransportSupported(options.nodeVersion);
  const limits = resolveHttp2Limits(options.http2Limits);
  const serverOptions = {
    settings: {
      maxConcurrentStreams: limits.maxConcurrentStreams,
      maxHeaderListSize: MAX_HEADER_LIST_BYTES,
      enablePush: false,
    },
    maxSessionMemory: options.maxSessionMemoryMb ?? 10,
    streamResetBurst: STREAM_RESET_BURST,
    streamResetRate: STREAM_RESET_RATE,
  };
  const server = options.tls
    ? http2.createSecureServer({
        ...serverOptions,
        key: options.tls.key,
        cert: options.tls.cert,
        allowHTTP1: false,
      })
    : http2.createServer(serverOptions);
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    session.on('error', (error) => options.onError?.(error));
    if (limits.idleTimeoutMs > 0) session.setTimeout(limits.idleTimeoutMs, () => session.close());
  });
  const openStreams = new Set<http2.ServerHttp2Stream>();
  server.on('stream', (stream, headers) => {
    openStreams.add(stream);
    stream.once('close', () => openStreams.delete(stream));
    serveStream(stream, headers, options);
  });
  limitConnections(server, options, options.onError);
  server.on('sessionError', (error) => options.onError?.(error));
  server.on('tlsClientError', (error: Error) => options.onError?.(error));
  return {
    listen(host, port) {
      return listenAndReadPort(server, host, port);
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        for (const session of sessions) session.destroy();
      });
    },
    drain(timeoutMs) {
      // session.close() sends GOAWAY and lets the open streams finish.
      return drainServer(
        server,
        timeoutMs,
        () => {
          for (const session of sessions) session.close();
        },
        () => {
          const dropped = openStreams.size;
          for (const session of sessions) session.destroy();
          return dropped;
        },
      );
    },
  };
}

const FRAME_HEADER_BYTES = 5;

function serveStream(
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  options: GrpcServerOptions,
): void {
  stream.on('error', (error) => options.onError?.(error));
  if (headers[':method'] !== 'POST') return refuse(stream, 405);
  if (!String(headers['content-type'] ?? '').startsWith('application/grpc')) return refuse(stream, 415);
  const path = String(headers[':path'] ?? '');
  const method = Object.hasOwn(options.methods, path) ? options.methods[path] : undefined;
  if (!method) return trailersOnly(stream, GrpcStatus.UNIMPLEMENTED, `unknown method ${path}`);
  const timeout = headers['grpc-timeout'];
  let deadlineMs = -1;
  if (typeof timeout === 'string') {
    deadlineMs = grpcTimeoutMs(timeout);
    if (Number.isNaN(deadlineMs))
      return trailersOnly(stream, GrpcStatus.INTERNAL, `malformed grpc-timeout: ${timeout}`);
  }

  let ended = false;
  let headersSent = false;
  let deadline: NodeJS.Timeout | undefined;
  // Trailers go out once the data is flushed: `waitForTrailers` holds the stream open for them.
  let trailers: Record<string, string> = { 'grpc-status': '0' };
  stream.on('wantTrailers', () => stream.sendTrailers(trailers));
  /** Ends the call with a status: in the trailers, or trailers-only if nothing was sent yet. */
  const finish = (code: number, message?: string) => {
    if (ended) return;
    ended = true;
    clearTimeout(deadline);
    if (stream.closed || stream.destroyed) return;
    trailers = statusFields(code, message);
    if (headersSent) stream.end();
    else {
      headersSent = true;
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc', ...trailers },
        { endStream: true },
      );
    }
  };
  const fail = (code: number, message: string) => {
    finish(code, message);
    handlers.abort();
  };
  const call: GrpcCall<unknown> = {
    send(message) {
      if (ended || stream.closed || stream.destroyed) return;
      if (!headersSent) {
        headersSent = true;
        stream.respond(
          { ':status': 200, 'content-type': 'application/grpc', 'grpc-accept-encoding': 'identity' },
          { waitForTrailers: true },
        );
      }
      const body = method.encode(message);
      const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
      out[0] = 0;
      out.writeUInt32BE(body.length, 1);
      out.set(body, FRAME_HEADER_BYTES);
      stream.write(out);
    },
    end() {
      finish(GrpcStatus.OK);
    },
    isOpen() {
      return !ended && !stream.closed && !stream.destroyed;
    },
  };

  const handlers = method.open(call);
  if (deadlineMs >= 0)
    deadline = setTimeout(
      () => fail(GrpcStatus.DEADLINE_EXCEEDED, `deadline of ${deadlineMs} ms exceeded`),
      deadlineMs,
    );

  let pending: Buffer = Buffer.alloc(0);
  stream.on('data', (chunk: Buffer) => {
    if (ended) return;
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= FRAME_HEADER_BYTES) {
      if (pending[0] !== 0)
        return fail(
          GrpcStatus.UNIMPLEMENTED,
          'compressed messages are not supported (grpc-accept-encoding: identity)',
        );
      const length = pending.readUInt32BE(1);
      if (length > options.maxMessageBytes)
        return fail(
          GrpcStatus.RESOURCE_EXHAUSTED,
          `message of ${length} bytes exceeds the limit of ${options.maxMessageBytes} bytes`,
        );
      if (pending.length < FRAME_HEADER_BYTES + length) break;
      const bytes = pending.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length);
      pending = pending.subarray(FRAME_HEADER_BYTES + length);
      let message: unknown;
      try {
        message = method.decode(bytes);
      } catch (error) {
        options.onError?.(error);
        return fail(GrpcStatus.INTERNAL, `cannot decode the request message: ${(error as Error).message}`);
      }
      try {
        handlers.message(message);
      } catch (error) {
        options.onError?.(error);
        return fail(GrpcStatus.INTERNAL, 'internal error handling the message');
      }
      if (ended) return;
    }
  });
  stream.on('end', () => {
    if (ended) return;
    if (pending.length > 0) return fail(GrpcStatus.INTERNAL, 'the stream ended inside a message');
    try {
      handlers.end();
    } catch (error) {
      options.onError?.(error);
      fail(GrpcStatus.INTERNAL, 'internal error ending the call');
    }
  });
  stream.on('close', () => {
    clearTimeout(deadline);
    if (ended) return;
    ended = true;
    handlers.abort();
  });
}

function statusFields(code: number, message?: string): Record<string, string> {
  return message === undefined
    ? { 'grpc-status': String(code) }
    : { 'grpc-status': String(code), 'grpc-message': encodeURIComponent(message) };
}

function refuse(stream: http2.ServerHttp2Stream, status: number): void {
  stream.respond({ ':status': status }, { endStream: true });
}

function trailersOnly(stream: http2.ServerHttp2Stream, code: number, message: string): void {
  stream.respond(
    {
      ':status': 200,
      'content-type': 'application/grpc',
      'grpc-status': String(code),
      'grpc-message': encodeURIComponent(message),
    },
    { endStream: true },
  );
}
