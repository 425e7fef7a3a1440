import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer as createNetServer, type Server as NetServer } from 'node:net';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  frameChunk,
  matchRoute,
  startBuiltinGateway,
  type GatewayRoute,
  type RunningGateway,
} from './builtin-gateway.js';
import { Http1ResponseParser } from '../transport/index.js';
import { openRaw, type RawAnswer } from '../../test/harness/raw-http.js';

const routes: GatewayRoute[] = [
  { prefix: '/ns/m/v1/chat/completions', rewrite: '/v1/chat/completions', backend: 'pool' },
  { prefix: '/ns/m/v1/completions', rewrite: '/v1/completions', backend: 'pool' },
  { prefix: '/ns/m', rewrite: '/', backend: 'service' },
];

describe('matchRoute', () => {
  const cases: [string, string | undefined, 'pool' | 'service' | undefined][] = [
    ['/ns/m/v1/completions', '/v1/completions', 'pool'],
    ['/ns/m/v1/completions?stream=1', '/v1/completions?stream=1', 'pool'],
    ['/ns/m/v1/chat/completions', '/v1/chat/completions', 'pool'],
    ['/ns/m/v1/models', '/v1/models', 'service'],
    ['/ns/m', '/', 'service'],
    ['/ns/mx/v1/models', undefined, undefined],
    ['/other', undefined, undefined],
  ];
  for (const [url, path, backend] of cases) {
    it(`${url} → ${path ?? 'no route'}`, () => {
      const m = matchRoute(routes, url);
      assert.equal(m?.path, path);
      assert.equal(m?.route.backend, backend);
    });
  }
});

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : 0);
    }),
  );
}

describe('frameChunk', () => {
  it('frames a piece as size in hex, CRLF, the bytes, CRLF, for sizes across digit counts', () => {
    for (const size of [1, 9, 15, 16, 255, 256, 4095, 4096, 65_536, 1_048_577]) {
      const data = Buffer.alloc(size, 0x61);
      const framed = frameChunk(data);
      const head = `${size.toString(16)}\r\n`;
      assert.equal(framed.subarray(0, head.length).toString('latin1'), head, `size ${size}`);
      assert.ok(framed.subarray(head.length, head.length + size).equals(data), `size ${size}`);
      assert.equal(framed.subarray(head.length + size).toString('latin1'), '\r\n', `size ${size}`);
      assert.equal(framed.length, head.length + size + 2, `size ${size}`);
    }
  });
});

describe('builtin gateway over real HTTP (round robin, no EPP)', () => {
  const upstreams: Server[] = [];
  const seen: string[] = [];
  let closedEarly = 0;
  let gateway: RunningGateway;
  let release: (() => void) | undefined;

  before(async () => {
    const addresses: string[] = [];
    for (const name of ['a', 'b']) {
      const server = createServer((req, res: ServerResponse) => {
        seen.push(`${name} ${req.method} ${req.url}`);
        res.setHeader('x-inference-pod', name);
        if (req.url === '/v1/completions') {
          // An SSE stream whose second event waits for the test: proves chunks pass through as they come.
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write('data: {"n":1}\n\n');
          res.on('close', () => {
            if (!res.writableFinished) closedEarly += 1;
          });
          release = () => {
            res.write('data: [DONE]\n\n');
            res.end();
          };
          return;
        }
        req.resume();
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ pod: name }));
        });
      });
      upstreams.push(server);
      addresses.push(`127.0.0.1:${await listen(server)}`);
    }
    gateway = await startBuiltinGateway({ port: 0, routes, serviceEndpoints: addresses });
  });
  after(async () => {
    await gateway.close();
    for (const s of upstreams) {
      s.closeAllConnections();
      s.close();
    }
  });

  it('rewrites the path and balances round robin', async () => {
    const pods: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${gateway.url}/ns/m/v1/models`);
      assert.equal(res.status, 200);
      pods.push(((await res.json()) as { pod: string }).pod);
    }
    assert.deepEqual(pods.sort(), ['a', 'a', 'b', 'b']);
    assert.ok(seen.includes('a GET /v1/models'));
  });

  it('answers 404 with an OpenAI error outside the routes', async () => {
    const res = await fetch(`${gateway.url}/elsewhere`);
    assert.equal(res.status, 404);
    assert.ok(((await res.json()) as { error: { message: string } }).error.message);
  });

  it('streams SSE events as they come', async () => {
    const res = await fetch(`${gateway.url}/ns/m/v1/completions`, { method: 'POST', body: '{}' });
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.match(Buffer.from(first.value).toString(), /"n":1/);
    release!();
    let rest = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += Buffer.from(value).toString();
    }
    assert.match(rest, /\[DONE\]/);
  });

  it('aborts the upstream request when the client goes away', async () => {
    const before = closedEarly;
    const controller = new AbortController();
    const res = await fetch(`${gateway.url}/ns/m/v1/completions`, {
      method: 'POST',
      body: '{}',
      signal: controller.signal,
    });
    await res.body!.getReader().read();
    controller.abort();
    const deadline = Date.now() + 5000;
    while (closedEarly === before && Date.now() < deadline) await sleep(20);
    assert.equal(closedEarly, before + 1);
  });

  it('answers 502 when the endpoint is gone', async () => {
    const g = await startBuiltinGateway({ port: 0, routes, serviceEndpoints: ['127.0.0.1:1'] });
    try {
      const res = await fetch(`${g.url}/ns/m/v1/models`);
      assert.equal(res.status, 502);
      assert.match(((await res.json()) as { error: { message: string } }).error.message, /127\.0\.0\.1:1/);
    } finally {
      await g.close();
    }
  });
});

describe('builtin gateway in front of a hostile model server (raw bytes on a real socket)', () => {
  /** What the upstream answers for each path: bytes no well-behaved server would send. */
  const answers: Record<string, string> = {
    '/smuggle':
      'HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n' +
      'HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nsmuggled',
    '/split': 'HTTP/1.1 200 OK\r\nx-a: 1\rset-cookie: stolen=1\r\ncontent-length: 2\r\n\r\nok',
    '/cut': 'HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 100\r\n\r\ndata: 1\n\n',
    '/badchunk': 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\nzz\r\n',
    '/ok': 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}',
  };
  let upstream: NetServer;
  let gateway: RunningGateway;

  before(async () => {
    upstream = createNetServer((socket) => {
      socket.on('error', () => {});
      socket.once('data', (data) => {
        const path = data.toString('latin1').split(' ')[1]!;
        const answer = answers[path] ?? answers['/ok']!;
        if (path === '/cut' || path === '/badchunk') socket.end(answer);
        else socket.write(answer);
      });
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    const port = (upstream.address() as { port: number }).port;
    gateway = await startBuiltinGateway({
      port: 0,
      routes: [{ prefix: '/', backend: 'service' }],
      serviceEndpoints: [`127.0.0.1:${port}`],
    });
  });
  after(async () => {
    await gateway.close();
    upstream.close();
  });

  for (const [path, what] of [
    ['/smuggle', /both transfer-encoding and content-length/],
    ['/split', /control character/],
  ] as const)
    it(`answers 502 for ${path}, and nothing of the upstream's answer reaches the client`, async () => {
      const res = await fetch(`${gateway.url}${path}`);
      assert.equal(res.status, 502);
      assert.equal(res.headers.get('set-cookie'), null);
      const text = await res.text();
      assert.match(text, what);
      assert.doesNotMatch(text, /smuggled/);
    });

  for (const path of ['/cut', '/badchunk'])
    it(`cuts the client's response short when the upstream breaks mid-body (${path})`, async () => {
      const res = await fetch(`${gateway.url}${path}`);
      assert.equal(res.status, 200, 'the head had gone out');
      await assert.rejects(res.text(), 'the client sees an incomplete response, not a complete one');
    });

  it('stays up and serves the next request', async () => {
    const res = await fetch(`${gateway.url}/ok`);
    assert.deepEqual(await res.json(), { ok: true });
  });
});

describe('builtin gateway: the client side of a streamed answer (raw client sockets)', () => {
  /** Piece i of a stream: its index and a run of one letter, so a piece lost, repeated or overwritten shows. */
  const piece = (i: number, size: number): string =>
    `${String(i).padStart(6, '0')}:` + String.fromCharCode(97 + (i % 26)).repeat(size - 7);
  const streamOf = (count: number, size: number): string =>
    Array.from({ length: count }, (_, i) => piece(i, size)).join('');
  /** Compares long bodies without printing megabytes when they differ. */
  const sameBody = (actual: string, expected: string): void => {
    let at = 0;
    while (at < expected.length && actual[at] === expected[at]) at++;
    assert.ok(
      actual === expected,
      `${actual.length} bytes against ${expected.length}, first difference at ${at}`,
    );
  };
  let upstream: Server;
  let gateway: RunningGateway;
  /** How often the upstream's socket was full: the gateway stopped reading it. */
  let upstreamDrains = 0;

  before(async () => {
    upstream = createServer((req, res) => {
      const query = new URL(req.url!, 'http://x').searchParams;
      const count = Number(query.get('pieces') ?? 10);
      const size = Number(query.get('size') ?? 100);
      req.resume();
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let i = 0;
      const more = (): void => {
        while (i < count) {
          if (!res.write(piece(i++, size))) {
            upstreamDrains++;
            res.once('drain', more);
            return;
          }
        }
        res.end();
      };
      more();
    });
    gateway = await startBuiltinGateway({
      port: 0,
      routes: [{ prefix: '/', backend: 'service' }],
      serviceEndpoints: [`127.0.0.1:${await listen(upstream)}`],
    });
  });
  after(async () => {
    await gateway.close();
    upstream.closeAllConnections();
    upstream.close();
  });

  /** Sends `text` on a raw connection and reads until the gateway closes it or `responses` answers are whole. */
  async function exchange(
    text: string,
    responses: number,
    options: { readAfterMs?: number } = {},
  ): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }[]> {
    const socket = connect(Number(new URL(gateway.url).port), '127.0.0.1');
    await once(socket, 'connect');
    if (options.readAfterMs) socket.pause();
    socket.write(text);
    const answers: { status: number; headers: IncomingHttpHeaders; body: string }[] = [];
    const parserFor = (): Http1ResponseParser => {
      const answer = { status: 0, headers: {} as IncomingHttpHeaders, body: '' };
      return new Http1ResponseParser({
        onHead: (status, headers) => Object.assign(answer, { status, headers }),
        onBody: (chunk) => (answer.body += chunk.toString('latin1')),
        onComplete: () => answers.push(answer),
      });
    };
    let parser = parserFor();
    if (options.readAfterMs) setTimeout(() => socket.resume(), options.readAfterMs);
    for await (const data of socket as AsyncIterable<Buffer>) {
      let rest = data;
      while (rest.length > 0) {
        rest = rest.subarray(parser.execute(rest));
        if (parser.done) parser = parserFor();
      }
      if (answers.length === responses) break;
    }
    if (answers.length < responses) parser.finish();
    socket.destroy();
    return answers;
  }

  it('two clients that read late, HTTP/1.1 and HTTP/1.0, get every byte in order while the upstreams wait', async () => {
    const before = upstreamDrains;
    // 8 MiB each: more than the loopback sockets' buffers hold, so the gateway must stop reading the upstreams.
    // Both at once: the pool's one read buffer serves both connections while their clients hold writes back.
    const [[chunked], [unframed]] = await Promise.all([
      exchange(
        'POST /stream?pieces=256&size=32768 HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 2\r\n\r\n{}',
        1,
        {
          readAfterMs: 300,
        },
      ),
      exchange('POST /stream?pieces=256&size=32768 HTTP/1.0\r\ncontent-length: 2\r\n\r\n{}', 1, {
        readAfterMs: 300,
      }),
    ]);
    assert.equal(chunked!.headers['transfer-encoding'], 'chunked');
    sameBody(chunked!.body, streamOf(256, 32768));
    assert.equal(unframed!.headers['transfer-encoding'], undefined, 'no chunked framing for HTTP/1.0');
    sameBody(unframed!.body, streamOf(256, 32768));
    assert.ok(upstreamDrains >= before + 2, 'both upstreams had to wait for the gateway');
  });

  it('pipelined requests get their answers whole, one after the other', async () => {
    const request = (pieces: number, size: number): string =>
      `POST /stream?pieces=${pieces}&size=${size} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 2\r\n\r\n{}`;
    const answers = await exchange(request(40, 5000) + request(30, 700), 2);
    assert.equal(answers.length, 2);
    sameBody(answers[0]!.body, streamOf(40, 5000));
    sameBody(answers[1]!.body, streamOf(30, 700));
  });
});

/** Polls a condition (bounded: 400 × 25 ms), for state that settles asynchronously; not a timing assertion. */
async function until(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await condition()) return;
    await sleep(25);
  }
  assert.fail(`timed out waiting until ${what}`);
}

/** An upstream that answers every request, once its body is in, with the body's length. */
async function countingUpstream(): Promise<{ server: Server; address: string }> {
  const server = createServer((req, res) => {
    let length = 0;
    req.on('data', (chunk: Buffer) => (length += chunk.length));
    req.on('end', () => {
      const body = JSON.stringify({ length });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  return { server, address: `127.0.0.1:${await listen(server)}` };
}

function errorMessage(answer: RawAnswer | undefined): string {
  return (JSON.parse(answer?.body ?? '{}') as { error?: { message?: string } }).error?.message ?? '';
}

describe('builtin gateway: the budget of buffered request bodies', () => {
  const LIMIT = 64 * 1024;
  const BUDGET = 2 * LIMIT;
  let upstream: Server;
  let gateway: RunningGateway;
  const head = (length: number) =>
    `POST /ns/m/v1/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\n\r\n`;
  const chunkedHead =
    'POST /ns/m/v1/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ntransfer-encoding: chunked\r\n\r\n';
  const chunk = (size: number) => `${size.toString(16)}\r\n${' '.repeat(size)}\r\n`;
  const buffered = async () => (await gateway.stats()).bufferedBodyBytes;

  before(async () => {
    const counting = await countingUpstream();
    upstream = counting.server;
    gateway = await startBuiltinGateway({
      port: 0,
      routes,
      serviceEndpoints: [counting.address],
      bodyLimitBytes: LIMIT,
      bodyBudgetBytes: BUDGET,
    });
  });
  after(async () => {
    await gateway.close();
    upstream.closeAllConnections();
    upstream.close();
  });

  it('refuses with 503 and closes the connection a body that would pass the budget, announced or chunked', async () => {
    // Two slow uploads hold all but 8 KiB of the budget, as an attacker's connections would.
    const held = [await openRaw(gateway.port), await openRaw(gateway.port)];
    for (const c of held) c.socket.write(head(LIMIT) + ' '.repeat(60 * 1024));
    await until('both partial bodies are buffered', async () => (await buffered()) === 2 * 60 * 1024);

    const announced = await openRaw(gateway.port);
    announced.socket.write(head(16 * 1024) + ' '.repeat(16 * 1024));
    const refused = await announced.next();
    assert.equal(refused?.status, 503);
    assert.match(errorMessage(refused), /busy/);
    assert.match(errorMessage(refused), /retry/i);
    assert.equal(refused?.headers['connection'], 'close');
    await announced.closed;

    const chunked = await openRaw(gateway.port);
    chunked.socket.write(chunkedHead + chunk(4 * 1024));
    await until('the first chunk is buffered', async () => (await buffered()) === 124 * 1024);
    chunked.socket.write(chunk(8 * 1024));
    const refusedChunked = await chunked.next();
    assert.equal(refusedChunked?.status, 503);
    assert.equal(
      (JSON.parse(refusedChunked.body) as { error: { type: string } }).error.type,
      'ServiceUnavailableError',
    );
    await chunked.closed;
    await until('the refused body is released', async () => (await buffered()) === 2 * 60 * 1024);

    // The held uploads complete and are served: a refusal of others does not touch them.
    for (const c of held) c.socket.write(' '.repeat(4 * 1024));
    for (const c of held) assert.deepEqual(JSON.parse((await c.next())!.body), { length: LIMIT });
    for (const c of held) c.socket.destroy();
    await until('completed bodies are released', async () => (await buffered()) === 0);
  });

  it('gives every byte back after many clients vanish mid-body or are refused: the whole budget serves again', async () => {
    for (let round = 0; round < 25; round++) {
      const batch = await Promise.all([0, 1, 2, 3].map(() => openRaw(gateway.port)));
      // Bodies that would all fit, each one byte short of its end.
      for (const c of batch) c.socket.write(head(30 * 1024) + ' '.repeat(30 * 1024 - 1));
      await until('the batch is buffered', async () => (await buffered()) === 4 * (30 * 1024 - 1));
      for (const c of batch) c.socket.destroy();
      await until('the vanished bodies are released', async () => (await buffered()) === 0);
    }
    // Over the body limit, chunked: 413 once the limit is passed, and its bytes given back.
    const tooLarge = await openRaw(gateway.port);
    tooLarge.socket.write(chunkedHead + chunk(40 * 1024) + chunk(40 * 1024));
    assert.equal((await tooLarge.next())?.status, 413);
    await until('the refused body is released', async () => (await buffered()) === 0);

    // The whole budget again: two bodies of the limit at once, both held, both served.
    const both = [await openRaw(gateway.port), await openRaw(gateway.port)];
    for (const c of both) c.socket.write(head(LIMIT) + ' '.repeat(LIMIT - 1));
    await until('both bodies are buffered', async () => (await buffered()) === 2 * (LIMIT - 1));
    for (const c of both) c.socket.write(' ');
    for (const c of both) assert.equal((await c.next())?.status, 200);
    for (const c of both) c.socket.destroy();
    assert.equal(await buffered(), 0);
  });

  it('refuses a budget smaller than one largest body, saying what to set', async () => {
    await assert.rejects(
      startBuiltinGateway({
        port: 0,
        routes,
        serviceEndpoints: [],
        bodyLimitBytes: LIMIT,
        bodyBudgetBytes: LIMIT - 1,
      }),
      (error: Error & { code?: string }) =>
        error.code === 'LLMISVC_ERR_CONFIG' && /bodyBudgetBytes/.test(error.message),
    );
  });
});

describe('builtin gateway: the cap on client connections', () => {
  let upstream: Server;
  let gateway: RunningGateway;
  const get = 'GET /ns/m/v1/models HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n';

  before(async () => {
    const counting = await countingUpstream();
    upstream = counting.server;
    gateway = await startBuiltinGateway({
      port: 0,
      routes,
      serviceEndpoints: [counting.address],
      maxConnections: 3,
    });
  });
  after(async () => {
    await gateway.close();
    upstream.closeAllConnections();
    upstream.close();
  });

  it('closes connections past the cap unanswered, keeps serving the open ones, and accepts again once one closes', async () => {
    const open = [await openRaw(gateway.port), await openRaw(gateway.port), await openRaw(gateway.port)];
    for (const c of open) {
      c.socket.write(get);
      assert.equal((await c.next())?.status, 200);
    }
    const extra = await openRaw(gateway.port);
    extra.socket.write(get);
    assert.equal(await extra.next(), undefined, 'the connection past the cap got an answer');
    assert.equal(extra.received(), 0);

    for (const c of open) {
      c.socket.write(get);
      assert.equal((await c.next())?.status, 200, 'an open connection still serves');
    }
    open[0]!.socket.destroy();
    await until(
      'the gateway counts two connections',
      async () => (await gateway.stats()).clientConnections === 2,
    );
    const again = await openRaw(gateway.port);
    again.socket.write(get);
    assert.equal((await again.next())?.status, 200);
    for (const c of [...open, again]) c.socket.destroy();
  });
});

describe('builtin gateway: Host names it answers (DNS rebinding)', () => {
  let upstream: Server;
  let address: string;
  const dashboardCalls: string[] = [];
  const extraHandler = (req: { url?: string | undefined }, res: ServerResponse): boolean => {
    if (req.url !== '/dashboard/state') return false;
    dashboardCalls.push(req.url);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"secret":true}');
    return true;
  };
  const request = (path: string, host: string | undefined, method = 'GET') =>
    `${method} ${path} HTTP/1.${host === undefined ? '0' : '1'}\r\n${host === undefined ? '' : `host: ${host}\r\n`}` +
    (method === 'POST' ? 'content-type: application/json\r\ncontent-length: 2\r\n\r\n{}' : '\r\n');

  before(async () => {
    ({ server: upstream, address } = await countingUpstream());
  });
  after(() => {
    upstream.closeAllConnections();
    upstream.close();
  });

  it('on loopback: answers loopback names with any port, refuses any other Host with 421 before the dashboard or a completion', async () => {
    const gateway = await startBuiltinGateway({ port: 0, routes, serviceEndpoints: [address], extraHandler });
    try {
      const port = gateway.port;
      for (const host of [
        `127.0.0.1:${port}`,
        `localhost:${port}`,
        'app.localhost',
        `[::1]:${port}`,
        undefined,
      ]) {
        const c = await openRaw(port);
        c.socket.write(request('/dashboard/state', host));
        assert.equal((await c.next())?.status, 200, `Host ${host}`);
        c.socket.destroy();
      }
      const answered = dashboardCalls.length;
      for (const [path, method] of [
        ['/dashboard/state', 'GET'],
        ['/ns/m/v1/completions', 'POST'],
      ] as const) {
        const c = await openRaw(port);
        c.socket.write(request(path, `rebound.evil.example:${port}`, method));
        const refused = await c.next();
        assert.equal(refused?.status, 421, `${method} ${path}`);
        assert.match(errorMessage(refused), /rebound\.evil\.example/);
        assert.match(errorMessage(refused), /loopback/);
        assert.match(errorMessage(refused), /host/);
        await c.closed;
      }
      assert.equal(dashboardCalls.length, answered, 'the dashboard was asked for a foreign Host');
      // Clients of the gateway's own URL (fetch, undici, the bench) send its Host: served as before.
      assert.equal((await fetch(`${gateway.url}/ns/m/v1/models`)).status, 200);
    } finally {
      await gateway.close();
    }
  });

  it('on a non-loopback address: answers any Host: in production the names are for DNS to decide', async () => {
    const gateway = await startBuiltinGateway({
      host: '0.0.0.0',
      port: 0,
      routes,
      serviceEndpoints: [address],
      extraHandler,
    });
    try {
      const c = await openRaw(gateway.port);
      c.socket.write(request('/ns/m/v1/completions', 'llm.example.com', 'POST'));
      assert.equal((await c.next())?.status, 200);
      c.socket.write(request('/dashboard/state', 'other.example:8080'));
      assert.equal((await c.next())?.status, 200);
      c.socket.destroy();
    } finally {
      await gateway.close();
    }
  });
});
