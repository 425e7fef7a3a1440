/**
 * @module test/sim-hostile
 * The simulator against hostile clients, over real HTTP on loopback: bodies nested or flooded with containers, too
 * large or too many at once, heads and bodies sent slowly, streams never read, pipelined requests, connection floods,
 * prompts of millions of tokens, wrongly typed fields, and pages whose name was rebound to 127.0.0.1. Each gets a
 * bounded, named answer and the process stays up; what a client can make the simulator hold is measured on a child
 * process (its resident memory), not assumed.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startSimulator, type RunningSimulator } from '../src/sim/index.js';
import { errorMessage, openRaw, rawRequest, type RawAnswer } from './harness/raw-http.js';

const MiB = 1024 * 1024;

/** Polls a condition (bounded: 400 × 25 ms), for state that settles asynchronously; not a timing assertion. */
async function until(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await condition()) return;
    await sleep(25);
  }
  throw new Error(`timed out waiting until ${what}`);
}

/** Requests the engine holds (running + waiting), from the simulator's own metrics. */
async function inEngine(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let total = 0;
  for (const m of text.matchAll(/^vllm:num_requests_(?:running|waiting)\{[^}]*\} (\S+)$/gm))
    total += Number(m[1]);
  return total;
}

async function successes(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let total = 0;
  for (const m of text.matchAll(/^vllm:request_success_total\{[^}]*\} (\S+)$/gm)) total += Number(m[1]);
  return total;
}

async function generated(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^vllm:generation_tokens_total\{[^}]*\} (\S+)$/m.exec(text)?.[1] ?? 0);
}

function completion(body: Record<string, unknown>): string {
  return rawRequest('POST', '/v1/completions', {
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

function errorOf(answer: RawAnswer | undefined): { type: string; code: number; param: string | null } {
  return (JSON.parse(answer?.body || '{}') as { error: { type: string; code: number; param: string | null } })
    .error;
}

/** `llmisvc sim` as a child process, so that its resident memory is its own. */
interface SimProcess {
  url: string;
  port: number;
  /** Resident set size in MiB, from /proc. */
  rssMiB(): number;
  close(): Promise<void>;
}

async function startSimProcess(args: string[]): Promise<SimProcess> {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const child: ChildProcess = spawn(
    process.execPath,
    [join(root, 'bin/llmisvc.js'), 'sim', '--port', '0', ...args],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /at (http:\/\/\S+)/.exec(output);
      if (match) resolve(match[1] as string);
    });
    child.once('exit', (code) => reject(new Error(`llmisvc sim exited with ${code}: ${output}`)));
  });
  return {
    url,
    port: Number(new URL(url).port),
    rssMiB: () =>
      Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]) / 1024,
    async close() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** A connection that sends one request and never reads what comes back (its receive window fills, then ours). */
function neverReading(port: number, request: string): { destroy(): void } {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  socket.pause();
  socket.write(request);
  return socket;
}

describe('simulator: hostile request bodies', () => {
  let sim: RunningSimulator;
  before(async () => {
    sim = await startSimulator({ port: 0, timeScale: 0.001 });
  });
  after(() => sim.close());

  it('refuses a body nested past 128 levels or holding more than 200,000 arrays and objects with a 400 naming it', async () => {
    const cases: [string, string, RegExp][] = [
      [
        'a prompt nested 100,000 deep',
        `{"prompt":${'['.repeat(100_000)}${']'.repeat(100_000)}}`,
        /deeper than 128/,
      ],
      [
        'an unknown field nested 100,000 deep',
        `{"prompt":"hi","max_tokens":1,"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`,
        /deeper than 128/,
      ],
      [
        'a flat list of 300,000 empty lists',
        `{"prompt":"hi","max_tokens":1,"x":[${Array(300_000).fill('[]').join(',')}]}`,
        /more than 200000 arrays and objects/,
      ],
    ];
    for (const [name, body, message] of cases) {
      const c = await openRaw(sim.port);
      c.socket.write(rawRequest('POST', '/v1/completions', { body }));
      const answer = await c.next();
      assert.equal(answer?.status, 400, name);
      assert.equal(errorOf(answer).type, 'BadRequestError', name);
      assert.match(errorMessage(answer), message, name);
      c.socket.destroy();
    }
    const nested = `{"prompt":"hi","max_tokens":1,"x":${'['.repeat(100)}${']'.repeat(100)}}`;
    const served = await fetch(`${sim.url}/v1/completions`, { method: 'POST', body: nested });
    assert.equal(served.status, 200, 'a body nested 100 deep is served');
  });

  it('answers 413 to a body over 16 MiB, announced or not, without reading it, and closes the connection', async () => {
    const announced = await openRaw(sim.port);
    announced.socket.write(
      rawRequest('POST', '/v1/completions', { headers: { 'content-length': String(16 * MiB + 1) } }),
    );
    const refused = await announced.next();
    assert.equal(refused?.status, 413);
    assert.equal(errorOf(refused).type, 'RequestTooLargeError');
    assert.match(errorMessage(refused), /larger than 16777216 bytes/);
    await announced.closed;

    const chunked = await openRaw(sim.port);
    chunked.socket.write(
      rawRequest('POST', '/v1/completions', { headers: { 'transfer-encoding': 'chunked' } }),
    );
    const piece = Buffer.alloc(MiB, 0x20);
    for (let i = 0; i < 17 && !chunked.socket.destroyed; i++) {
      chunked.socket.write(`${piece.length.toString(16)}\r\n`);
      chunked.socket.write(piece);
      chunked.socket.write('\r\n');
    }
    assert.equal((await chunked.next())?.status, 413);
    await chunked.closed;
    assert.equal((await fetch(`${sim.url}/health`)).status, 200);
  });

  it('answers 503 with retry-after while the bodies being received fill the 64 MiB budget, and serves once they go', async () => {
    const holders = await Promise.all(Array.from({ length: 4 }, () => openRaw(sim.port)));
    for (const h of holders) {
      h.socket.write(
        rawRequest('POST', '/v1/completions', { headers: { 'content-length': String(16 * MiB) } }),
      );
      h.socket.write(Buffer.alloc(16 * MiB - 1, 0x20));
    }
    const small = completion({ prompt: 'hi', max_tokens: 1 });
    let busy: RawAnswer | undefined;
    await until('a small request is refused as busy', async () => {
      const c = await openRaw(sim.port);
      c.socket.write(small);
      const answer = await c.next();
      c.socket.destroy();
      if (answer?.status === 503) busy = answer;
      return busy !== undefined;
    });
    assert.equal(errorOf(busy).type, 'ServiceUnavailableError');
    assert.equal(busy?.headers['retry-after'], '1');
    assert.match(errorMessage(busy), /request bodies/);
    for (const h of holders) h.socket.destroy();
    await until('the budget is free again', async () => {
      const c = await openRaw(sim.port);
      c.socket.write(small);
      const answer = await c.next();
      c.socket.destroy();
      return answer?.status === 200;
    });
  });

  it('refuses wrongly typed and hostile fields with a 400 naming the field, quoting at most a little of the value', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ prompt: 'hi', max_tokens: 'x'.repeat(100_000) }, 'max_tokens'],
      [{ prompt: 'hi', temperature: Array(10_000).fill('xxxxxxxxxx') }, 'temperature'],
      [{ prompt: 'hi', logprobs: 1e9 }, 'logprobs'],
      [{ prompt: 'hi', stop: [1, 2] }, 'stop'],
      [{ prompt: 'hi', n: 1e308 }, 'n'],
      [{ prompt: [-1] }, 'prompt'],
    ];
    for (const [body, param] of cases) {
      const response = await fetch(`${sim.url}/v1/completions`, {
        method: 'POST',
        body: JSON.stringify(body),
      });
      const answer = (await response.json()) as { error: { param: string; message: string } };
      assert.equal(response.status, 400, param);
      assert.equal(answer.error.param, param);
      assert.ok(answer.error.message.length < 400, `${param}: ${answer.error.message.length} characters`);
    }
    const chat = await fetch(`${sim.url}/v1/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], top_logprobs: 1000 }),
    });
    assert.equal(chat.status, 400);
    const unknown = await fetch(`${sim.url}/v1/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: 'm'.repeat(1_000_000), prompt: 'hi' }),
    });
    assert.equal(unknown.status, 404);
    assert.ok(((await unknown.json()) as { error: { message: string } }).error.message.length < 400);
  });

  it('answers a header flood with 431 and stays up', async () => {
    const c = await openRaw(sim.port);
    const flood = Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`x-flood-${i}`, 'y']));
    c.socket.write(rawRequest('GET', '/health', { headers: flood }));
    assert.equal((await c.next())?.status, 431);
    await c.closed;
    assert.equal((await fetch(`${sim.url}/health`)).status, 200);
  });
});

describe('simulator: slow clients and connection floods', () => {
  it('closes a connection whose head or body does not arrive within --headers-timeout-ms / --request-timeout-ms', async () => {
    const sim = await startSimulator({ port: 0, headersTimeoutMs: 300, requestTimeoutMs: 600 });
    try {
      const slowHead = await openRaw(sim.port);
      slowHead.socket.write('POST /v1/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ');
      const slowBody = await openRaw(sim.port);
      slowBody.socket.write(rawRequest('POST', '/v1/completions', { headers: { 'content-length': '100' } }));
      slowBody.socket.write('{"prompt":');
      for (const [name, c] of [
        ['slow head', slowHead],
        ['slow body', slowBody],
      ] as const) {
        // Bounded far beyond the timeouts so that a regression fails instead of hanging; not a timing assertion.
        const outcome = await Promise.race([c.closed.then(() => 'closed'), sleep(10_000).then(() => 'open')]);
        assert.equal(outcome, 'closed', `${name}: the simulator kept the connection open`);
        c.socket.destroy();
      }
      assert.equal((await fetch(`${sim.url}/health`)).status, 200);
    } finally {
      await sim.close();
    }
  });

  it('closes connections past --max-connections unanswered and accepts again once one closes', async () => {
    const sim = await startSimulator({ port: 0, maxConnections: 3 });
    try {
      const get = rawRequest('GET', '/health');
      const open = await Promise.all([openRaw(sim.port), openRaw(sim.port), openRaw(sim.port)]);
      for (const c of open) {
        c.socket.write(get);
        assert.equal((await c.next())?.status, 200);
      }
      const extra = await openRaw(sim.port);
      extra.socket.write(get);
      assert.equal(await extra.next(), undefined, 'the connection past the cap got an answer');
      open[0].socket.destroy();
      await until('a connection is accepted again', async () => {
        const again = await openRaw(sim.port);
        again.socket.write(get);
        const answer = await again.next();
        again.socket.destroy();
        return answer?.status === 200;
      });
      for (const c of open) c.socket.destroy();
    } finally {
      await sim.close();
    }
  });

  it('serves pipelined requests one at a time and closes a connection that queues more than 16', async () => {
    const sim = await startSimulator({ port: 0 });
    try {
      const long = completion({ prompt: 'a', max_tokens: 30_000, stream: true });
      const c = await openRaw(sim.port);
      c.socket.write(long.repeat(10));
      await until('the first stream is running', async () => (await inEngine(sim.url)) >= 1);
      // Give the other nine every chance to be parsed and started, as Node did before: it answered them in order
      // but ran them all at once, each buffering its whole answer.
      await sleep(200);
      assert.equal(await inEngine(sim.url), 1, 'requests behind the first one wait for their turn');
      c.socket.destroy();
      await until('the engine holds nothing', async () => (await inEngine(sim.url)) === 0);

      const flooding = await openRaw(sim.port);
      flooding.socket.write(long.repeat(40));
      await flooding.closed;
      await until('the engine holds nothing', async () => (await inEngine(sim.url)) === 0);

      const short = completion({ prompt: 'b', max_tokens: 2 });
      const polite = await openRaw(sim.port);
      polite.socket.write(short.repeat(3));
      for (let i = 0; i < 3; i++) assert.equal((await polite.next())?.status, 200, `pipelined request ${i}`);
      polite.socket.destroy();
    } finally {
      await sim.close();
    }
  });
});

describe('simulator: DNS rebinding', () => {
  it('on loopback: answers loopback names with any port, refuses any other Host with 421 before reading the body', async () => {
    const sim = await startSimulator({ port: 0, timeScale: 0.001 });
    try {
      for (const host of [
        `127.0.0.1:${sim.port}`,
        `localhost:${sim.port}`,
        'sim.localhost',
        `[::1]:${sim.port}`,
      ]) {
        const c = await openRaw(sim.port);
        c.socket.write(rawRequest('GET', '/v1/models', { host }));
        assert.equal((await c.next())?.status, 200, `Host ${host}`);
        c.socket.destroy();
      }
      for (const request of [
        rawRequest('GET', '/v1/models', { host: `rebound.evil.example:${sim.port}` }),
        // The body is announced but never sent: the answer cannot wait for it.
        rawRequest('POST', '/v1/completions', {
          host: 'rebound.evil.example',
          headers: { 'content-length': '1000' },
        }),
      ]) {
        const c = await openRaw(sim.port);
        c.socket.write(request);
        const refused = await c.next();
        assert.equal(refused?.status, 421);
        assert.equal(errorOf(refused).type, 'MisdirectedRequestError');
        assert.match(errorMessage(refused), /rebound\.evil\.example/);
        assert.match(errorMessage(refused), /loopback/);
        await c.closed;
      }
      assert.equal(await successes(sim.url), 0, 'nothing was generated for a foreign Host');
    } finally {
      await sim.close();
    }
  });

  it('on a non-loopback address: answers any Host', async () => {
    const sim = await startSimulator({ host: '0.0.0.0', port: 0, timeScale: 0.001 });
    try {
      const c = await openRaw(sim.port);
      c.socket.write(
        rawRequest('POST', '/v1/completions', {
          host: 'llm.example.com',
          body: JSON.stringify({ prompt: 'hi', max_tokens: 1 }),
        }),
      );
      assert.equal((await c.next())?.status, 200);
      c.socket.destroy();
    } finally {
      await sim.close();
    }
  });
});

describe('simulator: what a client can make it hold', () => {
  const streamRequest = (maxTokens: number) =>
    completion({ prompt: 'hello there', max_tokens: maxTokens, stream: true });

  it('holds about a socket buffer of a stream its client does not read, and frees its slot when the client goes', async () => {
    // 100 streams of 4,000 tokens are about 100 MB of server-sent events; unread, they were all buffered (+270 MiB).
    // Now each holds a socket buffer; what remains is the heap the run itself grew.
    const sim = await startSimProcess(['--time-scale', '0.001', '--num-gpu-blocks', '100000']);
    try {
      const warm = await fetch(`${sim.url}/v1/completions`, {
        method: 'POST',
        body: JSON.stringify({ prompt: 'w' }),
      });
      await warm.text();
      const baseline = sim.rssMiB();
      const clients = Array.from({ length: 100 }, () => neverReading(sim.port, streamRequest(4000)));
      await until('the engine finished every stream', async () => (await successes(sim.url)) >= 101);
      const grown = sim.rssMiB() - baseline;
      assert.ok(grown < 80, `the simulator grew by ${grown.toFixed(0)} MiB for 100 unread streams`);
      for (const c of clients) c.destroy();
      await until('the engine holds nothing', async () => (await inEngine(sim.url)) === 0);
    } finally {
      await sim.close();
    }
  });

  it('stops generating for a client that goes away while its unread stream waits for the socket', async () => {
    const sim = await startSimulator({ port: 0, timeScale: 0.01 });
    try {
      const client = neverReading(sim.port, streamRequest(30_000));
      // 10,000 events are about 2.5 MB: past what the sockets take, so the stream waits for 'drain'.
      await until('10,000 tokens are generated', async () => (await generated(sim.url)) >= 10_000);
      client.destroy();
      await until('the engine holds nothing', async () => (await inEngine(sim.url)) === 0);
      assert.ok((await generated(sim.url)) < 30_000, 'the generation ran to its end');
    } finally {
      await sim.close();
    }
  });

  it('holds no output text for a queued request', async () => {
    // 300 queued requests of 30,000 tokens each held their whole text (about 1.2 MB each) while they waited.
    const sim = await startSimProcess(['--max-num-seqs', '1', '--num-gpu-blocks', '1000000']);
    try {
      const warm = await fetch(`${sim.url}/v1/completions`, {
        method: 'POST',
        body: JSON.stringify({ prompt: 'w', max_tokens: 2 }),
      });
      await warm.text();
      const baseline = sim.rssMiB();
      const clients = Array.from({ length: 300 }, () => neverReading(sim.port, streamRequest(30_000)));
      await until('all 300 are queued', async () => (await inEngine(sim.url)) === 300);
      const grown = sim.rssMiB() - baseline;
      assert.ok(grown < 60, `the simulator grew by ${grown.toFixed(0)} MiB for 300 queued requests`);
      for (const c of clients) c.destroy();
      await until('the engine holds nothing', async () => (await inEngine(sim.url)) === 0);
    } finally {
      await sim.close();
    }
  });

  it('refuses a prompt of millions of tokens with the context-length 400 without building them', async () => {
    const sim = await startSimProcess(['--time-scale', '0.001']);
    try {
      const baseline = sim.rssMiB();
      const bodies = [
        `{"prompt":[${Array(5_000_000).fill('7').join(',')}],"max_tokens":1}`,
        `{"prompt":"${'a '.repeat(7_500_000)}","max_tokens":1}`,
        `{"messages":[{"role":"user","content":"${'a '.repeat(7_500_000)}"}],"max_tokens":1}`,
      ];
      for (const [i, body] of bodies.entries()) {
        const path = i === 2 ? '/v1/chat/completions' : '/v1/completions';
        const response = await fetch(`${sim.url}${path}`, { method: 'POST', body });
        assert.equal(response.status, 400);
        assert.match(
          ((await response.json()) as { error: { message: string } }).error.message,
          /maximum context length is 32768 tokens/,
        );
      }
      const grown = sim.rssMiB() - baseline;
      assert.ok(grown < 250, `the simulator grew by ${grown.toFixed(0)} MiB for three 15 MB prompts`);
    } finally {
      await sim.close();
    }
  });
});
