/**
 * @module epp/metrics-http
 * One keep-alive HTTP/1.1 connection that GETs a model server's `/metrics`, and nothing else. The scraper asks
 * endpoints up to every 50 ms while traffic flows, and the per-request cost of a general HTTP client dominated the
 * EPP's idle CPU: an undici `Client` GET of vLLM's ~1 KB exposition cost 230 µs of CPU on the bench machine, this
 * 45 µs (scratch measurement in the commit that introduced it). It writes one pre-encoded request and reads the answer
 * with the transport's strict incremental HTTP/1.1 parser, so a body that arrives over several reads (an exposition
 * under load is ~18 KB) is neither re-parsed nor re-copied per read; the body is handed on as bytes, never decoded
 * into a string as a whole.
 *
 * Bounded against a hostile or broken server: the head may be at most 64 KiB and the body `maxBytes` (default
 * `DEFAULT_MAX_METRICS_BODY_BYTES`), collected into one growing buffer however small the pieces it arrives in; a
 * response that does not finish within the timeout fails. Any error closes the connection; the next GET opens a new one.
 * A kept-alive connection the server closed before answering (the idle-close race) is retried once on a fresh one.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { hostPort, Http1ResponseParser, type ResponseEvents } from '../transport/index.js';

interface Pending {
  resolve(body: Buffer): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
  /** The answer being read. A retry reuses it: it is only made when no byte had arrived. */
  answer: Answer;
  /** True once any byte of the answer arrived (no retry after that). */
  answered: boolean;
  /** True when the request went out on a connection that had served an earlier one. */
  reused: boolean;
  path: string;
  timeoutMs: number;
  retried: boolean;
}

export class MetricsHttpError extends Error {}
/** No answer within the timeout: the server is slow or busy, not known to be gone. */
export class MetricsTimeoutError extends MetricsHttpError {}

/**
 * Largest metrics body (2 MiB). A vLLM exposition is about 20 KB under load, and with many LoRA adapters and
 * per-model histograms a few hundred KB: 2 MiB leaves several times that. Reading is linear in the body but is paid
 * on every scrape, up to 20 a second per endpoint: 6.7 MB of matching series from one pod cost the EPP 86 % of a core,
 * which this bound cuts to under a third. A larger body fails the scrape, so the endpoint is marked stale.
 */
export const DEFAULT_MAX_METRICS_BODY_BYTES = 2 * 1024 * 1024;

/** Pieces a body may come in before their average size must be `MIN_AVERAGE_PIECE_BYTES`. */
const FREE_PIECES = 4096;
const MIN_AVERAGE_PIECE_BYTES = 16;

/**
 * A body collected from pieces of any size into one buffer that doubles as it fills (at most `maxBytes`), so a server
 * sending its body one byte per TCP segment costs a few copies, not one retained `Buffer` per byte (8 M of them, 845 MB
 * of RSS). A body in one piece, the usual case, is kept as it came, without a copy.
 */
export class BodyBuffer {
  private buffer: Buffer | undefined;
  private length = 0;
  /** True while `buffer` is the caller's piece itself, not yet copied into one of ours. */
  private borrowed = false;
  private pieces = 0;

  constructor(private readonly maxBytes: number) {}

  append(piece: Buffer): void {
    const needed = this.length + piece.length;
    if (needed > this.maxBytes) throw new MetricsHttpError(`response body exceeds ${this.maxBytes} bytes`);
    // Each piece costs the parser a call however small it is: a body of 2 MiB in 1-byte chunks kept the EPP at a full
    // core. Real servers chunk by write buffer or at least by line (tens of bytes); a read splits a chunk at most once.
    if (++this.pieces > FREE_PIECES + needed / MIN_AVERAGE_PIECE_BYTES)
      throw new MetricsHttpError(
        `response body arrives in ${this.pieces} pieces of ${Math.round(needed / this.pieces)} bytes on average`,
      );
    if (this.buffer === undefined) {
      this.buffer = piece;
      this.length = piece.length;
      this.borrowed = true;
      return;
    }
    if (this.borrowed || needed > this.buffer.length) {
      const grown = Buffer.allocUnsafe(
        Math.min(this.maxBytes, Math.max(needed, 2 * this.buffer.length, 4096)),
      );
      this.buffer.copy(grown, 0, 0, this.length);
      this.buffer = grown;
      this.borrowed = false;
    }
    piece.copy(this.buffer, this.length);
    this.length = needed;
  }

  /** Bytes held, including room not yet filled. */
  get capacity(): number {
    return this.buffer?.length ?? 0;
  }

  bytes(): Buffer {
    return this.buffer === undefined ? Buffer.alloc(0) : this.buffer.subarray(0, this.length);
  }
}

/** The answer being read: its status and the body so far, at most `maxBytes`. */
class Answer implements ResponseEvents {
  readonly parser: Http1ResponseParser = new Http1ResponseParser(this);
  status = 0;
  private readonly collected: BodyBuffer;

  constructor(private readonly maxBytes: number) {
    this.collected = new BodyBuffer(maxBytes);
  }

  onHead(status: number, headers: IncomingHttpHeaders): void {
    this.status = status;
    // A declared length over the bound is refused before its body is waited for.
    if (Number(headers['content-length']) > this.maxBytes)
      throw new MetricsHttpError(
        `response body of ${headers['content-length']} bytes exceeds ${this.maxBytes} bytes`,
      );
  }

  onBody(piece: Buffer): void {
    this.collected.append(piece);
  }

  onComplete(): void {}

  body(): Buffer {
    return this.collected.bytes();
  }
}

/** An endpoint's `ip:port` (IPv6 in brackets) → what `net.connect` takes. */
export function endpointSocketAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  return {
    host: address.slice(0, colon).replace(/^\[(.*)\]$/, '$1'),
    port: Number(address.slice(colon + 1)),
  };
}

/**
 * The names an endpoint's address goes by in what others send about it (a subset hint, a KV-event topic): `ip:port`
 * as the pool spells it (IPv6 in brackets), the same without brackets, and the bare IP with and without them.
 * @example endpointNames('[fd00::5]:8000') // → { withPort: ['[fd00::5]:8000', 'fd00::5:8000'], host: ['fd00::5', '[fd00::5]'] }
 */
export function endpointNames(address: string): { withPort: string[]; host: string[] } {
  const { host, port } = endpointSocketAddress(address);
  if (!host.includes(':')) return { withPort: [address], host: [host] };
  return { withPort: [address, `${host}:${port}`], host: [host, `[${host}]`] };
}

export class MetricsConnection {
  private socket: Socket | undefined;
  private pending: Pending | undefined;
  private requests = 0;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly maxBytes = DEFAULT_MAX_METRICS_BODY_BYTES,
  ) {}

  /** `ip:port` (IPv6 in brackets) → a connection to it. */
  static forAddress(address: string, maxBytes?: number): MetricsConnection {
    const { host, port } = endpointSocketAddress(address);
    return new MetricsConnection(host, port, maxBytes);
  }

  /** GETs `path`; resolves with the body of a 200 answer, rejects on any other status, error or timeout. */
  get(path: string, timeoutMs: number): Promise<Buffer> {
    if (this.pending)
      return Promise.reject(new MetricsHttpError('a GET is already running on this connection'));
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(
        () => this.fail(new MetricsTimeoutError(`no answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.pending = {
        resolve,
        reject,
        timer,
        answer: new Answer(this.maxBytes),
        answered: false,
        reused: false,
        path,
        timeoutMs,
        retried: false,
      };
      this.send();
    });
  }

  /** Closes the connection; a running GET fails. */
  close(): void {
    this.fail(new MetricsHttpError('connection closed'));
  }

  private send(): void {
    const pending = this.pending!;
    if (!this.socket) this.open();
    pending.reused = this.requests > 0;
    this.requests++;
    this.socket!.write(
      // An IPv6 address in brackets (RFC 9110 §7.2), as a strict server requires.
      `GET ${pending.path} HTTP/1.1\r\nHost: ${hostPort(this.host, this.port)}\r\nAccept: text/plain\r\n\r\n`,
    );
  }

  private open(): void {
    const socket = connect({ host: this.host, port: this.port, noDelay: true });
    this.socket = socket;
    this.requests = 0;
    socket.on('data', (chunk: Buffer) => this.onData(socket, chunk));
    socket.on('error', (error) => this.onGone(socket, error));
    socket.on('close', () => this.onGone(socket, undefined));
    socket.on('end', () => socket.destroy());
  }

  private onData(socket: Socket, chunk: Buffer): void {
    if (socket !== this.socket) return;
    const pending = this.pending;
    if (!pending) {
      // Bytes nobody asked for: the connection is out of step; drop it.
      this.drop();
      return;
    }
    pending.answered = true;
    try {
      pending.answer.parser.execute(chunk);
    } catch (error) {
      this.fail(error as Error);
      return;
    }
    if (pending.answer.parser.done) this.settleWith(pending);
  }

  /** The whole answer is in: settles the GET, and keeps the connection only if the answer allows it. */
  private settleWith(pending: Pending): void {
    const answer = pending.answer;
    if (!answer.parser.keepAlive) this.drop();
    this.settle();
    if (answer.status !== 200) pending.reject(new MetricsHttpError(`HTTP ${answer.status}`));
    else pending.resolve(answer.body());
  }

  /** The connection failed (`error`) or closed (undefined). */
  private onGone(socket: Socket, error: Error | undefined): void {
    if (socket !== this.socket) return;
    this.socket = undefined;
    socket.destroy();
    const pending = this.pending;
    if (!pending) return;
    // The server closed a kept-alive connection as the request went out: once more on a fresh one.
    if (pending.reused && !pending.answered && !pending.retried) {
      pending.retried = true;
      this.send();
      return;
    }
    // An answer whose body runs to the end of the connection ends with a clean close; any other was cut short.
    if (!error && pending.answered) {
      try {
        pending.answer.parser.finish();
      } catch (finishError) {
        this.fail(finishError as Error);
        return;
      }
      this.settleWith(pending);
      return;
    }
    this.fail(error ?? new MetricsHttpError('connection closed by the server'));
  }

  private drop(): void {
    const socket = this.socket;
    this.socket = undefined;
    socket?.destroy();
  }

  private settle(): void {
    if (this.pending) clearTimeout(this.pending.timer);
    this.pending = undefined;
  }

  private fail(error: Error): void {
    const pending = this.pending;
    this.drop();
    this.settle();
    pending?.reject(error);
  }
}
