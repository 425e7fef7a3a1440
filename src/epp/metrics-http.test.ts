import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import {
  BodyBuffer,
  DEFAULT_MAX_METRICS_BODY_BYTES,
  endpointNames,
  endpointSocketAddress,
  MetricsConnection,
} from './metrics-http.js';

const BODY = 'vllm:num_requests_waiting{model_name="m"} 3\n';

/** A server whose answer to each request the test chooses; counts connections. */
let server: Server;
let port = 0;
let connections = 0;
let answer: (socket: Socket, request: number) => void = () => undefined;

before(async () => {
  server = createServer((socket) => {
    connections++;
    let requests = 0;
    socket.on('data', () => answer(socket, requests++));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});

after(() => new Promise<void>((resolve) => server.close(() => resolve())));

const ok = (socket: Socket) =>
  socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`);

test('keeps one connection alive across GETs', async () => {
  connections = 0;
  answer = ok;
  const c = new MetricsConnection('127.0.0.1', port);
  for (let i = 0; i < 5; i++) assert.equal((await c.get('/metrics', 1000)).toString(), BODY);
  assert.equal(connections, 1);
  c.close();
});

test('a non-200 answer, a silent server and an oversized body fail; the next GET works on a new connection', async () => {
  const c = new MetricsConnection('127.0.0.1', port, 1024);
  answer = (s) => s.write('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
  await assert.rejects(c.get('/metrics', 1000), /HTTP 404/);
  answer = () => undefined;
  await assert.rejects(c.get('/metrics', 50), /no answer within 50 ms/);
  answer = (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n');
  await assert.rejects(c.get('/metrics', 1000), /exceeds 1024 bytes/);
  connections = 0;
  answer = ok;
  assert.equal((await c.get('/metrics', 1000)).toString(), BODY);
  assert.equal(connections, 1);
  c.close();
});

test('a kept-alive connection the server closed is retried once on a fresh one', async () => {
  const c = new MetricsConnection('127.0.0.1', port);
  // The first connection answers once, then closes on the next request without answering.
  answer = (s, n) => (n === 0 ? ok(s) : s.destroy());
  assert.equal((await c.get('/metrics', 1000)).toString(), BODY);
  assert.equal((await c.get('/metrics', 1000)).toString(), BODY);
  c.close();
});

test('a refused connection fails the GET', async () => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const deadPort = (closed.address() as { port: number }).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  await assert.rejects(new MetricsConnection('127.0.0.1', deadPort).get('/metrics', 1000), /ECONNREFUSED/);
});

/** Writes `text` in pieces of `size` bytes, one per turn of the event loop. */
function trickle(socket: Socket, text: string, size: number): void {
  const bytes = Buffer.from(text);
  let at = 0;
  const next = (): void => {
    if (at >= bytes.length || socket.destroyed) return;
    socket.write(bytes.subarray(at, at + size));
    at += size;
    setImmediate(next);
  };
  next();
}

test('reads content-length, chunked and read-to-close answers, whole or in pieces, as bytes', async () => {
  const c = new MetricsConnection('127.0.0.1', port);
  const chunked =
    `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nvllm:\r\n` +
    `${(BODY.length - 5).toString(16)};x=y\r\n${BODY.slice(5)}\r\n0\r\nX-T: 1\r\n\r\n`;
  answer = (s) => s.write(chunked);
  assert.equal((await c.get('/metrics', 1000)).toString(), BODY);
  for (const size of [1, 7]) {
    answer = (s) => trickle(s, chunked, size);
    assert.equal((await c.get('/metrics', 1000)).toString(), BODY, `chunked in pieces of ${size}`);
    answer = (s) => trickle(s, `HTTP/1.1 200 OK\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`, size);
    assert.equal((await c.get('/metrics', 1000)).toString(), BODY, `content-length in pieces of ${size}`);
  }
  // A body that runs to the end of the connection ends with the server's clean close; the next GET reconnects.
  connections = 0;
  answer = (s) => s.end(`HTTP/1.1 200 OK\r\n\r\n${BODY}`);
  assert.equal((await c.get('/metrics', 1000)).toString(), BODY);
  answer = ok;
  assert.equal((await c.get('/metrics', 1000)).toString(), BODY);
  assert.equal(connections, 1);
  c.close();
});

test('refuses hostile answers with a clear error, and the next GET works on a new connection', async () => {
  const c = new MetricsConnection('127.0.0.1', port, 1024);
  const cases: [string, RegExp][] = [
    ['garbage\r\n\r\n', /not an HTTP\/1.x status line/],
    ['HTTP/1.1 200 OK\r\nContent-Length: 99999\r\n\r\n', /99999 bytes exceeds 1024 bytes/],
    ['HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', /bad content-length/],
    ['HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n', /both transfer-encoding/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', /bad chunk size/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n401\r\n' + 'x'.repeat(1030), /exceeds 1024 bytes/],
    ['HTTP/1.1 200 OK\r\n\r\n' + 'x'.repeat(1030), /exceeds 1024 bytes/],
    ['HTTP/1.1 200 OK\r\nX: ' + 'y'.repeat(70_000), /head larger than/],
    ['HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n\r\n', /control character/],
  ];
  for (const [text, error] of cases) {
    answer = (s) => s.write(text);
    await assert.rejects(c.get('/metrics', 1000), error, text.slice(0, 60));
  }
  // Cut short: the server closes in the middle of a counted body.
  answer = (s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nvllm:');
  await assert.rejects(c.get('/metrics', 1000), /in the middle of its response/);
  connections = 0;
  answer = ok;
  assert.equal((await c.get('/metrics', 1000)).toString(), BODY);
  assert.equal(connections, 1);
  c.close();
});

test('a body in small pieces is collected into one buffer that grows by doubling, not one buffer per piece', () => {
  const body = new BodyBuffer(1024 * 1024);
  const text = Buffer.from('vllm:num_requests_waiting 3\n'.repeat(20_000));
  let grown = 0;
  let capacity = 0;
  for (let i = 0; i < text.length; i += 16) {
    body.append(text.subarray(i, i + 16));
    if (body.capacity !== capacity) grown++;
    capacity = body.capacity;
  }
  assert.ok(body.bytes().equals(text));
  assert.ok(capacity <= 2 * text.length, `${capacity} bytes held for ${text.length}`);
  assert.ok(grown <= 20, `grew ${grown} times`);
  // One piece is kept as it came; more pieces may not pass the bound.
  const whole = Buffer.from('x'.repeat(100));
  const single = new BodyBuffer(100);
  single.append(whole);
  assert.equal(single.bytes().buffer, whole.buffer, 'not copied');
  assert.throws(() => single.append(Buffer.from('y')), /exceeds 100 bytes/);
});

test('the default body bound is 2 MiB: a chunked 3 MiB exposition fails the scrape', async () => {
  assert.equal(DEFAULT_MAX_METRICS_BODY_BYTES, 2 * 1024 * 1024);
  const c = new MetricsConnection('127.0.0.1', port);
  answer = (s) => {
    s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
    const chunk = Buffer.from(`400\r\n${'x'.repeat(1024)}\r\n`.repeat(1024));
    for (let i = 0; i < 3 && !s.destroyed; i++) s.write(chunk);
  };
  await assert.rejects(c.get('/metrics', 10_000), /exceeds 2097152 bytes/);
  answer = ok;
  assert.equal((await c.get('/metrics', 1000)).toString(), BODY);
  c.close();
});

test('a body in 1-byte pieces is refused after a few thousand of them; a few 1-byte pieces are fine', () => {
  const tiny = new BodyBuffer(1024 * 1024);
  const byte = Buffer.from('x');
  assert.throws(() => {
    for (let i = 0; i < 1024 * 1024; i++) tiny.append(byte);
  }, /pieces of 1 bytes on average/);
  assert.ok(tiny.bytes().length < 5000, String(tiny.bytes().length));
  const trickled = new BodyBuffer(1024 * 1024);
  for (let i = 0; i < 1000; i++) trickled.append(byte);
  trickled.append(Buffer.alloc(100_000, 'y'));
  assert.equal(trickled.bytes().length, 101_000);
});

test('an endpoint goes by its address, the address without brackets, and its bare IP either way', () => {
  assert.deepEqual(endpointNames('10.0.0.5:8000'), { withPort: ['10.0.0.5:8000'], host: ['10.0.0.5'] });
  assert.deepEqual(endpointNames('[fd00::5]:8000'), {
    withPort: ['[fd00::5]:8000', 'fd00::5:8000'],
    host: ['fd00::5', '[fd00::5]'],
  });
  assert.deepEqual(endpointSocketAddress('[fd00::5]:8000'), { host: 'fd00::5', port: 8000 });
});
