/**
 * @module gateway/upstream-pool
 * The builtin gateway's HTTP/1.1 client to one model server: a pool of keep-alive connections, one request at a time
 * on each (no pipelining), the answer streamed to a handler as it arrives. It replaces undici's `Pool` on the hot path
 * (see `transport/http1-response.ts` for why and for how the response is checked).
 *
 * Bounded like the pool it replaces: at most `maxConnections` sockets (further requests wait in order), a deadline for
 * connecting, for the response head (from the request's dispatch) and for silence between body bytes, and an idle
 * keep-alive time no longer than the server's own `keep-alive: timeout` hint less a second, so the gateway does not
 * send on a connection the server is closing. A request is never retried: a model server may already have started
 * generating for it. A handler that returns false from `onData` pauses the socket until `resume()` (backpressure); an
 * aborted exchange's connection is destroyed, never reused.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { endpointSocketAddress } from '../epp/index.js';
import { FIELD_VALUE, Http1ResponseParser, TOKEN } from '../transport/index.js';

export interface UpstreamRequest {
  method: string;
  path: string;
  /** Lowercase names. `host`, `content-length` and `transfer-encoding` are the pool's to write. */
  headers: Record<string, string>;
  body: Buffer | null;
}

export interface UpstreamHandler {
  onHead(status: number, headers: IncomingHttpHeaders): void;
  /**
   * A piece of the body; false pauses reading until `resume()`. The piece is a view of the pool's read buffer,
   * valid only during the call: copy what must outlive it.
   */
  onData(chunk: Buffer): boolean;
  onEnd(): void;
  /** The exchange failed (or was aborted); called at most once, never after `onEnd`. */
  onError(error: Error): void;
}

export interface UpstreamExchange {
  resume(): void;
  abort(reason: Error): void;
}

export interface UpstreamPoolOptions {
  /** From dispatch to the complete response head. */
  headersTimeoutMs: number;
  /** Longest silence between two pieces of the body. */
  bodyTimeoutMs: number;
  keepAliveTimeoutMs?: number;
  connectTimeoutMs?: number;
  maxConnections?: number;
}

export class UpstreamError extends Error {}
export class UpstreamTimeoutError extends UpstreamError {}

/**
 * Every connection reads into this one buffer (`onread`): no Buffer and no pass through a Readable per read, which
 * were a good part of the cost of each streamed chunk. The event loop runs one read callback at a time and the
 * response is parsed inside it, so one buffer serves all connections; what outlives the callback is copied.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);
const REQUEST_TARGET = /^[\x21-\x7e\x80-\xff]+$/;
/** Written by the pool from the request itself, whatever the caller passed. */
const POOL_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection']);
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/** The request head, or an error naming what a caller's value would have smuggled into it. */
export function requestHead(request: UpstreamRequest, host: string): string {
  if (!TOKEN.test(request.method))
    throw new UpstreamError(`invalid request method ${JSON.stringify(request.method)}`);
  if (!REQUEST_TARGET.test(request.path))
    throw new UpstreamError(`invalid request path ${JSON.stringify(request.path.slice(0, 80))}`);
  let head = `${request.method} ${request.path} HTTP/1.1\r\nhost: ${host}\r\n`;
  for (const name in request.headers) {
    if (POOL_HEADERS.has(name)) continue;
    const value = request.headers[name]!;
    if (!TOKEN.test(name) || !FIELD_VALUE.test(value))
      throw new UpstreamError(`invalid request header ${JSON.stringify(name.slice(0, 80))}`);
    head += `${name}: ${value}\r\n`;
  }
  if (request.body) head += `content-length: ${request.body.length}\r\n`;
  else if (BODY_METHODS.has(request.method)) head += 'content-length: 0\r\n';
  return `${head}\r\n`;
}

class Exchange implements UpstreamExchange {
  connection: Connection | undefined;
  finished = false;

  constructor(
    readonly pool: UpstreamPool,
    readonly request: UpstreamRequest,
    readonly handler: UpstreamHandler,
  ) {}

  resume(): void {
    if (!this.finished) this.connection?.socket.resume();
  }

  abort(reason: Error): void {
    if (this.finished) return;
    if (this.connection) this.connection.fail(reason);
    else {
      this.pool.unqueue(this);
      this.fail(reason);
    }
  }

  fail(error: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.handler.onError(error);
  }
}

class Connection {
  readonly socket: Socket;
  private exchange: Exchange | undefined;
  private parser: Http1ResponseParser | undefined;
  private headTimer: NodeJS.Timeout | undefined;
  private connected = false;
  private gone = false;

  constructor(
    private readonly pool: UpstreamPool,
    host: string,
    port: number,
    private readonly options: Required<UpstreamPoolOptions>,
  ) {
    this.socket = connect({
      host,
      port,
      noDelay: true,
      onread: { buffer: READ_BUFFER, callback: (n: number) => this.onRead(n) },
    });
    this.socket.setTimeout(options.connectTimeoutMs);
    this.socket.once('connect', () => {
      this.connected = true;
      // Waiting for the head has its own deadline; the body's is set once the head is in.
      this.socket.setTimeout(0);
    });
    this.socket.on('timeout', () => this.onTimeout());
    this.socket.on('error', (error) => this.fail(error));
    this.socket.on('close', () => this.onClose());
  }

  start(exchange: Exchange, host: string): void {
    let head: string;
    try {
      head = requestHead(exchange.request, host);
    } catch (error) {
      this.pool.release(this, undefined);
      exchange.fail(error as Error);
      return;
    }
    this.exchange = exchange;
    exchange.connection = this;
    this.parser = new Http1ResponseParser(
      {
        // An exchange failed or aborted inside these callbacks hears nothing more of the bytes already read.
        onHead: (status, headers) => {
          if (this.exchange !== exchange) return;
          clearTimeout(this.headTimer);
          this.socket.setTimeout(this.options.bodyTimeoutMs);
          exchange.handler.onHead(status, headers);
        },
        onBody: (chunk) => {
          if (this.exchange === exchange && !exchange.handler.onData(chunk)) this.socket.pause();
        },
        onComplete: () => {},
      },
      { headRequest: exchange.request.method === 'HEAD' },
    );
    this.headTimer = setTimeout(
      () =>
        this.fail(new UpstreamTimeoutError(`no response headers within ${this.options.headersTimeoutMs} ms`)),
      this.options.headersTimeoutMs,
    );
    if (this.connected) this.socket.setTimeout(0);
    this.socket.resume();
    this.socket.cork();
    this.socket.write(head, 'latin1');
    if (exchange.request.body) this.socket.write(exchange.request.body);
    this.socket.uncork();
  }

  /** Waits in the pool for the next request, at most `ms`. */
  idle(ms: number): void {
    this.socket.resume();
    this.socket.setTimeout(ms);
  }

  /** Ends the exchange (if any) with `error` and the connection with it. */
  fail(error: Error): void {
    const exchange = this.exchange;
    this.exchange = undefined;
    clearTimeout(this.headTimer);
    this.socket.destroy();
    this.leave();
    exchange?.fail(error);
  }

  private leave(): void {
    if (this.gone) return;
    this.gone = true;
    this.pool.gone(this);
  }

  /** `n` bytes arrived in `READ_BUFFER`; false keeps the socket paused (the handler asked for backpressure). */
  private onRead(n: number): boolean {
    this.onData(READ_BUFFER.subarray(0, n));
    return !this.socket.isPaused();
  }

  private onData(data: Buffer): void {
    const exchange = this.exchange;
    // Bytes nobody asked for: the connection is out of step with the server.
    if (!exchange || !this.parser) return this.fail(new UpstreamError('the upstream sent bytes unasked'));
    const parser = this.parser;
    try {
      parser.execute(data);
    } catch (error) {
      return this.fail(error as Error);
    }
    if (parser.done && this.exchange === exchange) this.complete(exchange, parser);
  }

  private complete(exchange: Exchange, parser: Http1ResponseParser): void {
    this.exchange = undefined;
    this.parser = undefined;
    clearTimeout(this.headTimer);
    exchange.finished = true;
    if (parser.keepAlive && !this.socket.destroyed) this.pool.release(this, parser.keepAliveTimeoutS);
    else {
      this.socket.destroy();
      this.leave();
    }
    exchange.handler.onEnd();
  }

  private onTimeout(): void {
    if (!this.connected)
      this.fail(new UpstreamTimeoutError(`could not connect within ${this.options.connectTimeoutMs} ms`));
    else if (this.exchange)
      this.fail(new UpstreamTimeoutError(`no response data for ${this.options.bodyTimeoutMs} ms`));
    else this.fail(new UpstreamError('idle'));
  }

  private onClose(): void {
    const exchange = this.exchange;
    const parser = this.parser;
    if (exchange && parser) {
      // A body that runs to the end of the connection ends here; anything else was cut short.
      try {
        parser.finish();
      } catch (error) {
        return this.fail(error as Error);
      }
      return this.complete(exchange, parser);
    }
    this.fail(new UpstreamError('the upstream closed the connection'));
  }
}

export class UpstreamPool {
  private readonly idle: Connection[] = [];
  private readonly all = new Set<Connection>();
  private readonly busy = new Set<Connection>();
  private readonly queue: Exchange[] = [];
  private readonly options: Required<UpstreamPoolOptions>;
  private readonly host: string;
  private readonly port: number;
  private readonly hostHeader: string;
  private closed = false;

  /** `address` is `ip:port` (IPv6 in brackets). */
  constructor(address: string, options: UpstreamPoolOptions) {
    ({ host: this.host, port: this.port } = endpointSocketAddress(address));
    this.hostHeader = address;
    this.options = { keepAliveTimeoutMs: 30_000, connectTimeoutMs: 10_000, maxConnections: 256, ...options };
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): UpstreamExchange {
    const exchange = new Exchange(this, request, handler);
    if (this.closed) exchange.fail(new UpstreamError('the gateway is closing'));
    else {
      this.queue.push(exchange);
      this.drain();
    }
    return exchange;
  }

  get stats(): { connected: number; running: number; pending: number } {
    return { connected: this.all.size, running: this.busy.size, pending: this.queue.length };
  }

  destroy(): Promise<void> {
    this.closed = true;
    for (const exchange of this.queue.splice(0)) exchange.fail(new UpstreamError('the gateway is closing'));
    for (const connection of [...this.all]) connection.fail(new UpstreamError('the gateway is closing'));
    return Promise.resolve();
  }

  /** @internal An exchange aborted before it got a connection. */
  unqueue(exchange: Exchange): void {
    const at = this.queue.indexOf(exchange);
    if (at !== -1) this.queue.splice(at, 1);
  }

  /** @internal A connection finished its exchange and may carry another. */
  release(connection: Connection, serverKeepAliveS: number | undefined): void {
    this.busy.delete(connection);
    const next = this.queue.shift();
    if (next) {
      this.busy.add(connection);
      connection.start(next, this.hostHeader);
      return;
    }
    const ms =
      serverKeepAliveS === undefined
        ? this.options.keepAliveTimeoutMs
        : Math.min(this.options.keepAliveTimeoutMs, serverKeepAliveS * 1000 - 1000);
    if (ms <= 0 || this.closed) return connection.fail(new UpstreamError('not kept alive'));
    connection.idle(ms);
    this.idle.push(connection);
  }

  /** @internal A connection closed (whatever it was doing). */
  gone(connection: Connection): void {
    this.all.delete(connection);
    this.busy.delete(connection);
    const at = this.idle.indexOf(connection);
    if (at !== -1) this.idle.splice(at, 1);
    this.drain();
  }

  private drain(): void {
    while (this.queue.length > 0 && !this.closed) {
      let connection = this.idle.pop();
      if (!connection) {
        if (this.all.size >= this.options.maxConnections) return;
        connection = new Connection(this, this.host, this.port, this.options);
        this.all.add(connection);
      }
      this.busy.add(connection);
      connection.start(this.queue.shift()!, this.hostHeader);
    }
  }
}
