import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  requestHead,
  UpstreamPool,
  UpstreamTimeoutError,
  type UpstreamPoolOptions,
  type UpstreamRequest,
} from './upstream-pool.js';

/**
 * A raw TCP server standing in for a model server: `answer` gets each request head (and body) as it arrives and the
 * socket, and writes whatever bytes the test wants, well-formed or not.
 */
async function rawServer(
  answer: (request: string, socket: Socket) => void,
): Promise<{ server: Server; address: string; connections: () => number; sockets: Set<Socket> }> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffered = '';
    socket.on('data', (data) => {
      buffered += data.toString('latin1');
      for (;;) {
        const end = buffered.indexOf('\r\n\r\n');
        if (end === -1) return;
        const length = Number(/content-length: (\d+)/i.exec(buffered.slice(0, end))?.[1] ?? 0);
        if (buffered.length < end + 4 + length) return;
        const request = buffered.slice(0, end + 4 + length);
        buffered = buffered.slice(end + 4 + length);
        answer(request, socket);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return { server, address: `127.0.0.1:${port}`, connections: () => connections, sockets };
}

interface Outcome {
  status?: number;
  headers?: IncomingHttpHeaders;
  body: string;
  error?: Error;
  ended: boolean;
  calls: number;
}

function send(
  pool: UpstreamPool,
  request: Partial<UpstreamRequest> = {},
  onData?: (chunk: Buffer, outcome: Outcome) => boolean,
): { outcome: Outcome; done: Promise<Outcome>; exchange: ReturnType<UpstreamPool['dispatch']> } {
  const outcome: Outcome = { body: '', ended: false, calls: 0 };
  let settle!: (o: Outcome) => void;
  const done = new Promise<Outcome>((resolve) => (settle = resolve));
  const exchange = pool.dispatch(
    { method: 'POST', path: '/v1/completions', headers: {}, body: Buffer.from('{}'), ...request },
    {
      onHead: (status, headers) => Object.assign(outcome, { status, headers }),
      onData: (chunk) => {
        outcome.body += chunk.toString('latin1');
        return onData ? onData(chunk, outcome) : true;
      },
      onEnd: () => {
        outcome.calls++;
        outcome.ended = true;
        settle(outcome);
      },
      onError: (error) => {
        outcome.calls++;
        outcome.error = error;
        settle(outcome);
      },
    },
  );
  return { outcome, done, exchange };
}

const OPTIONS: UpstreamPoolOptions = { headersTimeoutMs: 5000, bodyTimeoutMs: 5000 };
const OK = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok';

describe('UpstreamPool against raw sockets', () => {
  const servers: Server[] = [];
  const pools: UpstreamPool[] = [];
  const serve = async (answer: (request: string, socket: Socket) => void) => {
    const s = await rawServer(answer);
    servers.push(s.server);
    return s;
  };
  const poolFor = (address: string, options: Partial<UpstreamPoolOptions> = {}) => {
    const pool = new UpstreamPool(address, { ...OPTIONS, ...options });
    pools.push(pool);
    return pool;
  };
  after(async () => {
    for (const pool of pools) await pool.destroy();
    for (const server of servers) server.close();
  });

  it('writes the request it was given, with its own host and length, and keeps the connection alive', async () => {
    const requests: string[] = [];
    const s = await serve((request, socket) => {
      requests.push(request);
      socket.write(OK);
    });
    const pool = poolFor(s.address);
    for (let i = 0; i < 3; i++) {
      const o = await send(pool, {
        headers: { 'x-a': 'b', host: 'evil', 'content-length': '999', 'transfer-encoding': 'chunked' },
      }).done;
      assert.equal(o.status, 200);
      assert.equal(o.body, 'ok');
    }
    assert.equal(s.connections(), 1, 'one kept-alive connection for three requests');
    assert.equal(
      requests[0],
      `POST /v1/completions HTTP/1.1\r\nhost: ${s.address}\r\nx-a: b\r\ncontent-length: 2\r\n\r\n{}`,
    );
    assert.deepEqual(pool.stats, { connected: 1, running: 0, pending: 0 });
  });

  it('streams the body as it comes, and pauses the socket while the consumer is full', async () => {
    let socket!: Socket;
    const s = await serve((_, sk) => {
      socket = sk;
      sk.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n');
    });
    const pool = poolFor(s.address);
    let full = true;
    const sent = send(pool, {}, () => !full);
    while (sent.outcome.body !== 'first') await sleep(5);
    // The consumer said it is full: what the server sends now waits in the kernel, not in the gateway.
    socket.write('6\r\nsecond\r\n');
    await sleep(100);
    assert.equal(sent.outcome.body, 'first');
    full = false;
    sent.exchange.resume();
    socket.write('0\r\n\r\n');
    const o = await sent.done;
    assert.equal(o.body, 'firstsecond');
    assert.ok(o.ended);
  });

  it('an aborted exchange closes its connection and hears nothing more', async () => {
    let closed = 0;
    const s = await serve((_, socket) => {
      socket.on('close', () => closed++);
      socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\na\r\n');
    });
    const pool = poolFor(s.address);
    const sent = send(pool);
    while (sent.outcome.body === '') await sleep(5);
    sent.exchange.abort(new Error('the client went away'));
    const o = await sent.done;
    assert.match(o.error!.message, /client went away/);
    for (let i = 0; i < 100 && closed === 0; i++) await sleep(10);
    assert.equal(closed, 1, 'the server saw the connection close');
    assert.equal(o.calls, 1);
    assert.deepEqual(pool.stats, { connected: 0, running: 0, pending: 0 });
  });

  it('at most maxConnections at once; the rest wait in order', async () => {
    const waiting: Socket[] = [];
    const s = await serve((_, socket) => waiting.push(socket));
    const pool = poolFor(s.address, { maxConnections: 2 });
    const sent = [send(pool), send(pool), send(pool)];
    while (waiting.length < 2) await sleep(5);
    await sleep(50);
    assert.equal(waiting.length, 2);
    assert.deepEqual(pool.stats, { connected: 2, running: 2, pending: 1 });
    for (const socket of waiting.splice(0)) socket.write(OK);
    while (waiting.length < 1) await sleep(5);
    waiting[0]!.write(OK);
    for (const x of sent) assert.equal((await x.done).body, 'ok');
    assert.equal(s.connections(), 2);
  });

  it('a server that never answers, or stalls mid-body, times out', async () => {
    const s = await serve((request, socket) => {
      if (request.includes('/stall')) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc');
    });
    const pool = poolFor(s.address, { headersTimeoutMs: 200, bodyTimeoutMs: 200 });
    const silent = await send(pool).done;
    assert.ok(silent.error instanceof UpstreamTimeoutError);
    assert.match(silent.error.message, /no response headers within 200 ms/);
    const stalled = await send(pool, { path: '/stall' }).done;
    assert.ok(stalled.error instanceof UpstreamTimeoutError);
    assert.match(stalled.error.message, /no response data for 200 ms/);
    assert.equal(stalled.body, 'abc');
  });

  it('a connection cut mid-answer is an error; one that only ends a close-delimited body is not', async () => {
    const s = await serve((request, socket) => {
      if (request.includes('/cut')) socket.end('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc');
      else socket.end('HTTP/1.1 200 OK\r\n\r\nto the end');
    });
    const pool = poolFor(s.address);
    const cut = await send(pool, { path: '/cut' }).done;
    assert.match(cut.error!.message, /in the middle of its response/);
    const whole = await send(pool).done;
    assert.ok(whole.ended);
    assert.equal(whole.body, 'to the end');
  });

  it('a malformed answer fails the exchange and the connection is not reused', async () => {
    const s = await serve((request, socket) => {
      if (request.includes('/smuggle'))
        socket.write(
          'HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n' +
            '0\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nsmuggled',
        );
      else socket.write(OK);
    });
    const pool = poolFor(s.address);
    const smuggled = await send(pool, { path: '/smuggle' }).done;
    assert.match(smuggled.error!.message, /both transfer-encoding and content-length/);
    const next = await send(pool).done;
    assert.equal(next.body, 'ok', 'the next request gets its own answer, not the smuggled one');
    assert.equal(s.connections(), 2);
  });

  it('bytes sent unasked on an idle connection drop it; the next request opens another', async () => {
    const s = await serve((_, socket) => {
      socket.write(OK);
      setTimeout(() => socket.write(OK), 20);
    });
    const pool = poolFor(s.address);
    assert.equal((await send(pool).done).body, 'ok');
    await sleep(100);
    assert.equal(pool.stats.connected, 0);
    assert.equal((await send(pool).done).body, 'ok');
    assert.equal(s.connections(), 2);
  });

  it("keeps an idle connection no longer than the server's keep-alive hint less a second", async () => {
    const s = await serve((_, socket) =>
      socket.write('HTTP/1.1 200 OK\r\nkeep-alive: timeout=1\r\ncontent-length: 0\r\n\r\n'),
    );
    const pool = poolFor(s.address);
    await send(pool).done;
    await send(pool).done;
    assert.equal(s.connections(), 2, 'timeout=1: not kept at all');
  });

  it('refuses a request head a header could split, and sends nothing', async () => {
    const seen: string[] = [];
    const s = await serve((request) => seen.push(request));
    const pool = poolFor(s.address);
    const hostile: Partial<UpstreamRequest>[] = [
      { headers: { 'x-a': 'b\r\nx-injected: 1' } },
      { headers: { 'x a': 'b' } },
      { path: '/v1 HTTP/1.1\r\nx-injected: 1\r\n\r\nGET /' },
      { method: 'GET /x' },
    ];
    for (const request of hostile) {
      const o = await send(pool, request).done;
      assert.match(o.error!.message, /invalid request/);
    }
    await sleep(50);
    assert.deepEqual(seen, []);
    assert.throws(() =>
      requestHead({ method: 'GET', path: '/', headers: { 'x-a': 'a\0' }, body: null }, 'h'),
    );
  });

  it('a refused connection is an error naming it; the pool stays usable', async () => {
    const pool = poolFor('127.0.0.1:1');
    const o = await send(pool).done;
    assert.match(o.error!.message, /ECONNREFUSED/);
    assert.deepEqual(pool.stats, { connected: 0, running: 0, pending: 0 });
  });
});
