/**
 * @module transport/http2-connection
 * The server side of one HTTP/2 connection (RFC 9113), for the EPP's gRPC services: frames, settings, flow control
 * and stream states, with HPACK from `hpack.ts`. It serves what gRPC clients send (prior-knowledge h2c, or h2 over
 * TLS) and nothing else: no server push, no priorities (accepted and ignored), no HTTP/1.1 upgrade.
 *
 * Why not `node:http2`: every request through the gateway is one stream, and Node 20's HTTP/2 layer costs the EPP
 * more than the EPP's own work. Over a 500 req/s run, Node's HTTP/2, stream and event JavaScript took ~105 µs per
 * request against ~45 µs for the EPP's code; its per-stream objects (Readable/Writable state, header objects, tick
 * records) were most of the ~45 KB allocated per request, and it allocated ~200–400 B per stream straight in the
 * old generation, which is what brought on the full collections that made the latency tail. It also refuses more
 * than 1,000 stream resets in a burst on Node < 22.10, and Envoy's ext_proc client resets every stream.
 *
 * Here a stream is one small object; frames are read in place from the socket's chunks and written in one batch per
 * turn of the event loop.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { HpackDecoder, HpackError } from './hpack.js';
import { RequestHeadReader, type RequestHead } from './http2-request-head.js';

export type { RequestHead } from './http2-request-head.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const FRAME_HEADER_BYTES = 9;
const EMPTY = Buffer.alloc(0);

const DATA = 0x0;
const HEADERS = 0x1;
const PRIORITY = 0x2;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PUSH_PROMISE = 0x5;
const PING = 0x6;
const GOAWAY = 0x7;
const WINDOW_UPDATE = 0x8;
const CONTINUATION = 0x9;

const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;

const SETTINGS_ENABLE_PUSH = 0x2;
const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const SETTINGS_MAX_FRAME_SIZE = 0x5;
const SETTINGS_MAX_HEADER_LIST_SIZE = 0x6;

/** HTTP/2 error codes (RFC 9113 §7). */
export const Http2ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
} as const;

const MAX_WINDOW = 2 ** 31 - 1;
/** The protocol's frame size, which we never raise: a gateway's messages are small, and large ones just take more frames. */
const MAX_FRAME_BYTES = 16_384;
/**
 * Receive windows: a stream takes a large prompt without a round trip per 64 KiB, and the connection's window lets
 * concurrent large prompts through without queueing. Both are topped up once half is used.
 */
const STREAM_WINDOW = 1 << 20;
const CONNECTION_WINDOW = 16 << 20;
/** Largest decoded request header list (RFC 9113 §6.5.2 size); advertised, and a larger one ends the connection. */
const MAX_HEADER_LIST_BYTES = 64 << 10;
/** Largest header block buffered across CONTINUATION frames before decoding. */
const MAX_HEADER_BLOCK_BYTES = 2 * MAX_HEADER_LIST_BYTES;
/**
 * Most frames (HEADERS and its CONTINUATIONs) one header block may take. The byte bound above does not hold
 * alone: empty or tiny CONTINUATIONs add next to no bytes, yet each fragment is kept (CVE-2024-27316). The largest
 * block fits in 8 full frames; this leaves room for clients that cut blocks smaller.
 */
const MAX_HEADER_BLOCK_FRAMES = 32;
/** How long a connection we ended with GOAWAY waits for the client to close before it is dropped. */
const CLOSE_GRACE_MS = 1000;

/** What the connection tells a stream's owner. Each stream hears `onEnd` at most once and `onAbort` at most once. */
export interface StreamHandler {
  /** Request bytes (DATA payload without padding); a view into the socket's chunk, valid for as long as it is kept. */
  onData(chunk: Buffer): void;
  /** The client half-closed (END_STREAM). */
  onEnd(): void;
  /** The stream ended before both sides finished: reset by the client, a stream or connection error, the connection lost or closed. */
  onAbort(): void;
}

/** The server's side of one stream. Calls after the server ended the stream, or after it was torn down, do nothing. */
export interface ServerStream {
  /** Response headers, an HPACK block from `encodeHeaderBlock`; `endStream` makes them the whole response. */
  sendHeaders(block: Buffer, endStream: boolean): void;
  /** Response bytes, in DATA frames as the client's flow-control windows allow. */
  sendData(data: Buffer): void;
  /**
   * Trailers, ending the server's side once the data before them is sent. If the client has not half-closed, the
   * stream is then closed with RST_STREAM(NO_ERROR), as RFC 9113 §8.1 has servers do when the response is complete.
   */
  sendTrailers(block: Buffer): void;
  /** False once the server ended its side or the stream was torn down. */
  isOpen(): boolean;
}

/**
 * What one client may make a connection hold or do. Floods are counted per connection in leaky buckets: each event
 * adds one, `floodWindowMs` lets the bucket's limit leak out evenly, and a bucket over its limit ends the connection
 * with GOAWAY(ENHANCE_YOUR_CALM).
 */
export interface Http2Limits {
  /**
   * SETTINGS_MAX_CONCURRENT_STREAMS, advertised and enforced: a stream opened beyond it is refused with
   * RST_STREAM(REFUSED_STREAM) and never reaches `onStream`. High, because Envoy keeps all of a gateway's in-flight
   * requests on one connection (it opens another when it reaches the limit).
   */
  maxConcurrentStreams: number;
  /** The time over which each flood limit below leaks out. */
  floodWindowMs: number;
  /**
   * Streams the client resets before the server sent anything on them (CVE-2023-44487, "rapid reset"), streams
   * it opens beyond `maxConcurrentStreams`, and streams refused as malformed. Envoy's reset of an ext_proc stream it
   * is done with comes after the response, and is not counted; each stream the server answered allows one more.
   */
  maxEarlyResets: number;
  /** PINGs (not their acknowledgements): each costs an answer. */
  maxPings: number;
  /** SETTINGS (not their acknowledgements): each costs an answer, and a window change a pass over the streams. */
  maxSettings: number;
  /**
   * RST_STREAM and WINDOW_UPDATE on closed streams, and DATA or HEADERS on streams the client reset. Each stream that
   * closes allows two more, so the frames that cross a stream's end (Envoy resets every ext_proc stream, also those
   * the server already ended) are never a flood.
   */
  maxStrayFrames: number;
  /**
   * Frames that carry nothing and end nothing: DATA without content or END_STREAM, CONTINUATION without content or
   * END_HEADERS. Each costs a frame's work for no progress (CVE-2019-9518); no client needs many.
   */
  maxEmptyFrames: number;
  /** Bytes queued on the socket above which the connection stops reading until they drain. */
  writeHighWaterBytes: number;
  /** With no stream open and no frame for this long, GOAWAY(NO_ERROR) and close; 0: never. */
  idleTimeoutMs: number;
  /** Without the client's preface and first SETTINGS within this long, close; 0: never. */
  prefaceTimeoutMs: number;
  /**
   * A header block spread over CONTINUATION frames must end within this long, else GOAWAY(ENHANCE_YOUR_CALM); 0:
   * never. While it is open nothing else may come on the connection, so a client that never ends one holds its
   * buffered fragments and the connection for nothing until the idle timeout.
   */
  headerBlockTimeoutMs: number;
}

type FloodLimit = 'maxEarlyResets' | 'maxPings' | 'maxSettings' | 'maxStrayFrames' | 'maxEmptyFrames';

export const DEFAULT_HTTP2_LIMITS: Readonly<Http2Limits> = Object.freeze({
  maxConcurrentStreams: 1000,
  floodWindowMs: 10_000,
  maxEarlyResets: 1000,
  maxPings: 1000,
  maxSettings: 100,
  maxStrayFrames: 1000,
  maxEmptyFrames: 1000,
  writeHighWaterBytes: 1 << 20,
  idleTimeoutMs: 10 * 60_000,
  prefaceTimeoutMs: 10_000,
  headerBlockTimeoutMs: 10_000,
});

/** The defaults with `limits` over them; throws a RangeError naming a limit that is not a whole number in range. */
export function resolveHttp2Limits(limits: Partial<Http2Limits> = {}): Http2Limits {
  const resolved = { ...DEFAULT_HTTP2_LIMITS, ...limits };
  for (const [name, value] of Object.entries(resolved)) {
    // Timeouts may be 0 (off); a zero window or stream limit would make every connection useless.
    const min = name.endsWith('TimeoutMs') ? 0 : 1;
    if (!Number.isSafeInteger(value) || value < min) {
      throw new RangeError(`HTTP/2 limit ${name} must be a whole number >= ${min}, not ${String(value)}`);
    }
  }
  if (resolved.maxConcurrentStreams > 0x7fffffff) {
    throw new RangeError(`HTTP/2 limit maxConcurrentStreams must be at most 2^31-1`);
  }
  return resolved;
}

export interface Http2ConnectionOptions {
  /** A new request stream: returns the handler of its events. Called with the stream's headers fully decoded. */
  onStream(stream: ServerStream, head: RequestHead): StreamHandler;
  /** What a client did wrong (connection errors, requests refused as malformed) and exceptions from handlers. */
  onError?: ((error: Error) => void) | undefined;
  /** Limits over `DEFAULT_HTTP2_LIMITS`; resolve them once with `resolveHttp2Limits` when many connections share them. */
  limits?: Partial<Http2Limits> | undefined;
  /** Shared by a server's connections: the bytes of header blocks they are still receiving, all together. */
  headerBlockBudget?: HeaderBlockBudget | undefined;
}

/**
 * The bytes of unfinished multi-frame header blocks that all of a server's connections may hold at once. Each
 * connection's block is bounded (128 KiB), but not the connections: thousands of clients each holding an unfinished
 * block would hold hundreds of MB. A gateway's header blocks are a few KB and end in the frame that starts them, so
 * only a client that cuts its blocks into frames ever takes from this.
 */
export class HeaderBlockBudget {
  private used = 0;

  constructor(readonly limitBytes: number) {}

  /** Takes `bytes`, or returns false (and takes nothing) when that would pass the limit. */
  take(bytes: number): boolean {
    if (this.used + bytes > this.limitBytes) return false;
    this.used += bytes;
    return true;
  }

  release(bytes: number): void {
    this.used -= bytes;
  }

  /** Bytes taken now. */
  get inUse(): number {
    return this.used;
  }
}

/** The handler of a stream that is answered at once and whose request does not matter. */
export const IGNORE_STREAM: StreamHandler = {
  onData: () => undefined,
  onEnd: () => undefined,
  onAbort: () => undefined,
};

class Stream implements ServerStream {
  handler: StreamHandler = IGNORE_STREAM;
  /** Bytes the client's window lets us send on this stream (may go negative when it shrinks its initial window). */
  sendWindow: number;
  /** Bytes the client may still send on this stream, and bytes received since we last topped that up. */
  receiveWindow = STREAM_WINDOW;
  receivedUnacked = 0;
  /** The client sent END_STREAM. */
  remoteEnded = false;
  /** The server ended its side (its END_STREAM may still wait behind `blocked` data). */
  localEnded = false;
  /** The server sent headers: a reset from now on is a client done with the answer, not a rapid reset. */
  answered = false;
  /** Removed from the connection: nothing more is sent or delivered. */
  gone = false;
  /** The request's content-length (-1: none), and the request bytes received so far. */
  expectedBytes = -1;
  receivedBytes = 0;
  /** DATA waiting for window, and the trailers to send after it. */
  blocked: Buffer[] | null = null;
  blockedTrailers: Buffer | null = null;

  constructor(
    private readonly connection: Http2Connection,
    readonly id: number,
    sendWindow: number,
  ) {
    this.sendWindow = sendWindow;
  }

  sendHeaders(block: Buffer, endStream: boolean): void {
    if (this.localEnded || this.gone) return;
    this.answered = true;
    if (!endStream) {
      this.connection.writeHeaders(this.id, block, false);
      return;
    }
    this.localEnded = true;
    this.connection.endStream(this, block);
  }

  sendData(data: Buffer): void {
    if (this.localEnded || this.gone || data.length === 0) return;
    if (this.blocked) this.blocked.push(data);
    else this.connection.writeData(this, data);
  }

  sendTrailers(block: Buffer): void {
    if (this.localEnded || this.gone) return;
    this.localEnded = true;
    if (this.blocked) {
      this.blockedTrailers = block;
      return;
    }
    this.connection.endStream(this, block);
  }

  isOpen(): boolean {
    return !this.localEnded && !this.gone;
  }
}

/**
 * What `onError` hears when the server ended a connection with GOAWAY for the client's error. `code` names the
 * GOAWAY's error code: `ENHANCE_YOUR_CALM` is a flood (or a header block too large), worth an operator's notice.
 */
export class Http2GoawayError extends Error {
  constructor(
    readonly code: string,
    /** The client's address and port, when the socket has them. */
    readonly peer: string | undefined,
    reason: string,
  ) {
    super(`HTTP/2 connection closed (${code}): ${reason}`);
  }
}

/** A fatal protocol error: GOAWAY with this code, then the connection closes. */
class ConnectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const CLOSED_BY_END_STREAM = 1;
const CLOSED_BY_RESET = 2;

/** A bounded memory of stream ids and how each closed, oldest forgotten first. Looked up only for stray frames. */
class RecentStreams {
  private readonly ids: Int32Array;
  private readonly how: Uint8Array;
  private next = 0;
  constructor(size: number) {
    this.ids = new Int32Array(size);
    this.how = new Uint8Array(size);
  }
  add(id: number, how: number): void {
    this.ids[this.next] = id;
    this.how[this.next] = how;
    this.next = (this.next + 1) % this.ids.length;
  }
  /** How `id` closed, or 0 if it is not remembered; the latest entry wins (a reset after END_STREAM). */
  get(id: number): number {
    for (let i = 1; i <= this.ids.length; i++) {
      const at = (this.next - i + this.ids.length) % this.ids.length;
      if (this.ids[at] === id) return this.how[at]!;
    }
    return 0;
  }
}

/**
 * A leaky bucket counting one kind of flood: each event adds one, and `limit` events leak out evenly per `windowMs`.
 * Integers only, and the clock is read only when an event is counted, so frames that are not counted cost nothing.
 */
class FloodMeter {
  /** May go below 0 with credits (down to -limit), never by leaking. */
  private level = 0;
  private since = 0;
  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}
  /** Counts one event: true when it takes the bucket over its limit. */
  add(): boolean {
    const now = Date.now();
    const leaked = Math.floor(((now - this.since) * this.limit) / this.windowMs);
    if (leaked > 0) {
      this.level = this.level > leaked ? this.level - leaked : Math.min(this.level, 0);
      this.since = now;
    }
    return ++this.level > this.limit;
  }
  /** Events allowed ahead, for frames legitimately expected (at most `limit` banked). */
  credit(events: number): void {
    this.level = Math.max(this.level - events, -this.limit);
  }
}

export class Http2Connection {
  private readonly streams = new Map<number, Stream>();
  /** Streams with DATA waiting for window, in the order they blocked. */
  private readonly blockedStreams = new Set<Stream>();
  private readonly decoder = new HpackDecoder();
  /** Highest stream id the client opened (or tried to). */
  private lastStreamId = 0;
  private prefaceRead = false;
  private settingsRead = false;
  /** Bytes of a frame (or the preface) cut by the end of a chunk. */
  private rest: Buffer | null = null;
  /** A header block waiting for CONTINUATION frames. */
  private continuing: {
    id: number;
    flags: number;
    fragments: Buffer[];
    bytes: number;
    selfDependent: boolean;
  } | null = null;
  /** The last streams the client closed itself, to judge frames that still come for them. */
  private readonly closedByClient = new RecentStreams(256);
  /** Reads each header block's fields as HPACK decodes them. */
  private readonly fields = new RequestHeadReader();

  private sendWindow = 65_535;
  private receiveWindow = 65_535;
  private receivedUnacked = 0;
  private peerInitialWindow = 65_535;
  private peerMaxFrameBytes = MAX_FRAME_BYTES;

  private out: Buffer[] = [];
  private outBytes = 0;
  private flushQueued = false;
  /** We sent GOAWAY, or the socket ended: no new streams, nothing more read. */
  private closing = false;
  /** The client sent GOAWAY: close once its streams are done. */
  private peerGoaway = false;
  /** We sent GOAWAY for a graceful shutdown: open streams finish, new ones are refused, then the socket closes. */
  private draining = false;

  private readonly limits: Http2Limits;
  private readonly earlyResets: FloodMeter;
  private readonly pings: FloodMeter;
  private readonly settingsFrames: FloodMeter;
  private readonly strayFrames: FloodMeter;
  private readonly emptyFrames: FloodMeter;
  /** Reading stopped until the socket drains: its write buffer went over this. */
  private readonly pauseAboveBytes: number;
  private paused = false;
  /** The preface timer, then the idle timer; and when a frame last came or the last stream closed. */
  private timer: NodeJS.Timeout | null = null;
  /** Runs while a header block waits for CONTINUATION frames (`headerBlockTimeoutMs`). */
  private headerBlockTimer: NodeJS.Timeout | null = null;
  private lastActive = 0;

  constructor(
    private readonly socket: Duplex,
    private readonly options: Http2ConnectionOptions,
  ) {
    const limits = resolveHttp2Limits(options.limits);
    this.limits = limits;
    this.earlyResets = new FloodMeter(limits.maxEarlyResets, limits.floodWindowMs);
    this.pings = new FloodMeter(limits.maxPings, limits.floodWindowMs);
    this.settingsFrames = new FloodMeter(limits.maxSettings, limits.floodWindowMs);
    this.strayFrames = new FloodMeter(limits.maxStrayFrames, limits.floodWindowMs);
    this.emptyFrames = new FloodMeter(limits.maxEmptyFrames, limits.floodWindowMs);
    // Not below the socket's own mark: 'drain' only comes after a write that went over it.
    this.pauseAboveBytes = Math.max(limits.writeHighWaterBytes, socket.writableHighWaterMark);
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => this.teardown());
    socket.on('end', () => this.teardown());
    // Our settings and the connection window open the connection; the client's preface may come before or after.
    const settings = Buffer.allocUnsafe(18);
    settings.writeUInt16BE(SETTINGS_INITIAL_WINDOW_SIZE, 0);
    settings.writeUInt32BE(STREAM_WINDOW, 2);
    settings.writeUInt16BE(SETTINGS_MAX_HEADER_LIST_SIZE, 6);
    settings.writeUInt32BE(MAX_HEADER_LIST_BYTES, 8);
    settings.writeUInt16BE(SETTINGS_MAX_CONCURRENT_STREAMS, 12);
    settings.writeUInt32BE(limits.maxConcurrentStreams, 14);
    this.writeFrame(SETTINGS, 0, 0, settings);
    this.writeWindowUpdate(0, CONNECTION_WINDOW - this.receiveWindow);
    this.receiveWindow = CONNECTION_WINDOW;
    if (limits.prefaceTimeoutMs > 0) {
      this.timer = setTimeout(this.prefaceTimedOut, limits.prefaceTimeoutMs).unref();
    }
  }

  /**
   * A graceful shutdown: GOAWAY(NO_ERROR) naming the last stream accepted, so the client opens no more here and
   * retries any stream it raced in (that one gets RST_STREAM(REFUSED_STREAM), safe to retry by RFC 9113 §8.7); the
   * open streams run to their end, then the socket closes. `close()` still ends it at once.
   */
  goAwayGracefully(): void {
    if (this.closing || this.draining) return;
    this.draining = true;
    const payload = Buffer.allocUnsafe(8 + 'draining'.length);
    payload.writeUInt32BE(this.lastStreamId, 0);
    payload.writeUInt32BE(Http2ErrorCode.NO_ERROR, 4);
    payload.write('draining', 8, 'latin1');
    this.writeFrame(GOAWAY, 0, 0, payload);
    this.flush();
    this.endIfIdle();
  }

  /** Streams still open (a draining server waits for this to reach 0). */
  get openStreams(): number {
    return this.streams.size;
  }

  /** Ends the connection for a server shutdown: GOAWAY(NO_ERROR), every open stream aborted, the socket closed. */
  close(): void {
    if (!this.closing) this.goAway(Http2ErrorCode.NO_ERROR, 'server shutting down');
    this.flush();
    this.teardown();
    this.socket.destroy();
  }

  // ---- reading ---------------------------------------------------------------------------------------------------

  private read(chunk: Buffer): void {
    if (this.closing) return;
    // Once per chunk, not per frame: the idle timer only needs to know that the client is still talking.
    this.lastActive = Date.now();
    const buffer = this.rest === null ? chunk : Buffer.concat([this.rest, chunk]);
    this.rest = null;
    let position = 0;
    try {
      if (!this.prefaceRead) {
        const seen = Math.min(buffer.length, PREFACE.length);
        if (buffer.compare(PREFACE, 0, seen, 0, seen) !== 0) {
          throw new ConnectionError(
            Http2ErrorCode.PROTOCOL_ERROR,
            'the client did not send the HTTP/2 preface',
          );
        }
        if (buffer.length < PREFACE.length) {
          this.rest = buffer;
          return;
        }
        this.prefaceRead = true;
        position = PREFACE.length;
      }
      while (buffer.length - position >= FRAME_HEADER_BYTES) {
        const length = buffer.readUIntBE(position, 3);
        if (length > MAX_FRAME_BYTES) {
          throw new ConnectionError(
            Http2ErrorCode.FRAME_SIZE_ERROR,
            `a frame of ${length} bytes exceeds SETTINGS_MAX_FRAME_SIZE ${MAX_FRAME_BYTES}`,
          );
        }
        const end = position + FRAME_HEADER_BYTES + length;
        if (end > buffer.length) break;
        const type = buffer[position + 3]!;
        const flags = buffer[position + 4]!;
        const id = buffer.readUInt32BE(position + 5) & 0x7fffffff;
        const payload = buffer.subarray(position + FRAME_HEADER_BYTES, end);
        position = end;
        this.frame(type, flags, id, payload);
        if (this.closing) return;
      }
      if (position < buffer.length) this.rest = position === 0 ? buffer : buffer.subarray(position);
    } catch (error) {
      if (error instanceof ConnectionError) {
        this.options.onError?.(new Http2GoawayError(codeName(error.code), this.peer(), error.message));
        this.goAway(error.code, error.message);
      } else {
        this.options.onError?.(error as Error);
        this.goAway(Http2ErrorCode.INTERNAL_ERROR, 'internal error');
      }
      this.teardown();
    }
  }

  private frame(type: number, flags: number, id: number, payload: Buffer): void {
    if (this.continuing && type !== CONTINUATION) {
      throw new ConnectionError(
        Http2ErrorCode.PROTOCOL_ERROR,
        'a header block was interrupted by another frame',
      );
    }
    if (!this.settingsRead) {
      if (type !== SETTINGS || flags & FLAG_ACK) {
        throw new ConnectionError(
          Http2ErrorCode.PROTOCOL_ERROR,
          'the client preface must start with SETTINGS',
        );
      }
      this.settingsRead = true;
      this.startIdleTimer();
    }
    switch (type) {
      case DATA:
        return this.onData(flags, id, payload);
      case HEADERS:
        return this.onHeaders(flags, id, payload);
      case PRIORITY:
        return this.onPriority(id, payload);
      case RST_STREAM:
        return this.onReset(id, payload);
      case SETTINGS:
        return this.onSettings(flags, id, payload);
      case PUSH_PROMISE:
        throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, 'a client may not send PUSH_PROMISE');
      case PING:
        return this.onPing(flags, id, payload);
      case GOAWAY:
        return this.onGoaway(id, payload);
      case WINDOW_UPDATE:
        return this.onWindowUpdate(id, payload);
      case CONTINUATION:
        return this.onContinuation(flags, id, payload);
      default:
      // Unknown frame types are ignored (RFC 9113 §4.1).
    }
  }

  private onData(flags: number, id: number, payload: Buffer): void {
    if (id === 0) throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, 'DATA on stream 0');
    const data = frameContent(payload, (flags & FLAG_PADDED) !== 0, 0);
    if (data.length === 0 && !(flags & FLAG_END_STREAM)) this.count(this.emptyFrames, 'maxEmptyFrames');
    // The whole payload, padding included, counts against the windows (RFC 9113 §6.9.1).
    this.receiveWindow -= payload.length;
    if (this.receiveWindow < 0) {
      throw new ConnectionError(Http2ErrorCode.FLOW_CONTROL_ERROR, 'DATA beyond the connection window');
    }
    this.receivedUnacked += payload.length;
    if (this.receivedUnacked >= CONNECTION_WINDOW / 2) {
      this.writeWindowUpdate(0, this.receivedUnacked);
      this.receiveWindow += this.receivedUnacked;
      this.receivedUnacked = 0;
    }
    const stream = this.streams.get(id);
    if (!stream) {
      if (id > this.lastStreamId)
        throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, `DATA on idle stream ${id}`);
      return this.onClosedStream(id);
    }
    if (stream.remoteEnded) return this.resetStream(stream, Http2ErrorCode.STREAM_CLOSED);
    stream.receiveWindow -= payload.length;
    if (stream.receiveWindow < 0) return this.resetStream(stream, Http2ErrorCode.FLOW_CONTROL_ERROR);
    stream.receivedUnacked += payload.length;
    stream.receivedBytes += data.length;
    if (stream.expectedBytes >= 0 && stream.receivedBytes > stream.expectedBytes) {
      return this.resetStream(stream, Http2ErrorCode.PROTOCOL_ERROR); // more than its content-length
    }
    if (data.length > 0) stream.handler.onData(data);
    if (stream.gone) return;
    if (flags & FLAG_END_STREAM) return this.remoteEnd(stream);
    if (stream.receivedUnacked >= STREAM_WINDOW / 2) {
      this.writeWindowUpdate(id, stream.receivedUnacked);
      stream.receiveWindow += stream.receivedUnacked;
      stream.receivedUnacked = 0;
    }
  }

  private onHeaders(flags: number, id: number, payload: Buffer): void {
    if (id === 0 || (id & 1) === 0) {
      throw new ConnectionError(
        Http2ErrorCode.PROTOCOL_ERROR,
        `HEADERS on stream ${id}, not a client stream`,
      );
    }
    // Priority fields (dependency and weight) are skipped: this server does not prioritize.
    const fragment = frameContent(payload, (flags & FLAG_PADDED) !== 0, flags & FLAG_PRIORITY ? 5 : 0);
    // A stream that depends on itself is a stream error (RFC 9113 §5.3.1); its block is still decoded for HPACK.
    const selfDependent =
      (flags & FLAG_PRIORITY) !== 0 &&
      (payload.readUInt32BE(flags & FLAG_PADDED ? 1 : 0) & 0x7fffffff) === id;
    if (flags & FLAG_END_HEADERS) return this.onHeaderBlock(flags, id, fragment, selfDependent);
    this.takeHeaderBytes(fragment.length);
    this.continuing = { id, flags, fragments: [fragment], bytes: fragment.length, selfDependent };
    if (this.limits.headerBlockTimeoutMs > 0) {
      this.headerBlockTimer = setTimeout(this.headerBlockTimedOut, this.limits.headerBlockTimeoutMs).unref();
    }
  }

  /** Counts bytes of an unfinished header block against the server's budget (`HeaderBlockBudget`). */
  private takeHeaderBytes(bytes: number): void {
    const budget = this.options.headerBlockBudget;
    if (!budget || budget.take(bytes)) return;
    throw new ConnectionError(
      Http2ErrorCode.ENHANCE_YOUR_CALM,
      `unfinished header blocks of all connections over ${budget.limitBytes} bytes`,
    );
  }

  /** Forgets the unfinished header block: stops its timer and gives its bytes back to the budget. */
  private dropHeaderBlock(): void {
    if (this.headerBlockTimer !== null) {
      clearTimeout(this.headerBlockTimer);
      this.headerBlockTimer = null;
    }
    if (this.continuing) this.options.headerBlockBudget?.release(this.continuing.bytes);
    this.continuing = null;
  }

  private readonly headerBlockTimedOut = (): void => {
    this.headerBlockTimer = null;
    if (this.closing) return;
    const reason = `a header block not ended within ${this.limits.headerBlockTimeoutMs} ms`;
    this.options.onError?.(new Http2GoawayError('ENHANCE_YOUR_CALM', this.peer(), reason));
    this.goAway(Http2ErrorCode.ENHANCE_YOUR_CALM, reason);
    this.teardown();
  };

  private onContinuation(flags: number, id: number, payload: Buffer): void {
    const continuing = this.continuing;
    if (!continuing || continuing.id !== id) {
      throw new ConnectionError(
        Http2ErrorCode.PROTOCOL_ERROR,
        'CONTINUATION without a header block to continue',
      );
    }
    const last = (flags & FLAG_END_HEADERS) !== 0;
    if (payload.length === 0 && !last) this.count(this.emptyFrames, 'maxEmptyFrames');
    this.takeHeaderBytes(payload.length);
    continuing.fragments.push(payload);
    continuing.bytes += payload.length;
    if (continuing.bytes > MAX_HEADER_BLOCK_BYTES) {
      throw new ConnectionError(
        Http2ErrorCode.ENHANCE_YOUR_CALM,
        `a header block over ${MAX_HEADER_BLOCK_BYTES} bytes`,
      );
    }
    if (continuing.fragments.length > MAX_HEADER_BLOCK_FRAMES) {
      throw new ConnectionError(
        Http2ErrorCode.ENHANCE_YOUR_CALM,
        `a header block over ${MAX_HEADER_BLOCK_FRAMES} frames`,
      );
    }
    if (!last) return;
    this.dropHeaderBlock();
    this.onHeaderBlock(
      continuing.flags,
      id,
      Buffer.concat(continuing.fragments, continuing.bytes),
      continuing.selfDependent,
    );
  }

  private onHeaderBlock(flags: number, id: number, block: Buffer, selfDependent: boolean): void {
    // Every block is decoded, even one that is ignored: it may change the HPACK table the next ones refer to.
    const fields = this.fields;
    fields.reset();
    try {
      this.decoder.decode(block, fields.onField, MAX_HEADER_LIST_BYTES);
    } catch (error) {
      if (error instanceof HpackError) {
        throw new ConnectionError(Http2ErrorCode.COMPRESSION_ERROR, `bad header block: ${error.message}`);
      }
      throw error;
    }
    const stream = this.streams.get(id);
    if (stream) {
      // Trailers: they must end the stream and carry no pseudo-header (RFC 9113 §8.1).
      if (stream.remoteEnded) return this.resetStream(stream, Http2ErrorCode.STREAM_CLOSED);
      if (!(flags & FLAG_END_STREAM) || fields.malformed || fields.pseudo !== 0) {
        return this.resetStream(stream, Http2ErrorCode.PROTOCOL_ERROR);
      }
      return this.remoteEnd(stream);
    }
    if (id <= this.lastStreamId) return this.onClosedStream(id);
    this.lastStreamId = id;
    if (this.draining) {
      // Past our GOAWAY's last stream: never processed, so the client may send it elsewhere. Its later frames are
      // then those of a closed stream, not of an idle one (which would be a connection error).
      this.writeRstStream(id, Http2ErrorCode.REFUSED_STREAM);
      return;
    }
    if (this.peerGoaway) return;
    // A malformed request is a stream error (RFC 9113 §8.1.1).
    const refused =
      fields.malformed ||
      (fields.complete() ? '' : 'no :method, :scheme or :path') ||
      (selfDependent ? 'the stream depends on itself' : '');
    if (refused) {
      this.options.onError?.(new Error(`HTTP/2 stream ${id} refused (PROTOCOL_ERROR): ${refused}`));
      this.writeRstStream(id, Http2ErrorCode.PROTOCOL_ERROR);
      // A stream refused costs as much as one opened and reset, and no client sends malformed requests by mistake.
      this.count(this.earlyResets, 'maxEarlyResets');
      return;
    }
    if (this.streams.size >= this.limits.maxConcurrentStreams) {
      // The client may retry it elsewhere (RFC 9113 §8.7); one that keeps doing it is flooding.
      this.writeRstStream(id, Http2ErrorCode.REFUSED_STREAM);
      this.count(this.earlyResets, 'maxEarlyResets');
      return;
    }
    const opened = new Stream(this, id, this.peerInitialWindow);
    opened.expectedBytes = fields.contentLength;
    this.streams.set(id, opened);
    opened.handler = this.options.onStream(opened, fields.head);
    if (!opened.gone && flags & FLAG_END_STREAM) this.remoteEnd(opened);
  }

  private onPriority(id: number, payload: Buffer): void {
    if (id === 0) throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, 'PRIORITY on stream 0');
    const code =
      payload.length !== 5
        ? Http2ErrorCode.FRAME_SIZE_ERROR
        : (payload.readUInt32BE(0) & 0x7fffffff) === id
          ? Http2ErrorCode.PROTOCOL_ERROR // a stream depending on itself (RFC 9113 §5.3.1)
          : Http2ErrorCode.NO_ERROR;
    if (code === Http2ErrorCode.NO_ERROR) return; // priorities are not acted on
    const stream = this.streams.get(id);
    if (stream) this.resetStream(stream, code);
    else this.writeRstStream(id, code);
  }

  private onReset(id: number, payload: Buffer): void {
    if (id === 0) throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (payload.length !== 4)
      throw new ConnectionError(Http2ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM of a wrong size');
    const stream = this.streams.get(id);
    if (!stream) {
      if (id > this.lastStreamId)
        throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, `RST_STREAM on idle stream ${id}`);
      return this.count(this.strayFrames, 'maxStrayFrames');
    }
    this.remove(stream);
    this.closedByClient.add(id, CLOSED_BY_RESET);
    stream.handler.onAbort();
    if (!stream.answered) {
      this.count(this.earlyResets, 'maxEarlyResets');
    }
  }

  /** `address:port` of the client, for the log of a connection ended for its misbehaviour. */
  private peer(): string | undefined {
    const { remoteAddress, remotePort } = this.socket as Partial<Socket>;
    return remoteAddress === undefined ? undefined : `${remoteAddress}:${String(remotePort)}`;
  }

  /** Counts one event of a kind of flood; over its limit, the connection ends with ENHANCE_YOUR_CALM. */
  private count(meter: FloodMeter, limit: FloodLimit): void {
    if (meter.add()) {
      throw new ConnectionError(
        Http2ErrorCode.ENHANCE_YOUR_CALM,
        `flood: over ${limit} ${this.limits[limit]} per ${this.limits.floodWindowMs} ms`,
      );
    }
  }

  /**
   * DATA or HEADERS on a stream no longer open. After the client's own END_STREAM that is a connection error, after
   * its RST_STREAM a stream error (RFC 9113 §5.1). Frames on a stream the server ended are ignored: the client may
   * have sent them before it learned.
   */
  private onClosedStream(id: number): void {
    const closed = this.closedByClient.get(id);
    if (closed === CLOSED_BY_END_STREAM) {
      throw new ConnectionError(Http2ErrorCode.STREAM_CLOSED, `a frame on stream ${id} after its END_STREAM`);
    }
    if (closed === CLOSED_BY_RESET) {
      this.count(this.strayFrames, 'maxStrayFrames');
      this.writeRstStream(id, Http2ErrorCode.STREAM_CLOSED);
    }
  }

  private onSettings(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (flags & FLAG_ACK) {
      if (payload.length !== 0)
        throw new ConnectionError(Http2ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS ack with a payload');
      return;
    }
    if (payload.length % 6 !== 0)
      throw new ConnectionError(Http2ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS of a wrong size');
    this.count(this.settingsFrames, 'maxSettings');
    for (let at = 0; at < payload.length; at += 6) {
      const setting = payload.readUInt16BE(at);
      const value = payload.readUInt32BE(at + 2);
      if (setting === SETTINGS_ENABLE_PUSH && value > 1) {
        throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, `SETTINGS_ENABLE_PUSH ${value}`);
      } else if (setting === SETTINGS_INITIAL_WINDOW_SIZE) {
        if (value > MAX_WINDOW) {
          throw new ConnectionError(
            Http2ErrorCode.FLOW_CONTROL_ERROR,
            `SETTINGS_INITIAL_WINDOW_SIZE ${value}`,
          );
        }
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const stream of this.streams.values()) {
          stream.sendWindow += delta;
          if (stream.sendWindow > MAX_WINDOW) {
            throw new ConnectionError(Http2ErrorCode.FLOW_CONTROL_ERROR, 'a stream window over 2^31-1');
          }
        }
      } else if (setting === SETTINGS_MAX_FRAME_SIZE) {
        if (value < MAX_FRAME_BYTES || value > 0xffffff) {
          throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE ${value}`);
        }
        this.peerMaxFrameBytes = value;
      }
      // The rest do not concern this server: it never pushes, and it encodes headers without a dynamic table.
    }
    this.writeFrame(SETTINGS, FLAG_ACK, 0, EMPTY);
    this.drainBlocked();
  }

  private onPing(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, 'PING on a stream');
    if (payload.length !== 8)
      throw new ConnectionError(Http2ErrorCode.FRAME_SIZE_ERROR, 'PING of a wrong size');
    if (flags & FLAG_ACK) return;
    this.count(this.pings, 'maxPings');
    this.writeFrame(PING, FLAG_ACK, 0, payload);
  }

  private onGoaway(id: number, payload: Buffer): void {
    if (id !== 0) throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, 'GOAWAY on a stream');
    if (payload.length < 8)
      throw new ConnectionError(Http2ErrorCode.FRAME_SIZE_ERROR, 'GOAWAY of a wrong size');
    this.peerGoaway = true;
    this.endIfIdle();
  }

  private onWindowUpdate(id: number, payload: Buffer): void {
    if (payload.length !== 4)
      throw new ConnectionError(Http2ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE of a wrong size');
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (id === 0) {
      if (increment === 0) throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.sendWindow += increment;
      if (this.sendWindow > MAX_WINDOW) {
        throw new ConnectionError(Http2ErrorCode.FLOW_CONTROL_ERROR, 'the connection window over 2^31-1');
      }
      return this.drainBlocked();
    }
    const stream = this.streams.get(id);
    if (!stream) {
      if (id > this.lastStreamId) {
        throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${id}`);
      }
      return this.count(this.strayFrames, 'maxStrayFrames');
    }
    if (increment === 0) return this.resetStream(stream, Http2ErrorCode.PROTOCOL_ERROR);
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW) return this.resetStream(stream, Http2ErrorCode.FLOW_CONTROL_ERROR);
    if (stream.blocked) this.drain(stream);
  }

  // ---- stream lifecycle ------------------------------------------------------------------------------------------

  private remoteEnd(stream: Stream): void {
    if (stream.expectedBytes >= 0 && stream.receivedBytes !== stream.expectedBytes) {
      return this.resetStream(stream, Http2ErrorCode.PROTOCOL_ERROR); // less than its content-length
    }
    // Marked first: if the handler ends the call from `end`, both sides are done and no reset follows.
    stream.remoteEnded = true;
    stream.handler.onEnd();
    if (stream.localEnded && !stream.blocked && !stream.gone) this.remove(stream);
  }

  /**
   * Sends the server's last header block (END_STREAM) on a stream still open; one the client has not half-closed is
   * then reset.
   */
  endStream(stream: Stream, block: Buffer): void {
    this.writeHeaders(stream.id, block, true);
    if (!stream.remoteEnded) this.writeRstStream(stream.id, Http2ErrorCode.NO_ERROR);
    this.remove(stream);
  }

  private resetStream(stream: Stream, code: number): void {
    this.writeRstStream(stream.id, code);
    this.remove(stream);
    stream.handler.onAbort();
  }

  private remove(stream: Stream): void {
    if (stream.remoteEnded) this.closedByClient.add(stream.id, CLOSED_BY_END_STREAM);
    stream.gone = true;
    this.streams.delete(stream.id);
    this.blockedStreams.delete(stream);
    // The client's RST_STREAM and WINDOW_UPDATE may still be on their way.
    this.strayFrames.credit(2);
    // A stream served allows one client cancel more: a gateway whose clients give up on some requests (the EPP
    // answers an ext_proc call only once it has the whole body) resets a share of its streams, an attack nearly all.
    if (stream.answered) this.earlyResets.credit(1);
    if (this.streams.size === 0) this.lastActive = Date.now();
    this.endIfIdle();
  }

  private endIfIdle(): void {
    if ((this.peerGoaway || this.draining) && this.streams.size === 0 && !this.closing) {
      this.flush();
      this.closing = true;
      this.socket.end();
    }
  }

  /** The socket is gone or ending: every stream still open is aborted. */
  private teardown(): void {
    this.closing = true;
    this.stopTimer();
    this.dropHeaderBlock();
    this.rest = null;
    const open = [...this.streams.values()];
    this.streams.clear();
    this.blockedStreams.clear();
    for (const stream of open) {
      stream.gone = true;
      stream.handler.onAbort();
    }
  }

  private goAway(code: number, reason: string): void {
    if (this.closing) return;
    const payload = Buffer.allocUnsafe(8 + Buffer.byteLength(reason, 'latin1'));
    payload.writeUInt32BE(this.lastStreamId, 0);
    payload.writeUInt32BE(code, 4);
    payload.write(reason, 8, 'latin1');
    this.writeFrame(GOAWAY, 0, 0, payload);
    this.flush();
    this.closing = true;
    this.stopTimer();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  // ---- timers ----------------------------------------------------------------------------------------------------

  private readonly prefaceTimedOut = (): void => {
    this.timer = null;
    if (this.settingsRead || this.closing) return;
    this.options.onError?.(
      new Error(
        `HTTP/2 connection closed: no preface and SETTINGS within ${this.limits.prefaceTimeoutMs} ms`,
      ),
    );
    this.flush();
    this.teardown();
    this.socket.destroy();
  };

  private startIdleTimer(): void {
    this.stopTimer();
    if (this.limits.idleTimeoutMs > 0) {
      this.timer = setTimeout(this.idleCheck, this.limits.idleTimeoutMs).unref();
    }
  }

  /** One timer per connection, re-armed from when the client was last heard, rather than reset on every frame. */
  private readonly idleCheck = (): void => {
    this.timer = null;
    if (this.closing) return;
    const now = Date.now();
    if (this.streams.size > 0) this.lastActive = now;
    const quiet = now - this.lastActive;
    if (quiet >= this.limits.idleTimeoutMs) {
      this.goAway(Http2ErrorCode.NO_ERROR, 'idle');
      return;
    }
    this.timer = setTimeout(this.idleCheck, this.limits.idleTimeoutMs - quiet).unref();
  };

  private stopTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  // ---- writing ---------------------------------------------------------------------------------------------------

  /** A header block in one HEADERS frame, or, when larger than the client's frame size, followed by CONTINUATIONs. */
  writeHeaders(id: number, block: Buffer, endStream: boolean): void {
    const max = this.peerMaxFrameBytes;
    const endStreamFlag = endStream ? FLAG_END_STREAM : 0;
    if (block.length <= max) {
      this.writeFrame(HEADERS, FLAG_END_HEADERS | endStreamFlag, id, block);
      return;
    }
    // Nothing can come between these frames: they are queued together, in this turn.
    this.writeFrame(HEADERS, endStreamFlag, id, block.subarray(0, max));
    for (let at = max; at < block.length; at += max) {
      const end = Math.min(at + max, block.length);
      this.writeFrame(CONTINUATION, end === block.length ? FLAG_END_HEADERS : 0, id, block.subarray(at, end));
    }
  }

  /** Sends what the windows allow now; the rest waits in `stream.blocked` for WINDOW_UPDATE. */
  writeData(stream: Stream, data: Buffer): void {
    let offset = 0;
    while (offset < data.length) {
      const size = Math.min(data.length - offset, this.peerMaxFrameBytes, this.sendWindow, stream.sendWindow);
      if (size <= 0) {
        stream.blocked = [data.subarray(offset)];
        this.blockedStreams.add(stream);
        return;
      }
      this.writeFrame(
        DATA,
        0,
        stream.id,
        offset === 0 && size === data.length ? data : data.subarray(offset, offset + size),
      );
      this.sendWindow -= size;
      stream.sendWindow -= size;
      offset += size;
    }
  }

  private drain(stream: Stream): void {
    const queue = stream.blocked!;
    stream.blocked = null;
    this.blockedStreams.delete(stream);
    for (let i = 0; i < queue.length; i++) {
      this.writeData(stream, queue[i]!);
      if (stream.blocked) {
        (stream.blocked as Buffer[]).push(...queue.slice(i + 1));
        return;
      }
    }
    const trailers = stream.blockedTrailers;
    if (trailers) {
      stream.blockedTrailers = null;
      this.endStream(stream, trailers);
    }
  }

  private drainBlocked(): void {
    for (const stream of this.blockedStreams) {
      if (this.sendWindow <= 0) return;
      if (stream.sendWindow > 0) this.drain(stream);
    }
  }

  private writeRstStream(id: number, code: number): void {
    const payload = Buffer.allocUnsafe(4);
    payload.writeUInt32BE(code, 0);
    this.writeFrame(RST_STREAM, 0, id, payload);
  }

  private writeWindowUpdate(id: number, increment: number): void {
    const payload = Buffer.allocUnsafe(4);
    payload.writeUInt32BE(increment, 0);
    this.writeFrame(WINDOW_UPDATE, 0, id, payload);
  }

  private writeFrame(type: number, flags: number, id: number, payload: Buffer): void {
    const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
    header.writeUIntBE(payload.length, 0, 3);
    header[3] = type;
    header[4] = flags;
    header.writeUInt32BE(id, 5);
    this.out.push(header);
    this.outBytes += FRAME_HEADER_BYTES;
    if (payload.length > 0) {
      this.out.push(payload);
      this.outBytes += payload.length;
    }
    if (!this.flushQueued) {
      this.flushQueued = true;
      // Everything written while this turn's frames are read, and by handlers' promise continuations, goes out in
      // one write.
      queueMicrotask(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.flushQueued = false;
    if (this.out.length === 0) return;
    const bytes = this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out, this.outBytes);
    this.out = [];
    this.outBytes = 0;
    const socket = this.socket;
    if (socket.destroyed || !socket.writable) return;
    socket.write(bytes);
    // A client that does not read its answers (PING acks, responses) stops being read, rather than growing our memory.
    if (!this.paused && socket.writableLength > this.pauseAboveBytes) {
      this.paused = true;
      socket.pause();
      socket.once('drain', this.resume);
    }
  };

  private readonly resume = (): void => {
    this.paused = false;
    this.socket.resume();
  };
}

/**
 * A frame's content: without the Pad Length octet and padding when `padded`, and without the `skip` bytes of fields
 * that come before the content (HEADERS' priority fields).
 */
function frameContent(payload: Buffer, padded: boolean, skip: number): Buffer {
  let start = skip;
  let end = payload.length;
  if (padded) {
    if (payload.length < 1)
      throw new ConnectionError(Http2ErrorCode.FRAME_SIZE_ERROR, 'a padded frame without padding');
    start += 1;
    end -= payload[0]!;
  }
  if (start > end) {
    throw new ConnectionError(
      Http2ErrorCode.PROTOCOL_ERROR,
      'padding or priority fields larger than the frame',
    );
  }
  return start === 0 && end === payload.length ? payload : payload.subarray(start, end);
}

function codeName(code: number): string {
  for (const [name, value] of Object.entries(Http2ErrorCode)) if (value === code) return name;
  return `0x${code.toString(16)}`;
}
