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
      exchange('POST /stream?pieces=256&size=32768 HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}', 1, {
        readAfterMs: 300,
      }),
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
      `POST /stream?pieces=${pieces}&size=${size} HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}`;
    const answers = await exchange(request(40, 5000) + request(30, 700), 2);
    assert.equal(answers.length, 2);
    sameBody(answers[0]!.body, streamOf(40, 5000));
    sameBody(answers[1]!.body, streamOf(30, 700));
  });
});
