/**
 * The gRPC transport in grpc-server.ts over real loopback sockets, driven by a raw `node:http2` client so each test
 * controls the exact bytes and frames (split headers, coalesced messages, compressed flags, resets). The methods use
 * a trivial codec (bytes ↔ UTF-8 string) so only the transport is under test.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as connectHttp2, constants, type ClientHttp2Session } from 'node:http2';
import { connect as connectTcp, type Socket } from 'node:net';
import { selfSignedKeyPair } from '../certs/index.js';
import { ConnectionLimitError } from './server-lifecycle.js';
import {
  createGrpcServer,
  grpcTimeoutMs,
  GrpcStatus,
  type GrpcCall,
  type GrpcMethod,
  type GrpcServer,
} from './grpc-server.js';

const MAX_MESSAGE_BYTES = 64 * 1024;

/** One call's events as its handlers saw them, in order, and a way to wait for one. */
class CallLog {
  readonly events: string[] = [];
  private waiters: { event: string; resolve: () => void }[] = [];
  push(event: string): void {
    this.events.push(event);
    this.waiters = this.waiters.filter((w) => (w.event === event ? (w.resolve(), false) : true));
  }
  /** Resolves once the handlers saw `event`; fails (rather than hang) if they still have not after 5 s. */
  waitFor(event: string): Promise<void> {
    if (this.events.includes(event)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the handlers never saw ${event}; they saw ${this.events.join(', ')}`)),
        5000,
      );
      this.waiters.push({
        event,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }
}

const decode = (bytes: Uint8Array): string => {
  // A first byte 0xff stands for a message the codec cannot parse.
  if (bytes[0] === 0xff) throw new Error('undecodable test message');
  return Buffer.from(bytes).toString('utf8');
};
const encode = (message: string): Uint8Array => Buffer.from(message, 'utf8');

/**
 * `/test.Echo/Chat`: echoes every message as `echo:<message>`; the message `finish` answers `done` and ends the call;
 * `end-now` ends the call without a reply; `throw` makes the handler throw. On the client's half-close it answers
 * `bye` and ends the call. `/test.Echo/Hold` is the same but keeps the call open after the half-close (a
 * server-streaming call such as health `Watch`).
 */
function chatMethod(calls: CallLog[], endOnHalfClose: boolean): GrpcMethod<string, string> {
  return {
    decode,
    encode,
    open(call: GrpcCall<string>) {
      const log = new CallLog();
      calls.push(log);
      return {
        message(message) {
          log.push(`message:${message}`);
          if (message === 'throw') throw new Error('handler failed');
          if (message === 'end-now') return call.end();
          if (message === 'finish') {
            call.send('done');
            return call.end();
          }
          call.send(`echo:${message}`);
        },
        end() {
          log.push('end');
          if (endOnHalfClose) {
            call.send('bye');
            call.end();
          }
        },
        abort() {
          log.push('abort');
        },
      };
    },
  };
}

/** A gRPC message: flag byte, 4-byte big-endian length, payload. */
function frame(payload: string | Buffer, flag = 0): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const header = Buffer.alloc(5);
  header[0] = flag;
  header.writeUInt32BE(body.length, 1);
  return Buffer.concat([header, body]);
}

/** Splits a response body into its messages, asserting each is uncompressed and whole. */
function unframe(body: Buffer): string[] {
  const out: string[] = [];
  let rest = body;
  while (rest.length > 0) {
    assert.ok(rest.length >= 5, 'a response message header is cut short');
    assert.equal(rest[0], 0, 'responses are never compressed');
    const length = rest.readUInt32BE(1);
    assert.ok(rest.length >= 5 + length, 'a response message is cut short');
    out.push(rest.subarray(5, 5 + length).toString('utf8'));
    rest = rest.subarray(5 + length);
  }
  return out;
}

interface CallResult {
  headers: Record<string, unknown>;
  trailers: Record<string, unknown> | undefined;
  messages: string[];
  /** The RST_STREAM code the stream closed with (0 = closed cleanly). */
  rstCode: number;
}

describe('gRPC server', () => {
  let server: GrpcServer;
  let port: number;
  let session: ClientHttp2Session;
  const calls: CallLog[] = [];
  const errors: unknown[] = [];

  before(async () => {
    server = createGrpcServer({
      methods: {
        '/test.Echo/Chat': chatMethod(calls, true),
        '/test.Echo/Hold': chatMethod(calls, false),
      },
      maxMessageBytes: MAX_MESSAGE_BYTES,
      onError: (error) => errors.push(error),
    });
    port = await server.listen('127.0.0.1', 0);
    session = connectHttp2(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
  });

  after(async () => {
    session.close();
    await server.close();
  });

  afterEach(() => {
    calls.length = 0;
    errors.length = 0;
  });

  function open(path = '/test.Echo/Chat', headers: Record<string, string> = {}) {
    return session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...headers,
    });
  }

  /**
   * Collects what the server sent on a stream until it closes. Once the status arrives the client half-closes, as a
   * conforming client does (an HTTP/2 stream closes only when both sides ended); `halfCloseOnStatus: false` leaves
   * that to the test.
   */
  function collect(stream: ReturnType<typeof open>, halfCloseOnStatus = true): Promise<CallResult> {
    return new Promise((resolve, reject) => {
      let headers: Record<string, unknown> = {};
      let trailers: Record<string, unknown> | undefined;
      const chunks: Buffer[] = [];
      const statusArrived = () => {
        if (halfCloseOnStatus && stream.writable) stream.end();
      };
      stream.on('response', (h) => {
        headers = { ...h };
        if (h['grpc-status'] !== undefined) statusArrived();
      });
      stream.on('trailers', (t) => {
        trailers = { ...t };
        statusArrived();
      });
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', () => undefined);
      stream.on('close', () => {
        try {
          resolve({
            headers,
            trailers,
            messages: unframe(Buffer.concat(chunks)),
            rstCode: stream.rstCode ?? 0,
          });
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    });
  }

  /** Resolves once the server has read everything sent so far (frames are processed in order; PING is acked). */
  function flushed(): Promise<void> {
    return new Promise((resolve, reject) => {
      session.ping((error) => (error ? reject(error) : resolve()));
    });
  }

  function write(stream: ReturnType<typeof open>, bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) =>
      stream.write(bytes, (error) => (error ? reject(error) : resolve())),
    );
  }

  test('messages split across DATA chunks, or sharing one, arrive whole and in order', async () => {
    const stream = open();
    const result = collect(stream);
    const big = 'x'.repeat(40 * 1024);
    const one = frame('alpha');
    // The header of `alpha` in two reads.
    await write(stream, one.subarray(0, 2));
    await flushed();
    await write(stream, one.subarray(2, 4));
    await flushed();
    await write(stream, one.subarray(4));
    await flushed();
    // A 40 KiB message over several writes, the last of which also carries half the next header.
    const large = frame(big);
    const next = frame('beta');
    await write(stream, large.subarray(0, 1000));
    await flushed();
    await write(stream, large.subarray(1000, 30_000));
    await flushed();
    await write(stream, Buffer.concat([large.subarray(30_000), next.subarray(0, 3)]));
    await flushed();
    // The rest of `beta`, then three messages (one empty) in a single write.
    await write(stream, Buffer.concat([next.subarray(3), frame('one'), frame(''), frame('three')]));
    stream.end();
    const { headers, trailers, messages } = await result;
    assert.equal(headers[':status'], 200);
    assert.equal(headers['content-type'], 'application/grpc');
    assert.equal(headers['grpc-status'], undefined, 'a call that sent messages has its status in trailers');
    assert.deepEqual(messages, [
      'echo:alpha',
      `echo:${big}`,
      'echo:beta',
      'echo:one',
      'echo:',
      'echo:three',
      'bye',
    ]);
    assert.equal(trailers?.['grpc-status'], '0');
    assert.deepEqual(calls[0]!.events, [
      'message:alpha',
      `message:${big}`,
      'message:beta',
      'message:one',
      'message:',
      'message:three',
      'end',
    ]);
  });

  test('replies are framed as they are sent; trailers with grpc-status 0 follow when the handler ends', async () => {
    const stream = open();
    const result = collect(stream);
    let seen = Buffer.alloc(0);
    const firstReply = new Promise<void>((resolve) =>
      stream.on('data', (chunk: Buffer) => {
        seen = Buffer.concat([seen, chunk]);
        if (seen.length >= 5 + 'echo:ping'.length) resolve();
      }),
    );
    await write(stream, frame('ping'));
    await firstReply;
    assert.deepEqual(unframe(seen), ['echo:ping'], 'the reply arrives while the call is still open');
    await write(stream, frame('finish'));
    const { trailers, messages, rstCode } = await result;
    assert.deepEqual(messages, ['echo:ping', 'done']);
    assert.equal(trailers?.['grpc-status'], '0');
    assert.equal(trailers?.['grpc-message'], undefined);
    assert.equal(rstCode, 0);
    assert.deepEqual(calls[0]!.events, ['message:ping', 'message:finish']);
  });

  test('a call ended before any reply is answered trailers-only (status in the HEADERS frame)', async () => {
    const stream = open();
    const result = collect(stream);
    await write(stream, frame('end-now'));
    const { headers, trailers, messages } = await result;
    assert.equal(headers[':status'], 200);
    assert.equal(headers['content-type'], 'application/grpc');
    assert.equal(headers['grpc-status'], '0');
    assert.equal(trailers, undefined);
    assert.deepEqual(messages, []);
  });

  test('unknown path → UNIMPLEMENTED; non-POST → 405; wrong content-type → 415', async () => {
    const unknown = open('/test.Echo/Nope');
    const unknownResult = collect(unknown);
    unknown.end(frame('x'));
    const u = await unknownResult;
    assert.equal(u.headers[':status'], 200);
    assert.equal(u.headers['grpc-status'], String(GrpcStatus.UNIMPLEMENTED));
    assert.match(decodeURIComponent(String(u.headers['grpc-message'])), /\/test\.Echo\/Nope/);

    const get = session.request({ ':method': 'GET', ':path': '/test.Echo/Chat' }, { endStream: true });
    const g = await collect(get);
    assert.equal(g.headers[':status'], 405);

    const json = open('/test.Echo/Chat', { 'content-type': 'application/json' });
    const jsonResult = collect(json);
    json.end('{}');
    const j = await jsonResult;
    assert.equal(j.headers[':status'], 415);
    assert.equal(calls.length, 0, 'no handler was opened for a rejected stream');
  });

  test('a status message larger than a frame arrives whole (HEADERS + CONTINUATION)', async () => {
    const path = `/test.Echo/${'x'.repeat(40_000)}`;
    const result = await collect(open(path));
    assert.equal(result.headers['grpc-status'], String(GrpcStatus.UNIMPLEMENTED));
    assert.equal(decodeURIComponent(String(result.headers['grpc-message'])), `unknown method ${path}`);
  });

  test('a compressed message → UNIMPLEMENTED and the handler aborts', async () => {
    const stream = open();
    const result = collect(stream);
    await write(stream, frame('ok'));
    await write(stream, frame('zipped', 1));
    const { trailers, messages } = await result;
    assert.deepEqual(messages, ['echo:ok']);
    assert.equal(trailers?.['grpc-status'], String(GrpcStatus.UNIMPLEMENTED));
    assert.match(decodeURIComponent(String(trailers?.['grpc-message'])), /compress/);
    await calls[0]!.waitFor('abort');
    assert.deepEqual(calls[0]!.events, ['message:ok', 'abort']);
  });

  test('a declared length over maxMessageBytes → RESOURCE_EXHAUSTED before the body is buffered', async () => {
    const stream = open();
    const result = collect(stream);
    // Only the header: the server must answer without waiting for the megabyte it announces.
    const header = Buffer.alloc(5);
    header.writeUInt32BE(MAX_MESSAGE_BYTES + 1, 1);
    await write(stream, header);
    const { headers } = await result;
    assert.equal(headers['grpc-status'], String(GrpcStatus.RESOURCE_EXHAUSTED));
    await calls[0]!.waitFor('abort');
    assert.deepEqual(calls[0]!.events, ['abort']);
  });

  test('a message of exactly maxMessageBytes is accepted', async () => {
    const stream = open();
    const result = collect(stream);
    stream.end(frame('m'.repeat(MAX_MESSAGE_BYTES)));
    const { trailers, messages } = await result;
    assert.equal(trailers?.['grpc-status'], '0');
    assert.equal(messages[0]?.length, 'echo:'.length + MAX_MESSAGE_BYTES);
  });

  test('an undecodable message → INTERNAL, onError, abort', async () => {
    const stream = open();
    const result = collect(stream);
    await write(stream, frame(Buffer.from([0xff, 1, 2])));
    const { headers } = await result;
    assert.equal(headers['grpc-status'], String(GrpcStatus.INTERNAL));
    assert.match(decodeURIComponent(String(headers['grpc-message'])), /undecodable test message/);
    assert.equal(errors.length, 1);
    assert.match(String(errors[0]), /undecodable test message/);
    await calls[0]!.waitFor('abort');
    assert.deepEqual(calls[0]!.events, ['abort']);
  });

  test('a handler that throws → INTERNAL, onError with its error, abort', async () => {
    const stream = open();
    const result = collect(stream);
    await write(stream, frame('throw'));
    const { headers } = await result;
    assert.equal(headers['grpc-status'], String(GrpcStatus.INTERNAL));
    assert.equal(errors.length, 1);
    assert.equal((errors[0] as Error).message, 'handler failed');
    await calls[0]!.waitFor('abort');
    assert.deepEqual(calls[0]!.events, ['message:throw', 'abort']);
  });

  test('the stream ending inside a message → INTERNAL and abort, never end', async () => {
    const stream = open();
    const result = collect(stream);
    stream.end(frame('truncated').subarray(0, 8));
    const { headers } = await result;
    assert.equal(headers['grpc-status'], String(GrpcStatus.INTERNAL));
    await calls[0]!.waitFor('abort');
    assert.deepEqual(calls[0]!.events, ['abort']);
  });

  test('half-close → end (once); the server then ends the call and abort never runs', async () => {
    const stream = open();
    const result = collect(stream);
    await write(stream, frame('a'));
    stream.end();
    const { trailers, messages } = await result;
    assert.deepEqual(messages, ['echo:a', 'bye']);
    assert.equal(trailers?.['grpc-status'], '0');
    await flushed();
    assert.deepEqual(calls[0]!.events, ['message:a', 'end']);
  });

  test('RST_STREAM from the client → abort exactly once, no end', async () => {
    const stream = open();
    const result = collect(stream, false);
    await write(stream, frame('a'));
    await flushed();
    // destroy() resets the stream without a half-close first (Node then ends the server's readable side too).
    stream.destroy();
    await result;
    await calls[0]!.waitFor('abort');
    await flushed();
    assert.deepEqual(calls[0]!.events, ['message:a', 'abort']);
  });

  test('a lost connection → abort exactly once, no end', async () => {
    const other = connectHttp2(`http://127.0.0.1:${port}`);
    other.on('error', () => undefined);
    const stream = other.request({
      ':method': 'POST',
      ':path': '/test.Echo/Chat',
      'content-type': 'application/grpc',
    });
    stream.on('error', () => undefined);
    await write(stream, frame('a'));
    await new Promise<void>((resolve, reject) => other.ping((e) => (e ? reject(e) : resolve())));
    other.destroy();
    await calls[0]!.waitFor('abort');
    await flushed();
    assert.deepEqual(calls[0]!.events, ['message:a', 'abort']);
  });

  test('RST_STREAM after the server ended the call (what Envoy does) is not an abort', async () => {
    const stream = open();
    const trailers = new Promise<Record<string, unknown>>((resolve) => stream.on('trailers', resolve));
    const result = collect(stream, false);
    await write(stream, frame('finish'));
    // Envoy never half-closes an ext_proc stream; it resets it once the server's status arrived.
    assert.equal((await trailers)['grpc-status'], '0');
    stream.close(constants.NGHTTP2_CANCEL);
    await result;
    await flushed();
    assert.deepEqual(calls[0]!.events, ['message:finish']);
  });

  test('a call the server ends before the client half-closes: trailers, then RST_STREAM(NO_ERROR) closes it', async () => {
    const stream = open();
    const trailers = new Promise<Record<string, unknown>>((resolve) => stream.on('trailers', resolve));
    // The client neither half-closes nor resets: the stream closes only because the server reset it.
    const result = collect(stream, false);
    await write(stream, frame('finish'));
    const { messages, rstCode } = await Promise.race([
      result,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('the server left the stream open')), 5000).unref(),
      ),
    ]);
    assert.deepEqual(messages, ['done']);
    assert.equal((await trailers)['grpc-status'], '0', 'the status arrives before the reset');
    assert.equal(rstCode, constants.NGHTTP2_NO_ERROR);
    await flushed();
    assert.deepEqual(calls[0]!.events, ['message:finish'], 'ended by the server, so no abort');
  });

  test(
    'past its grpc-timeout, a call ends with DEADLINE_EXCEEDED and its handlers see abort',
    { timeout: 5000 },
    async () => {
      const stream = open('/test.Echo/Hold', { 'grpc-timeout': '50m' });
      const result = collect(stream);
      await write(stream, frame('ping'));
      await flushed();
      await calls[0]!.waitFor('abort');
      const { trailers, messages } = await result;
      assert.deepEqual(messages, ['echo:ping']);
      assert.equal(trailers?.['grpc-status'], String(GrpcStatus.DEADLINE_EXCEEDED));
      assert.deepEqual(calls[0]!.events, ['message:ping', 'abort']);
    },
  );

  test(
    'a call done within its grpc-timeout ends as usual; a malformed grpc-timeout → INTERNAL',
    { timeout: 5000 },
    async () => {
      const ok = open('/test.Echo/Chat', { 'grpc-timeout': '10S' });
      const okResult = collect(ok);
      await write(ok, frame('finish'));
      assert.equal((await okResult).trailers?.['grpc-status'], '0');
      assert.deepEqual(calls[0]!.events, ['message:finish']);
      const bad = open('/test.Echo/Chat', { 'grpc-timeout': '1.5S' });
      const { headers } = await collect(bad);
      assert.equal(headers['grpc-status'], String(GrpcStatus.INTERNAL));
      assert.match(decodeURIComponent(String(headers['grpc-message'])), /malformed grpc-timeout: 1\.5S/);
      assert.equal(calls.length, 1, 'the malformed call never reached the method');
    },
  );

  test('a server-streaming call (half-closed, still open) that the client cancels gets end, then abort', async () => {
    // Like health Watch: the request and the half-close come first, replies flow until the client cancels. The
    // handler must learn of the cancel to drop the call, so here `end` and `abort` both run, in that order, once.
    const stream = open('/test.Echo/Hold');
    const result = collect(stream, false);
    stream.end(frame('watch'));
    await flushed();
    await calls[0]!.waitFor('end');
    stream.close(constants.NGHTTP2_CANCEL);
    const { messages } = await result;
    assert.deepEqual(messages, ['echo:watch']);
    await calls[0]!.waitFor('abort');
    await flushed();
    assert.deepEqual(calls[0]!.events, ['message:watch', 'end', 'abort']);
  });
});

describe('gRPC server shutdown', () => {
  test('close() aborts open calls, ends their streams and frees the port', async () => {
    const calls: CallLog[] = [];
    const server = createGrpcServer({
      methods: { '/test.Echo/Chat': chatMethod(calls, true) },
      maxMessageBytes: MAX_MESSAGE_BYTES,
    });
    const port = await server.listen('127.0.0.1', 0);
    const session = connectHttp2(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    const streams = [0, 1].map(() =>
      session.request({ ':method': 'POST', ':path': '/test.Echo/Chat', 'content-type': 'application/grpc' }),
    );
    const closed = streams.map(
      (s) =>
        new Promise<void>((resolve) => {
          s.on('error', () => undefined);
          s.on('close', () => resolve());
        }),
    );
    // Each call is open on the server once its first reply comes back.
    await Promise.all(
      streams.map((s, i) => {
        s.write(frame(`open-${i}`));
        return new Promise((resolve) => s.once('data', resolve));
      }),
    );
    assert.equal(calls.length, 2);
    for (const s of streams) s.resume();

    await server.close();
    await Promise.all(closed);
    await Promise.all(calls.map((c) => c.waitFor('abort')));
    for (const [i, c] of calls.entries()) assert.deepEqual(c.events, [`message:open-${i}`, 'abort']);
    session.destroy();

    const refused = await new Promise<string>((resolve) => {
      const socket = connectTcp(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    });
    assert.equal(refused, 'ECONNREFUSED');
  });
});

test('grpc-timeout values: units, the 8-digit limit, and deadlines longer than a timer can wait', () => {
  const cases: [string, number][] = [
    ['1H', 3_600_000],
    ['2M', 120_000],
    ['3S', 3000],
    ['100m', 100],
    ['1500u', 2],
    ['1n', 1],
    ['0m', 0],
    ['99999999H', -1],
    ['123456789m', NaN],
    ['1.5S', NaN],
    ['10', NaN],
    ['m', NaN],
    ['', NaN],
  ];
  for (const [value, ms] of cases) assert.equal(grpcTimeoutMs(value), ms, value);
});

describe('gRPC server drain', () => {
  test('GOAWAY naming the last stream, the open call finishes both ways, then the server has closed', async () => {
    const calls: CallLog[] = [];
    const server = createGrpcServer({
      methods: { '/test.Echo/Chat': chatMethod(calls, true) },
      maxMessageBytes: MAX_MESSAGE_BYTES,
    });
    const port = await server.listen('127.0.0.1', 0);
    const session = connectHttp2(`http://127.0.0.1:${port}`);
    const goaway = new Promise<number>((resolve) =>
      session.once('goaway', (code: number, lastStreamId: number) => resolve(lastStreamId)),
    );
    const call = session.request({
      ':method': 'POST',
      ':path': '/test.Echo/Chat',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    const chunks: Buffer[] = [];
    call.on('data', (c: Buffer) => chunks.push(c));
    const trailers = new Promise<Record<string, unknown>>((resolve) => call.once('trailers', resolve));
    call.write(frame('before'));
    await waitForCall(calls, 1, 'message:before');

    const drained = server.drain(5000);
    const lastStreamId = await goaway;
    assert.equal(lastStreamId, call.id, 'GOAWAY names the open call as the last one processed');
    // The open call still works both ways after GOAWAY.
    call.end(frame('after'));
    assert.equal((await trailers)['grpc-status'], '0');
    assert.deepEqual(unframe(Buffer.concat(chunks)), ['echo:before', 'echo:after', 'bye']);
    assert.deepEqual(await drained, { dropped: 0 });
    assert.deepEqual(calls[0]!.events, ['message:before', 'message:after', 'end']);
    session.destroy();
  });

  test('a call still open at the drain timeout is dropped and counted', async () => {
    const calls: CallLog[] = [];
    const server = createGrpcServer({
      methods: { '/test.Echo/Chat': chatMethod(calls, true) },
      maxMessageBytes: MAX_MESSAGE_BYTES,
    });
    const port = await server.listen('127.0.0.1', 0);
    const session = connectHttp2(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    const call = session.request({
      ':method': 'POST',
      ':path': '/test.Echo/Chat',
      'content-type': 'application/grpc',
    });
    call.on('error', () => undefined);
    call.write(frame('hold'));
    await waitForCall(calls, 1, 'message:hold');
    assert.deepEqual(await server.drain(50), { dropped: 1 });
    await calls[0]!.waitFor('abort');
    session.destroy();
  });
});

describe('gRPC server connection limits', () => {
  /** A connection from `localAddress`: resolves 'closed' if the server closes it at once, 'open' if not within 200 ms. */
  const attempt = (port: number, localAddress: string) =>
    new Promise<{ socket: Socket; state: 'closed' | 'open' }>((resolve) => {
      const socket = connectTcp({ port, host: '127.0.0.1', localAddress });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve({ socket, state: 'closed' }));
      socket.on('connect', () => setTimeout(() => resolve({ socket, state: 'open' }), 200).unref());
    });

  for (const tls of [false, true]) {
    test(`one client address may hold maxConnectionsPerAddress, all of them maxConnections; refusals are reported with their count${tls ? ' (TLS)' : ''}`, async () => {
      const errors: unknown[] = [];
      const calls: CallLog[] = [];
      const server = createGrpcServer({
        methods: { '/test.Echo/Chat': chatMethod(calls, true) },
        maxMessageBytes: MAX_MESSAGE_BYTES,
        maxConnections: 3,
        maxConnectionsPerAddress: 2,
        onError: (error) => errors.push(error),
        ...(tls ? { tls: selfSignedKeyPair('grpc-test') } : {}),
      });
      const port = await server.listen('127.0.0.1', 0);
      const held: Socket[] = [];
      const state = async (address: string) => {
        const { socket, state } = await attempt(port, address);
        held.push(socket);
        return state;
      };
      assert.deepEqual([await state('127.0.0.1'), await state('127.0.0.1')], ['open', 'open']);
      // A third from the same address is refused; another address still gets in.
      assert.equal(await state('127.0.0.1'), 'closed');
      assert.equal(await state('127.0.0.1'), 'closed');
      assert.equal(await state('127.0.0.2'), 'open');
      // The server's cap: 3 open.
      assert.equal(await state('127.0.0.3'), 'closed');
      const limits = errors.filter((e) => e instanceof ConnectionLimitError);
      // Each kind's first refusal at once; the next waits for its report window.
      assert.deepEqual(
        limits.map((e) => e.message),
        [
          'refused 1 connection(s) from 127.0.0.1: 2 were open from that address (maxConnectionsPerAddress); a ' +
            'gateway needs a few per worker thread, so this is a client opening many',
          'refused 1 connection(s): 3 were open (maxConnections)',
        ],
      );
      // A closed connection frees its address's slot.
      held[0]!.destroy();
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(await state('127.0.0.1'), 'open');
      for (const socket of held) socket.destroy();
      await server.close();
    });
  }
});

async function waitForCall(calls: CallLog[], count: number, event: string): Promise<void> {
  for (let i = 0; calls.length < count; i++) {
    if (i > 500) throw new Error('the call never opened');
    await new Promise((r) => setTimeout(r, 10));
  }
  await calls[count - 1]!.waitFor(event);
}
