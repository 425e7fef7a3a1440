/**
 * The HTTP/2 connection layer on real loopback sockets: with `node:http2`'s client (nghttp2, the other side of a
 * well-behaved peer) for flow control in both directions, and with raw frames for what that client never sends
 * (padding, priority fields, CONTINUATION, protocol violations, garbage).
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as connectHttp2, type ClientHttp2Session } from 'node:http2';
import { connect as connectTcp, createServer, type Server, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeHeaderBlock, HpackDecoder } from './hpack.js';
import {
  Http2Connection,
  Http2ErrorCode,
  Http2GoawayError,
  HeaderBlockBudget,
  type Http2Limits,
  type ServerStream,
  type StreamHandler,
} from './http2-connection.js';
import { CONNECTION_PREFACE as PREFACE, encodeFrame } from '../../test/harness/http2-frames.js';

const OK_HEADERS = encodeHeaderBlock([[':status', '200']]);
const TRAILERS = encodeHeaderBlock([['x-done', '1']]);

/**
 * Echo: the response repeats the request body once the client half-closes, then trailers. The path `/size/N` answers
 * N bytes instead, and `/hold` answers nothing until the client half-closes.
 */
function echo(events: string[]) {
  return (stream: ServerStream, head: { method: string; path: string }): StreamHandler => {
    const chunks: Buffer[] = [];
    events.push(`open ${head.method} ${head.path}`);
    // `/answer` answers its headers at once and keeps the stream open, as the EPP does with an ext_proc call.
    if (head.path === '/answer') stream.sendHeaders(OK_HEADERS, false);
    return {
      onData: (chunk) => chunks.push(Buffer.from(chunk)),
      onEnd: () => {
        events.push('end');
        stream.sendHeaders(OK_HEADERS, false);
        const size = /^\/size\/(\d+)$/.exec(head.path);
        stream.sendData(size ? Buffer.alloc(Number(size[1]), 'x') : Buffer.concat(chunks));
        stream.sendTrailers(TRAILERS);
      },
      onAbort: () => events.push('abort'),
    };
  };
}

interface Frame {
  type: number;
  flags: number;
  id: number;
  payload: Buffer;
}

/** A raw client: writes bytes, and parses what comes back into frames. */
class RawClient {
  readonly frames: Frame[] = [];
  closed = false;
  private buffer = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      while (this.buffer.length >= 9) {
        const length = this.buffer.readUIntBE(0, 3);
        if (this.buffer.length < 9 + length) break;
        this.frames.push({
          type: this.buffer[3]!,
          flags: this.buffer[4]!,
          id: this.buffer.readUInt32BE(5) & 0x7fffffff,
          payload: this.buffer.subarray(9, 9 + length),
        });
        this.buffer = this.buffer.subarray(9 + length);
      }
      this.wake();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }
  static async connect(port: number, withPreface = true): Promise<RawClient> {
    const socket = connectTcp(port, '127.0.0.1');
    socket.setNoDelay(true);
    await new Promise((resolve) => socket.once('connect', resolve));
    const client = new RawClient(socket);
    if (withPreface) client.write(Buffer.concat([PREFACE, encodeFrame(4, 0, 0)]));
    return client;
  }
  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }
  destroy(): void {
    this.socket.destroy();
  }
  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
  /** Waits until `predicate` holds for the frames so far (or the socket closed); fails after 5 s. */
  async until(predicate: (frames: Frame[]) => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 5000;
    while (!predicate(this.frames)) {
      if (this.closed) throw new Error(`the connection closed before ${what}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50).unref();
      });
    }
  }
  async closedNow(): Promise<void> {
    const deadline = Date.now() + 5000;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('the server never closed the connection');
      await sleep(10);
    }
  }
  goaway(): { lastStreamId: number; code: number } | undefined {
    const frame = this.frames.find((f) => f.type === 7);
    return frame && { lastStreamId: frame.payload.readUInt32BE(0), code: frame.payload.readUInt32BE(4) };
  }
}

/** HEADERS for a POST to `path`, as a header block. */
function requestBlock(path: string): Buffer {
  return encodeHeaderBlock([
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', path],
    [':authority', 'test'],
  ]);
}

/** The decoded fields of each HEADERS frame the server sent on stream `id`. */
function headersOn(frames: Frame[], id: number): [string, string][][] {
  const decoder = new HpackDecoder();
  return frames
    .filter((f) => f.type === 1 && f.id === id)
    .map((f) => {
      const fields: [string, string][] = [];
      decoder.decode(f.payload, (name, value) => fields.push([name, value]));
      return fields;
    });
}

function dataOn(frames: Frame[], id: number): Buffer {
  return Buffer.concat(frames.filter((f) => f.type === 0 && f.id === id).map((f) => f.payload));
}

describe('HTTP/2 connection', () => {
  let server: Server;
  let port: number;
  const events: string[] = [];
  const errors: Error[] = [];

  before(async () => {
    server = createServer((socket) => {
      new Http2Connection(socket, { onStream: echo(events), onError: (error) => errors.push(error) });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });

  after(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  function clear(): void {
    events.length = 0;
    errors.length = 0;
  }

  async function request(
    session: ClientHttp2Session,
    path: string,
    body: Buffer,
  ): Promise<{ status: unknown; body: Buffer; trailers: Record<string, unknown> }> {
    const stream = session.request({ ':method': 'POST', ':path': path });
    stream.end(body);
    const chunks: Buffer[] = [];
    let status: unknown;
    let trailers: Record<string, unknown> = {};
    stream.on('response', (headers) => (status = headers[':status']));
    stream.on('trailers', (t) => (trailers = { ...t }));
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    await new Promise((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    return { status, body: Buffer.concat(chunks), trailers };
  }

  test('a request body larger than the stream window arrives whole (the server tops up both windows)', async () => {
    clear();
    const session = connectHttp2(`http://127.0.0.1:${port}`);
    // 40 MiB: 40 times the stream window and more than twice the connection window.
    const body = Buffer.alloc(40 << 20);
    for (let i = 0; i < body.length; i += 4096) body.writeUInt32BE(i, i);
    const response = await request(session, '/echo', body);
    assert.equal(response.status, 200);
    assert.ok(response.body.equals(body), 'the echo matches the request byte for byte');
    assert.equal(response.trailers['x-done'], '1');
    session.close();
    assert.deepEqual(errors, []);
  });

  test("a response larger than the client's windows waits for its WINDOW_UPDATEs, trailers after the data", async () => {
    clear();
    // A tiny stream window: the server must stop every 1,000 bytes and resume on each WINDOW_UPDATE.
    const session = connectHttp2(`http://127.0.0.1:${port}`, { settings: { initialWindowSize: 1000 } });
    const [small, large] = await Promise.all([
      request(session, '/size/10', Buffer.from('a')),
      request(session, `/size/${300_000}`, Buffer.from('b')),
    ]);
    assert.equal(small.body.length, 10);
    assert.equal(large.body.length, 300_000);
    assert.equal(large.trailers['x-done'], '1');
    session.close();
    assert.deepEqual(errors, []);
  });

  test('padding, priority fields and CONTINUATION in the request are understood', async () => {
    clear();
    const client = await RawClient.connect(port);
    const block = requestBlock('/padded');
    // HEADERS with PADDED and PRIORITY, the block split over two CONTINUATIONs.
    const padding = 7;
    const first = Buffer.concat([
      Buffer.from([padding]),
      Buffer.from([0, 0, 0, 0, 16]), // depends on stream 0, weight 16
      block.subarray(0, 3),
      Buffer.alloc(padding),
    ]);
    client.write(encodeFrame(1, 0x8 | 0x20, 1, first));
    client.write(encodeFrame(9, 0, 1, block.subarray(3, 6)));
    client.write(encodeFrame(9, 0x4, 1, block.subarray(6)));
    // DATA padded, then END_STREAM on an empty DATA frame.
    client.write(
      encodeFrame(0, 0x8, 1, Buffer.concat([Buffer.from([3]), Buffer.from('hello'), Buffer.alloc(3)])),
    );
    client.write(encodeFrame(0, 0x1, 1));
    await client.until(
      (frames) => frames.some((f) => f.type === 1 && f.id === 1 && f.flags & 0x1),
      'trailers',
    );
    assert.deepEqual(headersOn(client.frames, 1), [[[':status', '200']], [['x-done', '1']]]);
    assert.equal(dataOn(client.frames, 1).toString(), 'hello');
    assert.deepEqual(events, ['open POST /padded', 'end']);
    client.destroy();
  });

  test('the server answers PING and acknowledges SETTINGS', async () => {
    const client = await RawClient.connect(port);
    client.write(encodeFrame(6, 0, 0, Buffer.from('12345678')));
    await client.until((frames) => frames.some((f) => f.type === 6), 'the PING ack');
    const ping = client.frames.find((f) => f.type === 6)!;
    assert.equal(ping.flags, 1);
    assert.equal(ping.payload.toString(), '12345678');
    assert.ok(
      client.frames.some((f) => f.type === 4 && f.flags === 1),
      'our SETTINGS were acknowledged',
    );
    client.destroy();
  });

  test('a client GOAWAY lets open streams finish, then the server closes', async () => {
    clear();
    const client = await RawClient.connect(port);
    client.write(encodeFrame(1, 0x4, 1, requestBlock('/hold')));
    client.write(encodeFrame(7, 0, 0, Buffer.alloc(8)));
    client.write(encodeFrame(0, 0x1, 1, Buffer.from('last')));
    await client.closedNow();
    assert.equal(dataOn(client.frames, 1).toString(), 'last');
    assert.deepEqual(events, ['open POST /hold', 'end']);
  });

  const violations: [string, Buffer, number][] = [
    ['no preface', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), Http2ErrorCode.PROTOCOL_ERROR],
    ['a first frame other than SETTINGS', Buffer.concat([PREFACE, encodeFrame(6, 0, 0, Buffer.alloc(8))]), 1],
    ['DATA on stream 0', encodeFrame(0, 0, 0, Buffer.from('x')), Http2ErrorCode.PROTOCOL_ERROR],
    ['DATA on an idle stream', encodeFrame(0, 0, 5, Buffer.from('x')), Http2ErrorCode.PROTOCOL_ERROR],
    ['HEADERS on an even stream', encodeFrame(1, 0x4, 2, requestBlock('/x')), Http2ErrorCode.PROTOCOL_ERROR],
    ['a frame over 16 KiB', encodeFrame(0, 0, 1, Buffer.alloc(16_385)), Http2ErrorCode.FRAME_SIZE_ERROR],
    ['a bad HPACK block', encodeFrame(1, 0x4, 1, Buffer.from([0x80])), Http2ErrorCode.COMPRESSION_ERROR],
    [
      'CONTINUATION out of the blue',
      encodeFrame(9, 0x4, 1, requestBlock('/x')),
      Http2ErrorCode.PROTOCOL_ERROR,
    ],
    [
      'a header block interrupted',
      Buffer.concat([encodeFrame(1, 0, 1, requestBlock('/x')), encodeFrame(6, 0, 0, Buffer.alloc(8))]),
      Http2ErrorCode.PROTOCOL_ERROR,
    ],
    ['PUSH_PROMISE from a client', encodeFrame(5, 0x4, 1, Buffer.alloc(4)), Http2ErrorCode.PROTOCOL_ERROR],
    ['SETTINGS of a wrong size', encodeFrame(4, 0, 0, Buffer.alloc(5)), Http2ErrorCode.FRAME_SIZE_ERROR],
    ['PING of a wrong size', encodeFrame(6, 0, 0, Buffer.alloc(7)), Http2ErrorCode.FRAME_SIZE_ERROR],
    ['a zero connection WINDOW_UPDATE', encodeFrame(8, 0, 0, Buffer.alloc(4)), Http2ErrorCode.PROTOCOL_ERROR],
    [
      'a connection window over 2^31-1',
      encodeFrame(8, 0, 0, Buffer.from([0x7f, 0xff, 0xff, 0xff])),
      Http2ErrorCode.FLOW_CONTROL_ERROR,
    ],
    [
      'padding longer than the frame',
      encodeFrame(1, 0x4 | 0x8, 1, Buffer.from([200, 0x82])),
      Http2ErrorCode.PROTOCOL_ERROR,
    ],
  ];
  for (const [what, bytes, code] of violations) {
    test(`${what} → GOAWAY(${code}) and the connection closes; the server goes on`, async () => {
      clear();
      const withPreface = what !== 'no preface' && what !== 'a first frame other than SETTINGS';
      const client = await RawClient.connect(port, withPreface);
      client.write(bytes);
      await client.closedNow();
      assert.equal(client.goaway()?.code, code, JSON.stringify(client.frames.map((f) => f.type)));
      assert.equal(errors.length, 1, 'reported once');
      // The next connection is served as usual.
      const session = connectHttp2(`http://127.0.0.1:${port}`);
      assert.equal(
        (await request(session, '/echo', Buffer.from('still here'))).body.toString(),
        'still here',
      );
      session.close();
    });
  }

  test('a stream the client resets is aborted; its frames after the reset get RST_STREAM(STREAM_CLOSED)', async () => {
    clear();
    const client = await RawClient.connect(port);
    client.write(encodeFrame(1, 0x4, 1, requestBlock('/echo')));
    client.write(encodeFrame(3, 0, 1, Buffer.from([0, 0, 0, 8])));
    client.write(encodeFrame(0, 0, 1, Buffer.from('late')));
    client.write(encodeFrame(8, 0, 1, Buffer.from([0, 0, 0, 1])));
    client.write(encodeFrame(6, 0, 0, Buffer.alloc(8)));
    await client.until((frames) => frames.some((f) => f.type === 6), 'the PING ack');
    assert.deepEqual(events, ['open POST /echo', 'abort']);
    assert.equal(client.goaway(), undefined);
    const reset = client.frames.find((f) => f.type === 3 && f.id === 1);
    assert.equal(reset?.payload.readUInt32BE(0), Http2ErrorCode.STREAM_CLOSED);
    client.destroy();
  });

  test('DATA after the client ended the stream → GOAWAY(STREAM_CLOSED)', async () => {
    clear();
    const client = await RawClient.connect(port);
    client.write(encodeFrame(1, 0x4 | 0x1, 1, requestBlock('/echo')));
    await client.until(
      (frames) => frames.some((f) => f.type === 1 && f.id === 1 && f.flags & 0x1),
      'trailers',
    );
    client.write(encodeFrame(0, 0, 1, Buffer.from('after the end')));
    await client.closedNow();
    assert.equal(client.goaway()?.code, Http2ErrorCode.STREAM_CLOSED);
  });

  const malformed: [string, [string, string][]][] = [
    ['an uppercase field name', [['X-Big', '1']]],
    ['a connection-specific field', [['connection', 'keep-alive']]],
    ['te other than trailers', [['te', 'gzip']]],
    ['a response pseudo-header', [[':status', '200']]],
    ['a duplicated :path', [[':path', '/again']]],
    [
      'a pseudo-header after a regular field',
      [
        ['x-a', '1'],
        [':authority', 'late'],
      ],
    ],
  ];
  for (const [what, extra] of malformed) {
    test(`a request with ${what} is refused with RST_STREAM(PROTOCOL_ERROR), and reported`, async () => {
      clear();
      const client = await RawClient.connect(port);
      const fields: [string, string][] = [
        [':method', 'POST'],
        [':scheme', 'http'],
        [':path', '/echo'],
      ];
      client.write(encodeFrame(1, 0x4 | 0x1, 1, encodeHeaderBlock([...fields, ...extra])));
      await client.until((frames) => frames.some((f) => f.type === 3 && f.id === 1), 'RST_STREAM');
      assert.equal(
        client.frames.find((f) => f.type === 3)!.payload.readUInt32BE(0),
        Http2ErrorCode.PROTOCOL_ERROR,
      );
      assert.deepEqual(events, [], 'the stream never reached the handler');
      assert.match(String(errors[0]?.message), /^HTTP\/2 stream 1 refused \(PROTOCOL_ERROR\)/);
      client.destroy();
    });
  }

  test('a body that does not match its content-length → RST_STREAM(PROTOCOL_ERROR) and abort', async () => {
    clear();
    const client = await RawClient.connect(port);
    const block = encodeHeaderBlock([
      [':method', 'POST'],
      [':scheme', 'http'],
      [':path', '/echo'],
      ['content-length', '10'],
    ]);
    client.write(encodeFrame(1, 0x4, 1, block));
    client.write(encodeFrame(0, 0x1, 1, Buffer.from('short')));
    await client.until((frames) => frames.some((f) => f.type === 3 && f.id === 1), 'RST_STREAM');
    assert.equal(
      client.frames.find((f) => f.type === 3)!.payload.readUInt32BE(0),
      Http2ErrorCode.PROTOCOL_ERROR,
    );
    assert.deepEqual(events, ['open POST /echo', 'abort']);
    client.destroy();
  });

  test('a stream without :path is refused with RST_STREAM(PROTOCOL_ERROR); the connection goes on', async () => {
    clear();
    const client = await RawClient.connect(port);
    client.write(encodeFrame(1, 0x4 | 0x1, 1, encodeHeaderBlock([[':method', 'POST']])));
    client.write(encodeFrame(1, 0x4, 3, requestBlock('/echo')));
    client.write(encodeFrame(0, 0x1, 3, Buffer.from('ok')));
    await client.until(
      (frames) => frames.some((f) => f.type === 1 && f.id === 3 && f.flags & 0x1),
      'trailers',
    );
    const reset = client.frames.find((f) => f.type === 3 && f.id === 1);
    assert.equal(reset?.payload.readUInt32BE(0), Http2ErrorCode.PROTOCOL_ERROR);
    assert.equal(dataOn(client.frames, 3).toString(), 'ok');
    client.destroy();
  });

  test('random frames never crash the server: each connection gets answers or a GOAWAY', async () => {
    clear();
    let seed = 42;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 200; round++) {
      const client = await RawClient.connect(port);
      const frames: Buffer[] = [];
      for (let i = 0; i < 1 + random(8); i++) {
        const type = random(11);
        const id = random(4) === 0 ? 0 : 1 + 2 * random(3);
        const payload =
          type === 1 && random(2) === 0
            ? requestBlock('/echo')
            : Buffer.from(Array.from({ length: random(24) }, () => random(256)));
        frames.push(encodeFrame(type, random(64), id, payload));
      }
      frames.push(encodeFrame(6, 0, 0, Buffer.from('probe!!!')));
      client.write(Buffer.concat(frames));
      await client.until(
        (received) =>
          client.closed || received.some((f) => f.type === 6 && f.payload.toString() === 'probe!!!'),
        'a PING ack or the connection closed',
      );
      client.destroy();
    }
    const session = connectHttp2(`http://127.0.0.1:${port}`);
    assert.equal((await request(session, '/echo', Buffer.from('alive'))).body.toString(), 'alive');
    session.close();
    assert.ok(
      errors.every((error) => /^HTTP\/2 (connection closed|stream \d+ refused)/.test(error.message)),
      String(errors.find((error) => !/^HTTP\/2 /.test(error.message))),
    );
  });
});

/**
 * Two ends of an in-memory connection. A write completes only once the other end reads it, as on a socket whose
 * peer stopped reading (without the kernel's buffers, which would hide it): what the reader leaves unread stays
 * queued in the writer's buffer (`writableLength`).
 */
function duplexPair(): [Duplex, Duplex] {
  class End extends Duplex {
    peer!: End;
    /** The peer's write waiting for this end to read. */
    waiting: (() => void) | null = null;
    override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
      // Delivered on a later turn of the event loop, as a socket's reads are.
      setImmediate(() => {
        if (this.peer.push(chunk)) callback();
        else this.peer.waiting = callback;
      });
    }
    override _read(): void {
      const callback = this.waiting;
      this.waiting = null;
      callback?.();
    }
    override _final(callback: () => void): void {
      this.peer.push(null);
      callback();
    }
  }
  const a = new End();
  const b = new End();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/** Resolves once `predicate` holds, checked every 20 ms; fails after 5 s. */
async function until(predicate: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('HTTP/2 connection limits', () => {
  const events: string[] = [];
  const errors: Error[] = [];
  let server: Server | undefined;
  const sockets = new Set<Socket>();

  /** A server with these limits; each test gets its own. */
  async function listen(
    limits: Partial<Http2Limits>,
    headerBlockBudget?: HeaderBlockBudget,
  ): Promise<number> {
    events.length = 0;
    errors.length = 0;
    server = createServer((socket) => {
      sockets.add(socket);
      // As the gRPC server does: these tests go back and forth one frame at a time.
      socket.setNoDelay(true);
      new Http2Connection(socket, {
        onStream: echo(events),
        onError: (error) => errors.push(error),
        limits,
        headerBlockBudget,
      });
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return (server.address() as { port: number }).port;
  }

  afterEach(async () => {
    // A failed test may leave its connection open, which would keep `close` waiting.
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    if (server) await new Promise((resolve) => server!.close(resolve));
    server = undefined;
  });

  test('SETTINGS_MAX_CONCURRENT_STREAMS is advertised; a stream beyond it gets RST_STREAM(REFUSED_STREAM) and no handler', async () => {
    const port = await listen({ maxConcurrentStreams: 2 });
    const client = await RawClient.connect(port);
    client.write(encodeFrame(1, 0x4, 1, requestBlock('/hold')));
    client.write(encodeFrame(1, 0x4, 3, requestBlock('/hold')));
    client.write(encodeFrame(1, 0x4, 5, requestBlock('/refused')));
    await client.until((frames) => frames.some((f) => f.type === 3 && f.id === 5), 'RST_STREAM on stream 5');
    const settings = client.frames.find((f) => f.type === 4 && f.flags === 0)!;
    const advertised = new Map<number, number>();
    for (let at = 0; at < settings.payload.length; at += 6) {
      advertised.set(settings.payload.readUInt16BE(at), settings.payload.readUInt32BE(at + 2));
    }
    assert.equal(advertised.get(0x3), 2, 'SETTINGS_MAX_CONCURRENT_STREAMS');
    const reset = client.frames.find((f) => f.type === 3 && f.id === 5)!;
    assert.equal(reset.payload.readUInt32BE(0), Http2ErrorCode.REFUSED_STREAM);
    assert.deepEqual(
      events,
      ['open POST /hold', 'open POST /hold'],
      'the refused stream never reached the handler',
    );
    // Once a stream is done, a new one is served.
    client.write(encodeFrame(0, 0x1, 1, Buffer.from('one')));
    client.write(encodeFrame(1, 0x4 | 0x1, 7, requestBlock('/after')));
    await client.until(
      (frames) => frames.some((f) => f.type === 1 && f.id === 7 && f.flags & 0x1),
      'the trailers of stream 7',
    );
    assert.equal(dataOn(client.frames, 1).toString(), 'one');
    assert.equal(client.goaway(), undefined);
    client.destroy();
  });

  const floods: [string, Partial<Http2Limits>, (client: RawClient) => void | Promise<void>][] = [
    [
      'streams opened and reset before any answer (rapid reset)',
      { maxEarlyResets: 10 },
      (client) => {
        for (let id = 1; id <= 41; id += 2) {
          client.write(encodeFrame(1, 0x4, id, requestBlock('/hold')));
          client.write(encodeFrame(3, 0, id, Buffer.from([0, 0, 0, 8])));
        }
      },
    ],
    [
      'streams opened beyond SETTINGS_MAX_CONCURRENT_STREAMS',
      { maxConcurrentStreams: 1, maxEarlyResets: 10 },
      (client) => {
        for (let id = 1; id <= 41; id += 2) client.write(encodeFrame(1, 0x4, id, requestBlock('/hold')));
      },
    ],
    [
      'PINGs',
      { maxPings: 10 },
      (client) => {
        for (let i = 0; i < 20; i++) client.write(encodeFrame(6, 0, 0, Buffer.alloc(8)));
      },
    ],
    [
      'SETTINGS',
      { maxSettings: 10 },
      (client) => {
        for (let i = 0; i < 20; i++) client.write(encodeFrame(4, 0, 0));
      },
    ],
    [
      'RST_STREAM and WINDOW_UPDATE on a closed stream',
      { maxStrayFrames: 10 },
      async (client) => {
        client.write(encodeFrame(1, 0x4 | 0x1, 1, requestBlock('/echo')));
        await client.until(
          (frames) => frames.some((f) => f.type === 1 && f.id === 1 && f.flags & 0x1),
          'the trailers',
        );
        for (let i = 0; i < 20; i++) {
          client.write(encodeFrame(3, 0, 1, Buffer.from([0, 0, 0, 8])));
          client.write(encodeFrame(8, 0, 1, Buffer.from([0, 0, 0, 1])));
        }
      },
    ],
    [
      'DATA on a stream the client reset',
      { maxStrayFrames: 10 },
      (client) => {
        client.write(encodeFrame(1, 0x4, 1, requestBlock('/hold')));
        client.write(encodeFrame(3, 0, 1, Buffer.from([0, 0, 0, 8])));
        for (let i = 0; i < 20; i++) client.write(encodeFrame(0, 0, 1, Buffer.from('late')));
      },
    ],
    [
      'malformed requests, each refused with RST_STREAM',
      { maxEarlyResets: 10 },
      (client) => {
        const malformed = encodeHeaderBlock([[':method', 'POST']]);
        for (let id = 1; id <= 41; id += 2) client.write(encodeFrame(1, 0x4 | 0x1, id, malformed));
      },
    ],
    [
      'empty DATA frames without END_STREAM',
      { maxEmptyFrames: 10 },
      (client) => {
        client.write(encodeFrame(1, 0x4, 1, requestBlock('/hold')));
        for (let i = 0; i < 20; i++) client.write(encodeFrame(0, 0, 1));
      },
    ],
    [
      'empty CONTINUATION frames',
      { maxEmptyFrames: 10 },
      (client) => {
        client.write(encodeFrame(1, 0, 1, requestBlock('/hold')));
        for (let i = 0; i < 20; i++) client.write(encodeFrame(9, 0, 1));
      },
    ],
  ];
  for (const [what, limits, flood] of floods) {
    test(`a flood of ${what} → GOAWAY(ENHANCE_YOUR_CALM)`, async () => {
      const port = await listen(limits);
      const client = await RawClient.connect(port);
      await flood(client);
      await client.closedNow();
      assert.equal(client.goaway()?.code, Http2ErrorCode.ENHANCE_YOUR_CALM);
      // Once for the connection, however many frames came after (a refused stream is reported on its own).
      const goaways = errors.filter((error) => error instanceof Http2GoawayError);
      assert.equal(goaways.length, 1);
      assert.match(String(goaways[0]?.message), /ENHANCE_YOUR_CALM.*flood: over max/);
    });
  }

  test('a header block in endless empty CONTINUATIONs (CVE-2024-27316) → GOAWAY(ENHANCE_YOUR_CALM), logged with the peer', async () => {
    const port = await listen({});
    const client = await RawClient.connect(port);
    client.write(encodeFrame(1, 0, 1, requestBlock('/hold')));
    client.write(Buffer.concat(Array.from({ length: 100_000 }, () => encodeFrame(9, 0, 1))));
    await client.closedNow();
    assert.equal(client.goaway()?.code, Http2ErrorCode.ENHANCE_YOUR_CALM);
    assert.deepEqual(events, [], 'no stream was opened');
    assert.equal(errors.length, 1, 'one error for the connection');
    const error = errors[0];
    assert.ok(error instanceof Http2GoawayError);
    assert.equal(error.code, 'ENHANCE_YOUR_CALM');
    assert.match(String(error.peer), /^127\.0\.0\.1:\d+$/);
  });

  test('a header block cut into many tiny CONTINUATIONs is refused past a bound of frames; one in a few is served', async () => {
    const port = await listen({ maxEmptyFrames: 1_000_000 });
    const block = requestBlock('/echo');
    const served = await RawClient.connect(port);
    // One byte a frame: a HEADERS and a CONTINUATION per byte after the first.
    assert.ok(block.length > 8 && block.length <= 32, `a block of ${block.length} bytes`);
    served.write(encodeFrame(1, 0x1, 1, block.subarray(0, 1)));
    for (let at = 1; at < block.length; at++) {
      const last = at === block.length - 1;
      served.write(encodeFrame(9, last ? 0x4 : 0, 1, block.subarray(at, at + 1)));
    }
    await served.until(
      (frames) => frames.some((f) => f.type === 1 && f.id === 1 && f.flags & 0x1),
      'the trailers',
    );
    served.destroy();
    const flooding = await RawClient.connect(port);
    flooding.write(encodeFrame(1, 0, 1, block.subarray(0, 1)));
    // One byte each, so the header block's byte bound never comes near.
    for (let i = 0; i < 1000; i++) flooding.write(encodeFrame(9, 0, 1, Buffer.from([0x80])));
    await flooding.closedNow();
    assert.equal(flooding.goaway()?.code, Http2ErrorCode.ENHANCE_YOUR_CALM);
    assert.match(String(errors[0]?.message), /header block over \d+ frames/);
  });

  test('a header block left unfinished → GOAWAY(ENHANCE_YOUR_CALM) at headerBlockTimeoutMs, logged; one finished in time is served', async () => {
    const port = await listen({ headerBlockTimeoutMs: 300 });
    const block = requestBlock('/echo');
    const served = await RawClient.connect(port);
    served.write(encodeFrame(1, 0x1, 1, block.subarray(0, 4)));
    await sleep(100);
    served.write(encodeFrame(9, 0x4, 1, block.subarray(4)));
    await served.until(
      (frames) => frames.some((f) => f.type === 1 && f.id === 1 && f.flags & 0x1),
      'the trailers',
    );
    // The connection serves on past the deadline of a block that ended.
    await sleep(400);
    served.write(encodeFrame(1, 0x5, 3, requestBlock('/echo')));
    await served.until(
      (frames) => frames.some((f) => f.type === 1 && f.id === 3 && f.flags & 0x1),
      'trailers on 3',
    );
    assert.equal(served.goaway(), undefined);
    served.destroy();

    const stalled = await RawClient.connect(port);
    stalled.write(encodeFrame(1, 0x1, 1, block.subarray(0, 4)));
    const started = Date.now();
    await stalled.closedNow();
    assert.ok(Date.now() - started >= 250, `closed after ${Date.now() - started} ms`);
    assert.equal(stalled.goaway()?.code, Http2ErrorCode.ENHANCE_YOUR_CALM);
    assert.equal(errors.length, 1);
    assert.match(String(errors[0]?.message), /header block not ended within 300 ms/);
  });

  test('unfinished header blocks of all connections share one budget: past it the asking connection is closed; ended and closed blocks give bytes back', async () => {
    const budget = new HeaderBlockBudget(1000);
    const port = await listen({}, budget);
    const fragment = Buffer.alloc(400, 0x40);
    const first = await RawClient.connect(port);
    const second = await RawClient.connect(port);
    first.write(encodeFrame(1, 0x1, 1, fragment));
    second.write(encodeFrame(1, 0x1, 1, fragment));
    await until(() => budget.inUse === 800, 'both blocks held');
    // 200 more would pass 1,000.
    const third = await RawClient.connect(port);
    third.write(encodeFrame(1, 0x1, 1, Buffer.alloc(300, 0x40)));
    await third.closedNow();
    assert.equal(third.goaway()?.code, Http2ErrorCode.ENHANCE_YOUR_CALM);
    assert.match(
      String(errors.at(-1)?.message),
      /unfinished header blocks of all connections over 1000 bytes/,
    );
    assert.equal(budget.inUse, 800, 'the refused block took nothing');
    first.destroy();
    await until(() => budget.inUse === 400, 'the closed connection gave its block back');
    second.destroy();
    await until(() => budget.inUse === 0, 'every block given back');
    // A block that ends gives its bytes back too, and is served.
    const block = requestBlock('/echo');
    const served = await RawClient.connect(port);
    served.write(encodeFrame(1, 0x1, 1, block.subarray(0, 4)));
    served.write(encodeFrame(9, 0x4, 1, block.subarray(4)));
    await served.until(
      (frames) => frames.some((f) => f.type === 1 && f.id === 1 && f.flags & 0x1),
      'the trailers',
    );
    assert.equal(budget.inUse, 0);
    served.destroy();
  });

  test("Envoy's resets of streams it got an answer on, and frames crossing a stream's end, are never a flood", async () => {
    const port = await listen({ maxEarlyResets: 2, maxStrayFrames: 2 });
    const client = await RawClient.connect(port);
    for (let id = 1; id <= 199; id += 4) {
      // An ext_proc call the server answered and keeps open: Envoy resets it when the request is done.
      client.write(encodeFrame(1, 0x4, id, requestBlock('/answer')));
      await client.until((frames) => frames.some((f) => f.type === 1 && f.id === id), `headers on ${id}`);
      client.write(encodeFrame(3, 0, id, Buffer.from([0, 0, 0, 8])));
      // A call the server ended (trailers, then its own RST_STREAM(NO_ERROR)) while the client's reset and window
      // update were already on their way.
      const next = id + 2;
      client.write(encodeFrame(1, 0x4, next, requestBlock('/echo')));
      client.write(encodeFrame(0, 0x1, next, Buffer.from('x')));
      await client.until(
        (frames) => frames.some((f) => f.type === 1 && f.id === next && f.flags & 0x1),
        `trailers on ${next}`,
      );
      client.write(encodeFrame(8, 0, next, Buffer.from([0, 0, 0, 1])));
      client.write(encodeFrame(3, 0, next, Buffer.from([0, 0, 0, 8])));
    }
    client.write(encodeFrame(6, 0, 0, Buffer.from('probe!!!')));
    await client.until((frames) => frames.some((f) => f.type === 6), 'the PING ack');
    assert.equal(client.goaway(), undefined);
    assert.deepEqual(errors, []);
    client.destroy();
  });

  test('clients giving up on some requests (resets before any answer, among streams served) are not a flood', async () => {
    const port = await listen({ maxEarlyResets: 2 });
    const client = await RawClient.connect(port);
    for (let id = 1; id <= 199; id += 4) {
      const served = id + 2;
      // A request whose client went away while its body was still coming: Envoy resets the unanswered call.
      client.write(encodeFrame(1, 0x4, id, requestBlock('/hold')));
      client.write(encodeFrame(3, 0, id, Buffer.from([0, 0, 0, 8])));
      client.write(encodeFrame(1, 0x4 | 0x1, served, requestBlock('/echo')));
      await client.until(
        (frames) => frames.some((f) => f.type === 1 && f.id === served && f.flags & 0x1),
        `trailers on ${served}`,
      );
    }
    assert.equal(events.filter((event) => event === 'abort').length, 50, 'every reset reached its stream');
    client.write(encodeFrame(6, 0, 0, Buffer.from('probe!!!')));
    await client.until((frames) => frames.some((f) => f.type === 6), 'the PING ack');
    assert.equal(client.goaway(), undefined);
    assert.deepEqual(errors, []);
    client.destroy();
  });

  test('a client that sends PINGs and never reads the acks stops being read until it does', async () => {
    const [serverEnd, clientEnd] = duplexPair();
    const highWater = 64 << 10;
    new Http2Connection(serverEnd, {
      onStream: echo(events),
      limits: { writeHighWaterBytes: highWater, maxPings: 1_000_000 },
    });
    // The most the server ever held for the client, measured at each of its writes.
    let mostQueued = 0;
    const write = serverEnd.write.bind(serverEnd) as (chunk: Buffer) => boolean;
    serverEnd.write = ((chunk: Buffer) => {
      const ok = write(chunk);
      mostQueued = Math.max(mostQueued, serverEnd.writableLength);
      return ok;
    }) as typeof serverEnd.write;
    const batch = Buffer.concat(Array.from({ length: 1000 }, () => encodeFrame(6, 0, 0, Buffer.alloc(8))));
    const batches = 40;
    clientEnd.write(Buffer.concat([PREFACE, encodeFrame(4, 0, 0)]));
    for (let i = 0; i < batches; i++) clientEnd.write(batch);
    // The server stops reading: the client's PINGs stay queued on its side.
    await until(() => serverEnd.isPaused() && clientEnd.writableLength > 0, 'the server to stop reading');
    assert.ok(
      mostQueued <= highWater + 2 * batch.length,
      `the server queued ${mostQueued} bytes for a client that does not read (high-water mark ${highWater})`,
    );
    // Once the client reads, every PING is answered.
    let received = 0;
    clientEnd.on('data', (chunk: Buffer) => (received += chunk.length));
    // Our SETTINGS (9 + 18), WINDOW_UPDATE (9 + 4), the SETTINGS ack (9), then 17 bytes per PING ack.
    const expected = 27 + 13 + 9 + batches * batch.length;
    await until(() => received === expected, 'every PING ack');
    assert.equal(serverEnd.isPaused(), false);
    serverEnd.destroy();
  });

  test('with no stream and no frame for idleTimeoutMs, GOAWAY(NO_ERROR) and the connection closes; a stream keeps it open', async () => {
    const idleTimeoutMs = 50;
    const port = await listen({ idleTimeoutMs });
    const client = await RawClient.connect(port);
    client.write(encodeFrame(1, 0x4, 1, requestBlock('/hold')));
    // Long past the idle timeout with a stream open: the stream is still served.
    await sleep(idleTimeoutMs * 4);
    client.write(encodeFrame(0, 0x1, 1, Buffer.from('still open')));
    await client.closedNow();
    assert.equal(dataOn(client.frames, 1).toString(), 'still open');
    assert.equal(client.goaway()?.code, Http2ErrorCode.NO_ERROR);
    assert.equal(client.goaway()?.lastStreamId, 1);
    assert.deepEqual(errors, [], 'an idle connection is not an error');
  });

  for (const [what, bytes] of [
    ['nothing', Buffer.alloc(0)],
    ['half a preface', PREFACE.subarray(0, 10)],
    ['a preface without SETTINGS', PREFACE],
  ] as const) {
    test(`a client that sends ${what} is closed after prefaceTimeoutMs`, async () => {
      const port = await listen({ prefaceTimeoutMs: 50 });
      const client = await RawClient.connect(port, false);
      client.write(bytes);
      await client.closedNow();
      assert.match(String(errors[0]?.message), /no preface and SETTINGS within 50 ms/);
    });
  }
});

describe('HTTP/2 connection: graceful shutdown', () => {
  test('GOAWAY names the last stream; a later stream is refused, its DATA ignored; the open one finishes, then close', async () => {
    const events: string[] = [];
    const connections: Http2Connection[] = [];
    const server = createServer((socket) => {
      connections.push(new Http2Connection(socket, { onStream: echo(events) }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = await RawClient.connect((server.address() as { port: number }).port);
    try {
      client.write(encodeFrame(1, 0x4, 1, requestBlock('/hold')));
      await client.until(() => events.includes('open POST /hold'), 'the first stream');
      connections[0]!.goAwayGracefully();
      await client.until(() => client.goaway() !== undefined, 'GOAWAY');
      assert.deepEqual(client.goaway(), { lastStreamId: 1, code: Http2ErrorCode.NO_ERROR });
      // A stream the client opened before it read the GOAWAY, with its body: refused, safe to retry elsewhere.
      client.write(encodeFrame(1, 0x4, 3, requestBlock('/late')));
      client.write(encodeFrame(0, 0x1, 3, Buffer.from('late body')));
      await client.until(
        (frames) => frames.some((f) => f.type === 3 && f.id === 3),
        'RST_STREAM on the late stream',
      );
      const rst = client.frames.find((f) => f.type === 3 && f.id === 3)!;
      assert.equal(rst.payload.readUInt32BE(0), Http2ErrorCode.REFUSED_STREAM);
      client.write(encodeFrame(0, 0x1, 1, Buffer.from('last')));
      await client.closedNow();
      assert.equal(dataOn(client.frames, 1).toString(), 'last');
      assert.deepEqual(events, ['open POST /hold', 'end']);
      assert.equal(
        client.frames.filter((f) => f.type === 7).length,
        1,
        'no second GOAWAY (no protocol error)',
      );
    } finally {
      client.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
