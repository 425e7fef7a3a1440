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
 * Bounded against a hostile or broken server: the head may be at most 64 KiB and the body `maxBytes`; a response
 * that does not finish within the timeout fails. Any error closes the connection; the next GET opens a new one.
 * A kept-alive connection the server closed before answering (the idle-close race) is retried once on a fresh one.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { Http1ResponseParser, type ResponseEvents } from '../transport/index.js';

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

/** The answer being read: its status and the body's pieces so far, at most `maxBytes` in all. */
class Answer implements ResponseEvents {
  readonly parser: Http1ResponseParser = new Http1ResponseParser(this);
  status = 0;
  private readonly parts: Buffer[] = [];
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  onHead(status: number, headers: IncomingHttpHeaders): void {
    this.status = status;
    // A declared length over the bound is refused before its body is waited for.
    if (Number(headers['content-length']) > this.maxBytes)
      throw new MetricsHttpError(
        `response body of ${headers['content-length']} bytes exceeds ${this.maxBytes} bytes`,
      );
  }

  onBody(piece: Buffer): void {
    this.bytes += piece.length;
    if (this.bytes > this.maxBytes)
      throw new MetricsHttpError(`response body exceeds ${this.maxBytes} bytes`);
    this.parts.push(piece);
  }

  onComplete(): void {}

  body(): Buffer {
    return this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.bytes);
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

export class MetricsHttpError extends Error {}
/** No answer within the timeout: the server is slow or busy, not known to be gone. */
export class MetricsTimeoutError extends MetricsHttpError {}

export class MetricsConnection {
  private socket: Socket | undefined;
  private pending: Pending | undefined;
  private requests = 0;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly maxBytes = 8 * 1024 * 1024,
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
      `GET ${pending.path} HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\nAccept: text/plain\r\n\r\n`,
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
