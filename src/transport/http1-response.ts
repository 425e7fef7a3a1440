/**
 * @module transport/http1-response
 * An incremental parser of one HTTP/1.1 response, for the two HTTP/1.1 clients that talk to model servers: the builtin
 * gateway's upstream pool (`gateway/upstream-pool.ts`) and the EPP's metrics scraper (`epp/metrics-http.ts`). It
 * replaces undici's parser on the gateway's hot path: llhttp in WebAssembly and undici's handler chain cost about
 * 0.2–0.3 ms per streamed completion (34 SSE chunks) on the bench machine, this a few µs per chunk.
 *
 * The server is a model server, but a broken or hostile one must not reach the client through the gateway, so the
 * parser is strict where leniency would let bytes through that the client would read differently (response
 * splitting, desync): a status line `HTTP/1.x NNN`, header names that are tokens with the colon right after them,
 * values of visible characters, no line folding, at most one framing (`transfer-encoding: chunked` alone, or one
 * `content-length`, or the body running to the end of the connection), chunk sizes of hex digits with a CRLF after
 * every chunk's data, and bounded heads, size lines and trailers. The body's bytes are handed on de-chunked, as views
 * of the bytes given to `execute`; the gateway frames them anew for its client, so no upstream framing byte ever
 * reaches the client.
 */
import type { IncomingHttpHeaders } from 'node:http';

export class UpstreamProtocolError extends Error {}

export interface ResponseEvents {
  /** The final response's head (1xx heads are skipped). Lowercase names; `set-cookie` is a list, repeats joined. */
  onHead(status: number, headers: IncomingHttpHeaders): void;
  /** A piece of the body, de-chunked. */
  onBody(chunk: Buffer): void;
  /** The response is complete. */
  onComplete(): void;
}

export interface ResponseParserOptions {
  /** The request was a HEAD: the answer has no body whatever its headers say. */
  headRequest?: boolean;
  /** Largest head (and largest trailer section) in bytes (default 64 KiB). */
  maxHeadBytes?: number;
}

const CRLF_CRLF = Buffer.from('\r\n\r\n');
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: [\t\x20-\x7e\x80-\xff]*)?$/;
/** A header name (RFC 9110 token) and a header value (visible characters, spaces, tabs, obs-text). */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
export const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const CHUNK_SIZE = /^([0-9a-fA-F]{1,12})[\t ]*(?:;[\t\x20-\x7e\x80-\xff]*)?$/;
const MAX_CHUNK_LINE = 4096;
/** 1xx heads before the final one; more is a server looping on them. */
const MAX_INFORMATIONAL = 8;

/** The value of an ASCII hex digit, or -1. */
function hexValue(byte: number): number {
  if (byte >= 48 && byte <= 57) return byte - 48;
  const lower = byte | 0x20;
  return lower >= 97 && lower <= 102 ? lower - 87 : -1;
}

type State =
  'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailers' | 'until-close' | 'done';

export class Http1ResponseParser {
  private state: State = 'head';
  /** A head split over reads, gathered (`headFilled` bytes of it). */
  private headBuffer: Buffer | undefined;
  private headFilled = 0;
  private line = '';
  private trailerBytes = 0;
  private remaining = 0;
  private crlfSeen = 0;
  private informational = 0;
  private reusable = true;
  private completed = false;
  private readonly maxHeadBytes: number;
  /** Seconds the server keeps an idle connection (`keep-alive: timeout=N`), if it said. */
  keepAliveTimeoutS: number | undefined;

  constructor(
    private readonly events: ResponseEvents,
    private readonly options: ResponseParserOptions = {},
  ) {
    this.maxHeadBytes = options.maxHeadBytes ?? 64 * 1024;
  }

  /** The response is complete. */
  get done(): boolean {
    return this.state === 'done';
  }

  /** The connection may carry another request after this response (keep-alive, known length, nothing extra). */
  get keepAlive(): boolean {
    return this.reusable;
  }

  /**
   * Feeds the next bytes of the connection. Returns how many were part of this response: fewer than given only once
   * it is complete (the rest is bytes the server sent beyond it). Throws `UpstreamProtocolError` on a malformed one.
   */
  execute(data: Buffer): number {
    let at = 0;
    while (at < data.length && this.state !== 'done') {
      switch (this.state) {
        case 'head':
          at = this.readHead(data, at);
          break;
        case 'length':
          at = this.readCounted(data, at, 'done');
          break;
        case 'until-close':
          this.events.onBody(at === 0 ? data : data.subarray(at));
          at = data.length;
          break;
        case 'chunk-size':
          at = this.readChunkSize(data, at);
          break;
        case 'chunk-data':
          at = this.readCounted(data, at, 'chunk-crlf');
          break;
        case 'chunk-crlf':
          if (data[at] !== (this.crlfSeen === 0 ? 13 : 10))
            throw new UpstreamProtocolError('chunk data not followed by CRLF');
          at++;
          if (++this.crlfSeen === 2) {
            this.crlfSeen = 0;
            this.state = 'chunk-size';
          }
          break;
        case 'trailers':
          at = this.readTrailers(data, at);
          break;
      }
    }
    if (this.state === 'done') {
      if (at < data.length) this.reusable = false;
      this.complete();
    }
    return at;
  }

  /** Hands on up to `remaining` body bytes (a content-length body or one chunk's data); `then` once all are read. */
  private readCounted(data: Buffer, at: number, then: State): number {
    const n = Math.min(this.remaining, data.length - at);
    this.remaining -= n;
    if (this.remaining === 0) this.state = then;
    this.events.onBody(data.subarray(at, at + n));
    return at + n;
  }

  /**
   * The connection ended. Completes a body that runs to the end of the connection; throws if the response was cut
   * short.
   */
  finish(): void {
    if (this.state === 'done') return;
    if (this.state !== 'until-close')
      throw new UpstreamProtocolError(
        this.state === 'head' && this.headFilled === 0
          ? 'the upstream closed the connection without answering'
          : 'the upstream closed the connection in the middle of its response',
      );
    this.state = 'done';
    this.reusable = false;
    this.complete();
  }

  private complete(): void {
    if (this.completed) return;
    this.completed = true;
    this.events.onComplete();
  }

  /**
   * Reads the head. The common case, a head whole in one read, is parsed where it lies; a head split over reads is
   * gathered into a buffer that grows by doubling and is searched only where new bytes could end it, so a server
   * trickling its head a byte at a time costs linear work, up to the bound.
   */
  private readHead(data: Buffer, at: number): number {
    if (this.headFilled === 0) {
      const end = data.indexOf(CRLF_CRLF, at);
      if (end !== -1 && end - at <= this.maxHeadBytes) {
        this.onHeadText(data.toString('latin1', at, end));
        return end + 4;
      }
    }
    const before = this.headFilled;
    const take = Math.min(data.length - at, this.maxHeadBytes + 4 - before);
    if (!this.headBuffer || this.headBuffer.length < before + take) {
      const grown = Buffer.allocUnsafe(Math.min(this.maxHeadBytes + 4, Math.max(1024, 2 * (before + take))));
      this.headBuffer?.copy(grown, 0, 0, before);
      this.headBuffer = grown;
    }
    data.copy(this.headBuffer, before, at, at + take);
    this.headFilled += take;
    const end = this.headBuffer.subarray(0, this.headFilled).indexOf(CRLF_CRLF, Math.max(0, before - 3));
    if (end === -1 || end > this.maxHeadBytes) {
      if (this.headFilled >= this.maxHeadBytes + 4 || end > this.maxHeadBytes)
        throw new UpstreamProtocolError(`response head larger than ${this.maxHeadBytes} bytes`);
      return at + take;
    }
    const text = this.headBuffer.toString('latin1', 0, end);
    this.headFilled = 0;
    this.onHeadText(text);
    return at + end + 4 - before;
  }

  private onHeadText(text: string): void {
    const lines = text.split('\r\n');
    const status = STATUS_LINE.exec(lines[0]!);
    if (!status)
      throw new UpstreamProtocolError(
        `not an HTTP/1.x status line: ${JSON.stringify(lines[0]!.slice(0, 80))}`,
      );
    const code = Number(status[2]);
    const headers: IncomingHttpHeaders = {};
    let lengths: string[] | undefined;
    let codings: string | undefined;
    let connection = '';
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      const name = colon > 0 ? line.slice(0, colon) : '';
      if (!TOKEN.test(name))
        throw new UpstreamProtocolError(
          `malformed response header line ${JSON.stringify(line.slice(0, 80))}`,
        );
      const value = line.slice(colon + 1).trim();
      if (!FIELD_VALUE.test(value))
        throw new UpstreamProtocolError(`response header ${name} has a control character in its value`);
      const key = name.toLowerCase();
      if (key === 'content-length') (lengths ??= []).push(...value.split(',').map((v) => v.trim()));
      else if (key === 'transfer-encoding') codings = codings === undefined ? value : `${codings}, ${value}`;
      else if (key === 'connection') connection += `,${value.toLowerCase()}`;
      else if (key === 'keep-alive') {
        const timeout = /(?:^|[,\s])timeout=(\d+)/i.exec(value);
        if (timeout) this.keepAliveTimeoutS = Number(timeout[1]);
      }
      if (key === 'set-cookie') (headers['set-cookie'] ??= []).push(value);
      else {
        const previous = headers[key] as string | undefined;
        headers[key] = previous === undefined ? value : `${previous}, ${value}`;
      }
    }
    if (code < 200) {
      if (code === 101) throw new UpstreamProtocolError('the upstream switched protocols unasked (101)');
      if (++this.informational > MAX_INFORMATIONAL)
        throw new UpstreamProtocolError(`more than ${MAX_INFORMATIONAL} informational (1xx) responses`);
      return; // the final head follows
    }
    if (status[1] === '0' || connection.split(',').some((t) => t.trim() === 'close')) this.reusable = false;
    // The framing is checked before the head is handed on, so a malformed answer becomes a clean 502.
    const next = this.framing(code, codings, lengths);
    this.events.onHead(code, headers);
    this.state = next;
  }

  private framing(code: number, codings: string | undefined, lengths: string[] | undefined): State {
    if (this.options.headRequest || code === 204 || code === 304) return 'done';
    if (codings !== undefined) {
      if (lengths !== undefined)
        throw new UpstreamProtocolError('response with both transfer-encoding and content-length');
      if (codings.trim().toLowerCase() !== 'chunked')
        throw new UpstreamProtocolError(`unsupported transfer-encoding ${JSON.stringify(codings)}`);
      return 'chunk-size';
    }
    if (lengths !== undefined) {
      const first = lengths[0]!;
      if (!/^\d{1,15}$/.test(first) || lengths.some((l) => l !== first))
        throw new UpstreamProtocolError(`bad content-length ${JSON.stringify(lengths.join(', '))}`);
      this.remaining = Number(first);
      return this.remaining === 0 ? 'done' : 'length';
    }
    this.reusable = false;
    return 'until-close';
  }

  /** Reads up to the end of a line into `this.line`; the line without its CRLF, or undefined while incomplete. */
  private readLine(data: Buffer, at: number, limit: number, what: string): [string | undefined, number] {
    const nl = data.indexOf(10, at);
    const end = nl === -1 ? data.length : nl;
    this.line += data.toString('latin1', at, end);
    if (this.line.length > limit) throw new UpstreamProtocolError(`${what} longer than ${limit} bytes`);
    if (nl === -1) return [undefined, data.length];
    const line = this.line;
    this.line = '';
    if (!line.endsWith('\r')) throw new UpstreamProtocolError(`${what} not ended by CRLF`);
    return [line.slice(0, -1), nl + 1];
  }

  private readChunkSize(data: Buffer, at: number): number {
    // What servers send — hex digits then CRLF, whole in this read — is read off the bytes, once per streamed piece;
    // anything else (a line split over reads, an extension, a bad line) takes the general path below.
    if (this.line === '') {
      let size = 0;
      let i = at;
      for (let digit; i < data.length && i - at < 12 && (digit = hexValue(data[i]!)) >= 0; i++)
        size = size * 16 + digit;
      if (i > at && data[i] === 13 && data[i + 1] === 10) {
        this.startChunk(size);
        return i + 2;
      }
    }
    const [line, next] = this.readLine(data, at, MAX_CHUNK_LINE, 'chunk size line');
    if (line === undefined) return next;
    const size = CHUNK_SIZE.exec(line);
    if (!size) throw new UpstreamProtocolError(`bad chunk size line ${JSON.stringify(line.slice(0, 80))}`);
    this.startChunk(parseInt(size[1]!, 16));
    return next;
  }

  /** A chunk of `size` bytes follows; the last chunk (0) is followed by the trailers. */
  private startChunk(size: number): void {
    this.remaining = size;
    this.state = size === 0 ? 'trailers' : 'chunk-data';
  }

  /** Trailer fields are read and dropped (the client's response is re-framed without them). */
  private readTrailers(data: Buffer, at: number): number {
    const [line, next] = this.readLine(data, at, this.maxHeadBytes, 'trailer line');
    if (line === undefined) return next;
    this.trailerBytes += line.length + 2;
    if (this.trailerBytes > this.maxHeadBytes)
      throw new UpstreamProtocolError(`trailers larger than ${this.maxHeadBytes} bytes`);
    const colon = line.indexOf(':');
    if (line === '') this.state = 'done';
    else if (colon <= 0 || !TOKEN.test(line.slice(0, colon)) || !FIELD_VALUE.test(line.slice(colon + 1)))
      throw new UpstreamProtocolError(`malformed trailer line ${JSON.stringify(line.slice(0, 80))}`);
    return next;
  }
}
