/**
 * @module test/routing-sidecar
 * The dev cluster's stand-in for llm-d's routing sidecar, over real HTTP on loopback: a completion naming a prefill
 * endpoint is prefilled there (a simulator, which hands over its KV blocks as vLLM's NixlConnector names them) and
 * decoded by the local vLLM (a simulator, or a recorder that shows what the sidecar sent it); anything else passes
 * through. Hostile forms: a header naming an address outside the allow-list, several values, a malformed value, a
 * body too large or not JSON, a prefill endpoint that is down or answers without end — each a clear error, and no
 * connection to an address the allow-list does not hold.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { startRoutingSidecar, type RunningRoutingSidecar } from '../src/dev/routing-sidecar.js';
import { waitFor } from '../src/process/index.js';
import { startSimulator, type RunningSimulator } from '../src/sim/index.js';
import { startAttackerTarget } from './harness/attacker.js';
import { pipelineFlood } from './harness/pipelining.js';

const fast = { port: 0, timeScale: 0.001, model: 'llama' };

/** An HTTP server that answers 200 `{}` and records what it was sent. */
async function startRecorder(answer = '{"ok":true}'): Promise<{
  address: string;
  seen: { method: string; url: string; headers: IncomingHttpHeaders; body: string }[];
  server: Server;
}> {
  const seen: { method: string; url: string; headers: IncomingHttpHeaders; body: string }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      });
      res.writeHead(200, { 'content-type': 'application/json', 'x-recorder': 'yes' });
      res.end(answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}

function post(url: string, body: unknown, headers: Record<string, string | string[]> = {}) {
  return request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe('the routing sidecar stand-in (llm-d NIXL v2)', () => {
  let prefill: RunningSimulator;
  let decoder: Awaited<ReturnType<typeof startRecorder>>;
  let sidecar: RunningRoutingSidecar;
  let allowed: Set<string>;

  before(async () => {
    prefill = await startSimulator({ ...fast, podName: 'prefill-0' });
    decoder = await startRecorder();
    allowed = new Set([`127.0.0.1:${prefill.port}`]);
    sidecar = await startRoutingSidecar({
      host: '127.0.0.1',
      port: 0,
      decoder: decoder.address,
      allowPrefill: (endpoint) => allowed.has(endpoint),
    });
  });
  after(async () => {
    await sidecar.close();
    await prefill.close();
    decoder.server.close();
  });

  it('prefills at the named endpoint, then decodes locally with the KV blocks it handed over', async () => {
    const prompt = Array.from({ length: 100 }, (_, i) => `w${i}`).join(' ');
    const res = await post(
      `${sidecar.url}/v1/completions?trace=1`,
      { model: 'llama', prompt, max_tokens: 7, stream: true, stream_options: { include_usage: true } },
      { 'x-prefiller-host-port': `127.0.0.1:${prefill.port}`, authorization: 'Bearer t' },
    );
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['x-recorder'], 'yes');
    await res.body.text();
    const sent = decoder.seen.at(-1)!;
    assert.equal(sent.url, '/v1/completions?trace=1');
    assert.equal(sent.headers['x-prefiller-host-port'], undefined, 'the header stays with the sidecar');
    assert.equal(sent.headers['authorization'], 'Bearer t');
    assert.match(String(sent.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    const body = JSON.parse(sent.body) as Record<string, unknown>;
    // The client's own request, with what the prefill handed over (vLLM's NixlConnector fields).
    assert.equal(body['max_tokens'], 7);
    assert.equal(body['stream'], true);
    assert.deepEqual(body['stream_options'], { include_usage: true });
    const params = body['kv_transfer_params'] as Record<string, unknown>;
    assert.equal(params['do_remote_prefill'], true);
    assert.equal(params['do_remote_decode'], false);
    assert.equal(params['remote_engine_id'], 'prefill-0');
    assert.ok(Array.isArray(params['remote_block_ids']) && params['remote_block_ids'].length > 0);
    // The prefill generated one token.
    const metrics = await (await request(`${prefill.url}/metrics`)).body.text();
    assert.match(metrics, /^vllm:generation_tokens_total(\{[^}]*\})? 1$/m);
  });

  it('end to end on two simulators: the decode answers the stream the client asked for', async () => {
    const decode = await startSimulator({ ...fast, podName: 'decode-0' });
    const real = await startRoutingSidecar({
      host: '127.0.0.1',
      port: 0,
      decoder: `127.0.0.1:${decode.port}`,
      allowPrefill: (endpoint) => allowed.has(endpoint),
    });
    try {
      const res = await post(
        `${real.url}/v1/chat/completions`,
        {
          model: 'llama',
          messages: [{ role: 'user', content: 'hello there' }],
          max_completion_tokens: 3,
          stream: true,
        },
        { 'x-prefiller-host-port': `127.0.0.1:${prefill.port}` },
      );
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['x-inference-pod'], 'decode-0');
      const text = await res.body.text();
      assert.equal(text.match(/"content":/g)?.length, 3, text);
      assert.ok(text.endsWith('data: [DONE]\n\n'));
      // Without the header: straight to the decoder, as every other path (metrics, models, health).
      const plain = await post(`${real.url}/v1/completions`, { model: 'llama', prompt: 'x', max_tokens: 2 });
      assert.equal(plain.statusCode, 200);
      await plain.body.text();
      const metrics = await request(`${real.url}/metrics`);
      assert.equal(metrics.statusCode, 200);
      assert.match(await metrics.body.text(), /vllm:num_requests_running/);
      const models = await request(`${real.url}/v1/models`);
      assert.equal(((await models.body.json()) as { data: unknown[] }).data.length, 1);
    } finally {
      await real.close();
      await decode.close();
    }
  });

  it('a header naming anything outside the allow-list is refused before any connection', async () => {
    const attacker = await startAttackerTarget();
    try {
      for (const [value, status] of [
        [attacker.address, 403],
        ['127.0.0.1:22', 403],
        [`127.0.0.1:${prefill.port}/evil`, 400],
        ['http://127.0.0.1:1', 400],
        [[attacker.address, `127.0.0.1:${prefill.port}`], 400],
      ] as const) {
        const before = decoder.seen.length;
        const res = await post(
          `${sidecar.url}/v1/completions`,
          { prompt: 'x', max_tokens: 1 },
          {
            'x-prefiller-host-port': value as string | string[],
          },
        );
        assert.equal(res.statusCode, status, JSON.stringify(value));
        const { error } = (await res.body.json()) as { error: { message: string; code: number } };
        assert.equal(error.code, status);
        assert.match(error.message, /x-prefiller-host-port/);
        assert.equal(decoder.seen.length, before, 'nothing was decoded either');
      }
      assert.equal(attacker.connections(), 0);
    } finally {
      await attacker.close();
    }
  });

  it('a request target that is not a path is refused: it would name another host', async () => {
    const { hostname, port } = new URL(sidecar.url);
    for (const target of ['http://127.0.0.1:1/metrics', '@127.0.0.1:1/metrics']) {
      const before = decoder.seen.length;
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(Number(port), hostname, () =>
          socket.end(`GET ${target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`),
        );
        let text = '';
        socket.on('data', (d: Buffer) => (text += d.toString()));
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
      });
      assert.match(answer, /^HTTP\/1\.1 400 /, `${target}: ${answer.slice(0, 80)}`);
      assert.equal(decoder.seen.length, before);
    }
  });

  it('pipelined requests run one at a time; a flood closes the connection before any of it reaches a server', async () => {
    const { hostname, port } = new URL(sidecar.url);
    const before = decoder.seen.length;
    const closed = await pipelineFlood(
      Number(port),
      hostname,
      'GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n',
      500,
    );
    assert.ok(closed, 'a connection that pipelined 500 requests was kept');
    assert.ok(decoder.seen.length - before <= 9, `${decoder.seen.length - before} of them reached vLLM`);
  });

  it('bodies held through a slow prefill stay counted: past the budget a request gets 503', async () => {
    // An allowed prefill endpoint that answers only when told to.
    const waiting: (() => void)[] = [];
    const slow = createServer((req, res) => {
      req.resume();
      waiting.push(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"kv_transfer_params":{"do_remote_prefill":true}}');
      });
    });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    const slowAddress = `127.0.0.1:${(slow.address() as AddressInfo).port}`;
    allowed.add(slowAddress);
    try {
      // 9 MiB, counted four times (the body, parsed, and the two sent on): a second one passes the 64 MiB budget.
      const body = JSON.stringify({ model: 'llama', prompt: 'x'.repeat(9 << 20), max_tokens: 1 });
      const first = post(`${sidecar.url}/v1/completions`, body, { 'x-prefiller-host-port': slowAddress });
      await waitFor(() => waiting.length === 1, { what: 'the first prefill to arrive', timeoutMs: 10_000 });
      const second = await post(`${sidecar.url}/v1/completions`, body, {
        'x-prefiller-host-port': slowAddress,
      });
      assert.equal(second.statusCode, 503);
      assert.match(await second.body.text(), /holds too many request bodies/);
      waiting.shift()!();
      const answered = await first;
      assert.equal(answered.statusCode, 200);
      await answered.body.text();
      // Given back once answered: the next one fits again.
      const third = post(`${sidecar.url}/v1/completions`, body, { 'x-prefiller-host-port': slowAddress });
      await waitFor(() => waiting.length === 1, { what: 'the third prefill to arrive', timeoutMs: 10_000 });
      waiting.shift()!();
      assert.equal((await third).statusCode, 200);
    } finally {
      slow.closeAllConnections();
      slow.close();
    }
  });

  it('bad bodies and a failing prefill endpoint get clear errors, and the sidecar keeps serving', async () => {
    const header = { 'x-prefiller-host-port': `127.0.0.1:${prefill.port}` };
    const notJson = await post(`${sidecar.url}/v1/completions`, '{"prompt":', header);
    assert.equal(notJson.statusCode, 400);
    assert.match(await notJson.body.text(), /not JSON/);
    const array = await post(`${sidecar.url}/v1/completions`, '[1,2]', header);
    assert.equal(array.statusCode, 400);
    assert.match(await array.body.text(), /JSON object/);
    const deep = await post(`${sidecar.url}/v1/completions`, '['.repeat(10_000), header);
    assert.equal(deep.statusCode, 400);
    await deep.body.text();
    // Announced too large: refused unread, the connection closed.
    const huge = await request(`${sidecar.url}/v1/completions`, {
      method: 'POST',
      headers: { ...header, 'content-type': 'application/json', 'content-length': String(64 * 1024 * 1024) },
      body: 'x',
    }).catch((error: Error) => error);
    if (!(huge instanceof Error)) {
      assert.equal(huge.statusCode, 413);
      await huge.body.text();
    }
    // The prefill's own refusal reaches the client with its status.
    const refused = await post(
      `${sidecar.url}/v1/completions`,
      { model: 'nope', prompt: 'x', max_tokens: 1 },
      header,
    );
    assert.equal(refused.statusCode, 404);
    assert.match(await refused.body.text(), /prefill endpoint .* answered 404/);

    // A prefill endpoint that is down, and one that answers without end.
    const closed = await startSimulator(fast);
    const downPort = closed.port;
    await closed.close();
    const endless = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = () => {
        while (res.write(chunk)) if (res.destroyed) return;
        res.once('drain', pump);
      };
      pump();
    });
    await new Promise<void>((resolve) => endless.listen(0, '127.0.0.1', resolve));
    const endlessAddress = `127.0.0.1:${(endless.address() as AddressInfo).port}`;
    allowed.add(`127.0.0.1:${downPort}`);
    allowed.add(endlessAddress);
    try {
      const down = await post(
        `${sidecar.url}/v1/completions`,
        { prompt: 'x' },
        {
          'x-prefiller-host-port': `127.0.0.1:${downPort}`,
        },
      );
      assert.equal(down.statusCode, 502);
      assert.match(await down.body.text(), /could not be reached/);
      const flood = await post(
        `${sidecar.url}/v1/completions`,
        { prompt: 'x' },
        {
          'x-prefiller-host-port': endlessAddress,
        },
      );
      assert.equal(flood.statusCode, 502);
      assert.match(await flood.body.text(), /answered more than/);
    } finally {
      endless.closeAllConnections();
      endless.close();
    }
    const ok = await post(
      `${sidecar.url}/v1/completions`,
      { model: 'llama', prompt: 'x', max_tokens: 1 },
      header,
    );
    assert.equal(ok.statusCode, 200);
    await ok.body.text();
  });
});
