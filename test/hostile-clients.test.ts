/**
 * Issue 18, second part: hostile clients at the builtin gateway and at the EPP (behind a real Envoy), in front of
 * real simulators on loopback. Malformed and wrongly typed bodies, bodies at and over the limit, header floods,
 * slowloris connections and clients that vanish mid-stream a thousand times: each gets a bounded, named answer, and
 * nothing stays behind (running requests, in-flight counts, sockets). Every loop is bounded in count and time.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { request } from 'undici';
import { startEpp, type RunningEpp } from '../src/epp/index.js';
import {
  startBuiltinGateway,
  type RunningGateway,
  startEnvoy,
  type RunningEnvoy,
} from '../src/gateway/index.js';
import { startSimulator, type RunningSimulator } from '../src/sim/index.js';
import { pipelineFlood } from './harness/pipelining.js';

const ENVOY_BIN = process.env['ENVOY_BIN'];
const quiet = pino({ level: 'silent' });
const BODY_LIMIT = 64 * 1024;
const MODEL = 'hostile-model';

/** Polls a condition (bounded: 400 × 25 ms), for state that settles asynchronously; not a timing assertion. */
async function until(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await condition()) return;
    await sleep(25);
  }
  throw new Error(`timed out waiting until ${what}`);
}

async function post(
  url: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string }> {
  const res = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  return { status: res.statusCode, text: await res.body.text() };
}

async function running(sim: RunningSimulator): Promise<number> {
  const text = await (await fetch(`${sim.url}/metrics`)).text();
  let total = 0;
  for (const m of text.matchAll(/^vllm:num_requests_(running|waiting)\{[^}]*\} (\d+(?:\.\d+)?)$/gm))
    total += Number(m[2]);
  return total;
}

/** A body of exactly `size` bytes that is a valid completion request (the prompt padded with spaces). */
function bodyOfSize(size: number): Buffer {
  const head = JSON.stringify({ model: MODEL, prompt: 'pad', max_tokens: 1 });
  const padded = `${head.slice(0, -1)}${' '.repeat(size - head.length)}}`;
  assert.equal(Buffer.byteLength(padded), size);
  return Buffer.from(padded);
}

/** Sends raw bytes on a new connection and resolves with everything received until the server closes (≤ 10 s). */
function raw(port: number, write: (socket: Socket) => void): Promise<{ text: string; error?: string }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let error: string | undefined;
    const timer = setTimeout(() => socket.destroy(), 10_000);
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, ...(error ? { error } : {}) });
    });
    socket.on('connect', () => write(socket));
  });
}

/**
 * Starts `count` streamed completions and vanishes from each: a third right after sending (before any answer), the
 * rest after the first chunk of the stream. `concurrency` at a time; resolves with how many got their first chunk.
 */
async function vanish(port: number, path: string, count: number, concurrency: number): Promise<number> {
  let started = 0;
  let midStream = 0;
  const body = JSON.stringify({
    model: MODEL,
    prompt: 'tell me a long story',
    max_tokens: 200,
    stream: true,
  });
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const req = httpRequest({
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      });
      const timer = setTimeout(() => req.destroy(), 10_000);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      req.on('error', done);
      req.on('close', done);
      req.on('response', (res) => {
        res.once('data', () => {
          midStream++;
          req.destroy();
        });
        res.on('error', () => undefined);
      });
      req.end(body);
      if (i % 3 === 0) setImmediate(() => req.destroy());
    });
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started < count) await one(started++);
    }),
  );
  return midStream;
}

const MALFORMED: [string, string | Buffer, number][] = [
  ['truncated JSON', '{"model": "hostile-model", "prompt": ', 400],
  ['not JSON', 'not json at all', 400],
  ['empty body', '', 400],
  ['a JSON array', '[]', 400],
  ['an array of requests', JSON.stringify([{ model: MODEL, prompt: 'x' }]), 400],
  ['a JSON string', '"hostile-model"', 400],
  ['a number', '42', 400],
  ['null', 'null', 400],
  ['model as a number', JSON.stringify({ model: 5, prompt: 'x' }), 400],
  ['model as an array', JSON.stringify({ model: [MODEL], prompt: 'x' }), 400],
  ['model as an object', JSON.stringify({ model: { name: MODEL }, prompt: 'x' }), 400],
  ['prompt as an object', JSON.stringify({ model: MODEL, prompt: { text: 'x' } }), 400],
  ['max_tokens as a string', JSON.stringify({ model: MODEL, prompt: 'x', max_tokens: 'many' }), 400],
  ['stream as a string', JSON.stringify({ model: MODEL, prompt: 'x', stream: 'yes' }), 400],
  ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0x6d, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), 400],
  ['30,000-deep nesting', '['.repeat(30_000) + ']'.repeat(30_000), 400],
  ['a prototype-polluting key', '{"__proto__": {"model": "hostile-model"}, "prompt": "x"}', 400],
];

describe('hostile clients at the builtin gateway', () => {
  const sims: RunningSimulator[] = [];
  let epp: RunningEpp;
  let gateway: RunningGateway;

  before(async () => {
    for (const pod of ['hostile-a', 'hostile-b'])
      sims.push(await startSimulator({ port: 0, model: MODEL, podName: pod, timeScale: 0.05 }));
    epp = await startEpp({
      host: '127.0.0.1',
      grpcPort: 0,
      grpcHealthPort: 0,
      metricsPort: 0,
      endpoints: sims.map((s) => ({ address: `127.0.0.1:${s.port}` })),
      refreshMetricsIntervalMs: 25,
      logger: quiet,
    });
    gateway = await startBuiltinGateway({
      port: 0,
      routes: [{ prefix: '/', backend: 'pool' }],
      eppAddress: `127.0.0.1:${epp.grpcPort}`,
      serviceEndpoints: [],
      bodyLimitBytes: BODY_LIMIT,
      clientHeadersTimeoutMs: 1000,
    });
    await until('the EPP has scraped both simulators', () =>
      epp.datastore.endpoints().every((e) => !e.stale),
    );
  });

  after(async () => {
    await gateway?.close();
    await epp?.close();
    for (const s of sims) await s.close();
  });

  test('malformed JSON, wrong types and JSON arrays as bodies get 400 with an OpenAI error', async () => {
    for (const [label, body, status] of MALFORMED) {
      const reply = await post(`${gateway.url}/v1/completions`, body);
      assert.equal(reply.status, status, `${label}: ${reply.text.slice(0, 200)}`);
      const error = (JSON.parse(reply.text) as { error?: { message?: unknown } }).error;
      assert.equal(typeof error?.message, 'string', label);
    }
    const ok = await post(`${gateway.url}/v1/completions`, JSON.stringify({ model: MODEL, prompt: 'hi' }));
    assert.equal(ok.status, 200, 'still serving');
  });

  test('a body of exactly the limit is served; one byte more gets 413, announced or chunked', async () => {
    const url = `${gateway.url}/v1/completions`;
    assert.equal((await post(url, bodyOfSize(BODY_LIMIT))).status, 200);
    assert.equal((await post(url, bodyOfSize(BODY_LIMIT + 1))).status, 413);
    // Without content-length (chunked): the limit counts the bytes as they arrive.
    const chunked = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Readable.from([bodyOfSize(BODY_LIMIT + 1)]),
    });
    assert.equal(chunked.statusCode, 413);
    await chunked.body.text();
  });

  test('a huge upload gets 413 without being read: the connection closes long before its end', async () => {
    const total = 64 * 1024 * 1024;
    for (const framing of ['announced', 'chunked'] as const) {
      let written = 0;
      const reply = await raw(gateway.port, (socket) => {
        socket.write(
          `POST /v1/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n` +
            (framing === 'announced'
              ? `content-length: ${total}\r\n\r\n`
              : 'transfer-encoding: chunked\r\n\r\n'),
        );
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        const pump = () => {
          while (written < total && !socket.destroyed) {
            written += chunk.length;
            const framed =
              framing === 'chunked' ? [`${chunk.length.toString(16)}\r\n`, chunk, '\r\n'] : [chunk];
            let ok = true;
            for (const part of framed) ok = socket.write(part) && ok;
            if (!ok) return socket.once('drain', pump);
          }
        };
        pump();
      });
      assert.match(
        reply.text,
        /^HTTP\/1\.1 413 /,
        `${framing}: ${reply.text.slice(0, 80)} ${reply.error ?? ''}`,
      );
      assert.ok(written < total, `${framing}: all ${total} bytes were accepted`);
      console.log(
        `huge upload (${framing}): 413 after ${(written / 1048576).toFixed(1)} MiB of 64 MiB written`,
      );
    }
  });

  test('too many headers or too large headers get 431', async () => {
    const many = Array.from({ length: 150 }, (_, i) => `x-flood-${i}: ${i}\r\n`).join('');
    const tooMany = await raw(gateway.port, (s) =>
      s.end(`GET /v1/models HTTP/1.1\r\nhost: 127.0.0.1\r\n${many}connection: close\r\n\r\n`),
    );
    assert.match(tooMany.text, /^HTTP\/1\.1 431 /, tooMany.text.slice(0, 80));
    const big = await raw(gateway.port, (s) =>
      s.end(
        `GET /v1/models HTTP/1.1\r\nhost: 127.0.0.1\r\nx-big: ${'a'.repeat(64 * 1024)}\r\nconnection: close\r\n\r\n`,
      ),
    );
    assert.match(big.text, /^HTTP\/1\.1 431 /, big.text.slice(0, 80));
    const fine = await raw(gateway.port, (s) =>
      s.write(
        `GET /v1/models HTTP/1.1\r\nhost: 127.0.0.1\r\n${many.split('\r\n').slice(0, 80).join('\r\n')}\r\nconnection: close\r\n\r\n`,
      ),
    );
    assert.match(fine.text, /^HTTP\/1\.1 200 /, `80 headers are fine: ${fine.text.slice(0, 80)}`);
  });

  test('slowloris: 200 connections trickling headers are closed by the header timeout; others are served meanwhile', async () => {
    const held: Socket[] = [];
    const closed = new Set<Socket>();
    const answers: string[] = [];
    const trickle = setInterval(() => {
      for (const s of held)
        if (!s.destroyed) s.write(`x-slow-${Math.random().toString(36).slice(2, 6)}: 1\r\n`);
    }, 200);
    try {
      for (let i = 0; i < 200; i++) {
        const s = connect(gateway.port, '127.0.0.1');
        s.on('error', () => undefined);
        s.on('data', (d: Buffer) => answers.push(d.toString('latin1').split('\r\n')[0]!));
        s.on('close', () => closed.add(s));
        s.write('POST /v1/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n');
        held.push(s);
      }
      const statuses: number[] = [];
      for (let i = 0; i < 20; i++) {
        const reply = await post(
          `${gateway.url}/v1/completions`,
          JSON.stringify({ model: MODEL, prompt: `q${i}` }),
        );
        statuses.push(reply.status);
      }
      assert.deepEqual(statuses, Array(20).fill(200), 'requests served while 200 connections are held');
      await until('the gateway closed every slow connection', () => closed.size === held.length);
      const timeouts = answers.filter((a) => a.startsWith('HTTP/1.1 408')).length;
      console.log(
        `slowloris: ${closed.size} of 200 held connections closed by the gateway, ${timeouts} with 408`,
      );
    } finally {
      clearInterval(trickle);
      for (const s of held) s.destroy();
    }
  });

  test('pipelining: a connection runs its requests one at a time; a flood closes it; a client that leaves runs none of what it queued', async () => {
    const completion = (prompt: string, close = false) => {
      const body = JSON.stringify({ model: MODEL, prompt, max_tokens: 2 });
      return (
        `POST /v1/completions HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n` +
        `content-length: ${body.length}\r\n${close ? 'connection: close\r\n' : ''}\r\n${body}`
      );
    };
    const served = async () =>
      (await Promise.all(sims.map(async (s) => (await fetch(`${s.url}/metrics`)).text()))).reduce(
        (n, text) => n + Number(/^vllm:request_success_total(?:\{[^}]*\})? (\S+)$/m.exec(text)?.[1] ?? 0),
        0,
      );
    // Three written at once: all answered, in order.
    const answers = await new Promise<string>((resolve, reject) => {
      const s = connect(gateway.port, '127.0.0.1', () =>
        s.write(completion('one') + completion('two') + completion('three', true)),
      );
      let text = '';
      s.on('data', (d: Buffer) => (text += d.toString()));
      s.on('close', () => resolve(text));
      s.on('error', reject);
    });
    assert.equal(answers.match(/HTTP\/1\.1 200 /g)?.length, 3, answers.slice(0, 300));
    // 500 written at once: the connection is closed, and at most the few it may queue ran.
    const before = await served();
    const closed = await pipelineFlood(gateway.port, '127.0.0.1', completion('flood'), 500);
    assert.ok(closed, 'the gateway kept a connection that pipelined 500 requests');
    await sleep(500);
    assert.ok(
      (await served()) - before <= 9,
      `${(await served()) - before} requests of a flooding connection ran`,
    );
  });

  test('1,000 clients vanishing mid-stream leave no running request, in-flight count or socket behind', async () => {
    // Keep-alive connections of the earlier tests' client stay open; what vanishes must not add to them.
    const baseline = (await gateway.stats()).clientConnections;
    const midStream = await vanish(gateway.port, '/v1/completions', 1000, 20);
    assert.ok(midStream > 500, `${midStream} of 1,000 vanished mid-stream`);
    await until('the simulators run nothing', async () =>
      (await Promise.all(sims.map(running))).every((n) => n === 0),
    );
    await until('the EPP counts nothing in flight', () =>
      epp.datastore.endpoints().every((e) => e.inFlight === 0),
    );
    let last: unknown;
    await until('the gateway holds no client connection and no upstream request', async () => {
      const s = await gateway.stats();
      last = s;
      return s.clientConnections <= baseline && s.upstream.running === 0 && s.upstream.pending === 0;
    }).catch((error: Error) => assert.fail(`${error.message}: ${JSON.stringify(last)}`));
    const stats = await gateway.stats();
    assert.ok(stats.upstream.connected <= 40, `upstream sockets kept: ${stats.upstream.connected}`);
    console.log(
      `vanishing: ${midStream} of 1,000 mid-stream; client connections before ${baseline}, after: ${JSON.stringify(stats)}`,
    );
    const ok = await post(`${gateway.url}/v1/completions`, JSON.stringify({ model: MODEL, prompt: 'after' }));
    assert.equal(ok.status, 200);
  });
});

describe(
  'hostile clients at the EPP behind a real Envoy',
  { skip: ENVOY_BIN ? false : 'ENVOY_BIN not set' },
  () => {
    const sims: RunningSimulator[] = [];
    let epp: RunningEpp;
    let envoy: RunningEnvoy;

    before(async () => {
      for (const pod of ['envoy-hostile-a', 'envoy-hostile-b'])
        sims.push(await startSimulator({ port: 0, model: MODEL, podName: pod, timeScale: 0.05 }));
      epp = await startEpp({
        host: '127.0.0.1',
        grpcPort: 0,
        grpcHealthPort: 0,
        metricsPort: 0,
        endpoints: sims.map((s) => ({ address: `127.0.0.1:${s.port}` })),
        refreshMetricsIntervalMs: 25,
        bodyLimitBytes: BODY_LIMIT,
        logger: quiet,
      });
      envoy = await startEnvoy(ENVOY_BIN!, { eppHost: '127.0.0.1', eppPort: epp.grpcPort });
      await until('the EPP has scraped both simulators', () =>
        epp.datastore.endpoints().every((e) => !e.stale),
      );
    });

    after(async () => {
      await envoy?.close();
      await epp?.close();
      for (const s of sims) await s.close();
    });

    test('malformed JSON, wrong types and JSON arrays as bodies get 400 with an OpenAI error', async () => {
      for (const [label, body, status] of MALFORMED) {
        const reply = await post(`http://127.0.0.1:${envoy.port}/v1/completions`, body);
        assert.equal(reply.status, status, `${label}: ${reply.text.slice(0, 200)}`);
      }
    });

    test('too many headers or too large headers: Envoy drops the connection before the EPP hears of them', async () => {
      // Envoy 1.40's HTTP/1 codec closes such a connection without an answer (no 431): nothing reaches the EPP.
      const decisions = async () => {
        const text = await (await fetch(`http://127.0.0.1:${epp.metricsPort}/metrics`)).text();
        let total = 0;
        for (const m of text.matchAll(/^llmisvc_epp_requests_total\{[^}]*\} (\d+)$/gm)) total += Number(m[1]);
        return total;
      };
      const before = await decisions();
      const many = Array.from({ length: 150 }, (_, i) => `x-flood-${i}: ${i}\r\n`).join('');
      for (const [label, head] of [
        ['150 headers', many],
        ['a 96 KiB header', `x-big: ${'a'.repeat(96 * 1024)}\r\n`],
      ] as const) {
        const reply = await raw(envoy.port, (s) =>
          s.write(`GET /v1/models HTTP/1.1\r\nhost: 127.0.0.1\r\n${head}connection: close\r\n\r\n`),
        );
        assert.ok(!/^HTTP\/1\.1 2/.test(reply.text), `${label}: ${reply.text.slice(0, 80)}`);
        console.log(
          `header flood through Envoy (${label}): ${JSON.stringify(reply.text.slice(0, 40))}, closed`,
        );
      }
      assert.equal(await decisions(), before, 'the EPP was asked about a flooded request');
    });

    test('a body of exactly the limit is served; one byte more gets 413', async () => {
      const url = `http://127.0.0.1:${envoy.port}/v1/completions`;
      assert.equal((await post(url, bodyOfSize(BODY_LIMIT))).status, 200);
      assert.equal((await post(url, bodyOfSize(BODY_LIMIT + 1))).status, 413);
    });

    test('1,000 clients vanishing mid-stream leave no running request or in-flight count behind', async () => {
      const midStream = await vanish(envoy.port, '/v1/completions', 1000, 20);
      assert.ok(midStream > 500, `${midStream} of 1,000 vanished mid-stream`);
      await until('the simulators run nothing', async () =>
        (await Promise.all(sims.map(running))).every((n) => n === 0),
      );
      await until('the EPP counts nothing in flight', () =>
        epp.datastore.endpoints().every((e) => e.inFlight === 0),
      );
      const stats = await (
        await fetch(
          `http://127.0.0.1:${envoy.adminPort}/stats?filter=^(http\\.gateway\\.downstream_rq_active|cluster\\.inference_pool\\.upstream_rq_active)$`,
        )
      ).text();
      assert.match(stats, /downstream_rq_active: 0/);
      assert.match(stats, /upstream_rq_active: 0/);
      console.log(`vanishing through Envoy: ${midStream} of 1,000 mid-stream; ${stats.replace(/\n/g, ' ')}`);
    });
  },
);
