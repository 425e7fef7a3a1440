/**
 * @module epp/metrics-http
 * One keep-alive HTTP/1.1 connection that GETs a model server's `/metrics`, and nothing else. The scraper asks every
 * endpoint every 50 ms while traffic flows (160 scrapes/s for 8 endpoints), and the per-request cost of a general
 * HTTP client dominated the EPP's idle CPU: an undici `Client` GET of vLLM's ~1 KB exposition cost 230 µs of CPU
 * on the bench machine, this 45 µs (scratch measurement in the commit that introduced it). It writes one
 * pre-encoded request and parses only what a GET answer needs: the status line, `content-length` or chunked
 * transfer encoding, and `connection: close`.
 *
 * Bounded against a hostile or broken server: the head may be at most 64 KiB and the body `maxBytes`; a response
 * that does not finish within the timeout fails. Any error closes the connection; the next GET opens a new one.
 * A kept-alive connection the server closed before answering (the idle-close race) is retried once on a fresh one.
 */
import { connect, type Socket } from 'node:net';

const MAX_HEAD_BYTES = 64 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');

interface Pending {
  resolve(body: string): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
  /** True once any byte of the answer arrived (no retry after that). */
  answered: boolean;
  /** True when the request went out on a connection that had served an earlier one. */
  reused: boolean;
  path: string;
  timeoutMs: number;
  retried: boolean;
}

/** A parsed response, or undefined while more bytes are needed. */
interface Parsed {
  status: number;
  body: Buffer;
  close: boolean;
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
  private buffered: Buffer = Buffer.alloc(0);
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
  get(path: string, timeoutMs: number): Promise<string> {
    if (this.pending)
      return Promise.reject(new MetricsHttpError('a GET is already running on this connection'));
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => this.fail(new MetricsTimeoutError(`no answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.pending = {
        resolve,
        reject,
        timer,
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
    this.buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => this.onData(socket, chunk));
    socket.on('error', (error) => this.onGone(socket, error));
    socket.on('close', () => this.onGone(socket, new MetricsHttpError('connection closed by the server')));
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
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    let parsed: Parsed | undefined;
    try {
      parsed = parseResponse(this.buffered, this.maxBytes);
    } catch (error) {
      this.fail(error as Error);
      return;
    }
    if (!parsed) return;
    this.buffered = Buffer.alloc(0);
    if (parsed.close) this.drop();
    this.settle();
    if (parsed.status !== 200) pending.reject(new MetricsHttpError(`HTTP ${parsed.status}`));
    else pending.resolve(parsed.body.toString('utf8'));
  }

  private onGone(socket: Socket, error: Error): void {
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
    this.fail(error);
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

/**
 * Parses one HTTP/1.1 response from `data`: undefined while incomplete; throws on a malformed or oversized one.
 * Without `content-length` or chunked encoding the body runs to the end of the connection, which a metrics answer
 * never needs: that is refused rather than waited for.
 */
export function parseResponse(data: Buffer, maxBytes: number): Parsed | undefined {
  const headEnd = data.indexOf(HEAD_END);
  if (headEnd === -1) {
    if (data.length > MAX_HEAD_BYTES)
      throw new MetricsHttpError(`response head larger than ${MAX_HEAD_BYTES} bytes`);
    return undefined;
  }
  const head = data.toString('latin1', 0, headEnd);
  const lines = head.split('\r\n');
  const statusLine = /^HTTP\/1\.([01]) (\d{3})/.exec(lines[0] ?? '');
  if (!statusLine)
    throw new MetricsHttpError(`not an HTTP/1.x response: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  const status = Number(statusLine[2]);
  let length = -1;
  let chunked = false;
  let close = statusLine[1] === '0';
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line
      .slice(colon + 1)
      .trim()
      .toLowerCase();
    if (name === 'content-length') {
      if (!/^\d+$/.test(value)) throw new MetricsHttpError(`bad content-length ${JSON.stringify(value)}`);
      length = Number(value);
    } else if (name === 'transfer-encoding') chunked = value.split(',').some((v) => v.trim() === 'chunked');
    else if (name === 'connection') close = value === 'close' ? true : value === 'keep-alive' ? false : close;
  }
  const bodyStart = headEnd + HEAD_END.length;
  if (chunked) {
    const body = dechunk(data, bodyStart, maxBytes);
    return body && { status, body, close };
  }
  if (length < 0) throw new MetricsHttpError('response without content-length or chunked encoding');
  if (length > maxBytes)
    throw new MetricsHttpError(`response body of ${length} bytes exceeds ${maxBytes} bytes`);
  if (data.length - bodyStart < length) return undefined;
  // Anything after the body was not asked for: the connection cannot be reused.
  if (data.length - bodyStart > length) close = true;
  return { status, body: data.subarray(bodyStart, bodyStart + length), close };
}

/** The body of a chunked response starting at `offset`, or undefined while incomplete (trailers are skipped). */
function dechunk(data: Buffer, offset: number, maxBytes: number): Buffer | undefined {
  const parts: Buffer[] = [];
  let size = 0;
  let at = offset;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at, 'latin1');
    if (lineEnd === -1) {
      if (data.length - at > 1024) throw new MetricsHttpError('chunk size line too long');
      return undefined;
    }
    const sizeText = data.toString('latin1', at, lineEnd).split(';')[0]!.trim();
    if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText))
      throw new MetricsHttpError(`bad chunk size ${JSON.stringify(sizeText)}`);
    const chunkSize = parseInt(sizeText, 16);
    at = lineEnd + 2;
    if (chunkSize === 0) {
      // Trailer section: lines up to an empty one.
      for (;;) {
        const end = data.indexOf('\r\n', at, 'latin1');
        if (end === -1) return undefined;
        if (end === at) return parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
        at = end + 2;
      }
    }
    size += chunkSize;
    if (size > maxBytes) throw new MetricsHttpError(`response body exceeds ${maxBytes} bytes`);
    if (data.length < at + chunkSize + 2) return undefined;
    parts.push(data.subarray(at, at + chunkSize));
    at += chunkSize + 2;
  }
}
