/**
 * @module test/sim-server
 * The simulator end to end over real HTTP on loopback: OpenAI endpoints streamed and not, vLLM's metrics as valid
 * Prometheus text, vLLM-style errors, prefix-cache reuse, prefill/decode through two simulators, shedding and
 * failure injection.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startSimulator, type RunningSimulator } from '../src/sim/index.js';
import { startAttackerTarget } from './harness/attacker.js';

const fast = { port: 0, timeScale: 0.001 };

async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** Parses SSE `data:` events; returns the JSON payloads and whether the stream ended with `[DONE]`. */
function sseEvents(text: string): { events: Record<string, unknown>[]; done: boolean } {
  const data = text
    .split('\n\n')
    .filter((block) => block.startsWith('data: '))
    .map((block) => block.slice('data: '.length));
  return {
    events: data.filter((d) => d !== '[DONE]').map((d) => JSON.parse(d) as Record<string, unknown>),
    done: data.at(-1) === '[DONE]',
  };
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A strict reader of the Prometheus text format: every line must be a comment or a well-formed sample. */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      types.set(type[1] as string, type[2] as string);
      continue;
    }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$/.test(line)) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    assert.ok(sample, `not a valid exposition line: ${line}`);
    const labels: Record<string, string> = {};
    const labelText = sample[2] ?? '';
    const labelPattern = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/g;
    let consumed = 0;
    for (const match of labelText.matchAll(labelPattern)) {
      labels[match[1] as string] = match[2] as string;
      consumed += match[0].length;
    }
    assert.equal(consumed, labelText.length, `malformed labels in: ${line}`);
    samples.push({ name: sample[1] as string, labels, value: Number(sample[3]) });
  }
  return { samples, types };
}

async function metrics(sim: RunningSimulator): Promise<Sample[]> {
  const response = await fetch(`${sim.url}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
  return parseExposition(await response.text()).samples;
}

function value(samples: Sample[], name: string): number {
  const found = samples.filter((s) => s.name === name);
  assert.equal(found.length, 1, `exactly one ${name} sample`);
  return (found[0] as Sample).value;
}

describe('simulator over HTTP', () => {
  let sim: RunningSimulator;
  before(async () => {
    sim = await startSimulator({
      ...fast,
      model: 'llama',
      podName: 'pod-a',
      loraModules: ['sql=/adapters/sql'],
      seed: 3,
    });
  });
  after(() => sim.close());

  it('serves a non-streaming completion naming the pod', async () => {
    const response = await post(`${sim.url}/v1/completions`, {
      model: 'llama',
      prompt: 'Say hello',
      max_tokens: 6,
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-inference-pod'), 'pod-a');
    const body = (await response.json()) as {
      object: string;
      choices: { text: string; finish_reason: string }[];
      usage: { prompt_tokens: number; completion_tokens: number };
    };
    assert.equal(body.object, 'text_completion');
    assert.equal(body.choices[0]?.finish_reason, 'length');
    assert.equal(body.choices[0]?.text.split(' ').length, 6);
    assert.deepEqual([body.usage.prompt_tokens, body.usage.completion_tokens], [2, 6]);
  });

  it('gives the same text for the same request and seed', async () => {
    const other = await startSimulator({ ...fast, model: 'llama', seed: 3 });
    try {
      const ask = async (url: string): Promise<string> => {
        const r = await post(`${url}/v1/completions`, { prompt: 'Deterministic?', max_tokens: 8 });
        return ((await r.json()) as { choices: { text: string }[] }).choices[0]?.text as string;
      };
      assert.equal(await ask(sim.url), await ask(other.url));
    } finally {
      await other.close();
    }
  });

  it('streams a chat completion as SSE ending in [DONE], with usage when asked', async () => {
    const response = await post(`${sim.url}/v1/chat/completions`, {
      model: 'sql',
      messages: [{ role: 'user', content: 'List the tables' }],
      max_tokens: 5,
      stream: true,
      stream_options: { include_usage: true },
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
    const { events, done } = sseEvents(await response.text());
    assert.ok(done, 'the stream ends with data: [DONE]');
    const tokens = events.filter((e) => (e['choices'] as unknown[]).length > 0);
    assert.equal(tokens.length, 5);
    assert.deepEqual((tokens[0]?.['choices'] as { delta: { role: string } }[])[0]?.delta.role, 'assistant');
    assert.equal((tokens[4]?.['choices'] as { finish_reason: string }[])[0]?.finish_reason, 'length');
    assert.equal(events.at(-1)?.['object'], 'chat.completion.chunk');
    assert.equal((events.at(-1)?.['usage'] as { completion_tokens: number }).completion_tokens, 5);
  });

  it('streams a completion without usage by default', async () => {
    const response = await post(`${sim.url}/v1/completions`, {
      prompt: 'count',
      max_tokens: 3,
      stream: true,
    });
    const { events, done } = sseEvents(await response.text());
    assert.ok(done);
    assert.equal(events.length, 3);
    assert.ok(events.every((e) => e['usage'] === undefined));
  });

  it('reuses the prompt prefix of an earlier request', async () => {
    const system = Array.from({ length: 300 }, (_, i) => `rule${i}`).join(' ');
    const ask = async (question: string): Promise<number> => {
      const r = await post(`${sim.url}/v1/completions`, { prompt: `${system} ${question}`, max_tokens: 2 });
      const body = (await r.json()) as { usage: { prompt_tokens_details: { cached_tokens: number } } };
      return body.usage.prompt_tokens_details.cached_tokens;
    };
    assert.equal(await ask('first question'), 0);
    assert.equal(await ask('second question'), 288, '18 full blocks of the 300-token system prompt');
  });

  it('lists the base model and its adapters', async () => {
    const body = (await (await fetch(`${sim.url}/v1/models`)).json()) as {
      data: { id: string; parent: string | null; root: string }[];
    };
    assert.deepEqual(
      body.data.map((m) => [m.id, m.parent, m.root]),
      [
        ['llama', null, 'llama'],
        ['sql', 'llama', '/adapters/sql'],
      ],
    );
  });

  it('answers /health', async () => {
    const response = await fetch(`${sim.url}/health`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-inference-pod'), 'pod-a');
  });

  const errors: { name: string; path: string; body: unknown; status: number; type: string }[] = [
    {
      name: 'malformed JSON',
      path: '/v1/completions',
      body: '{"prompt":',
      status: 400,
      type: 'BadRequestError',
    },
    {
      name: 'no prompt',
      path: '/v1/completions',
      body: { model: 'llama' },
      status: 400,
      type: 'BadRequestError',
    },
    {
      name: 'too long for the context',
      path: '/v1/completions',
      body: { prompt: 'x', max_tokens: 40_000 },
      status: 400,
      type: 'BadRequestError',
    },
    {
      name: 'an unknown model',
      path: '/v1/chat/completions',
      body: { model: 'gpt-9', messages: [{ role: 'user', content: 'x' }] },
      status: 404,
      type: 'NotFoundError',
    },
    {
      name: 'an unknown route',
      path: '/v1/embeddings',
      body: { input: 'x' },
      status: 404,
      type: 'NotFoundError',
    },
  ];
  for (const c of errors) {
    it(`answers ${c.status} with an OpenAI error for ${c.name}`, async () => {
      const response = await post(`${sim.url}${c.path}`, c.body);
      assert.equal(response.status, c.status);
      const body = (await response.json()) as { error: { type: string; code: number; message: string } };
      assert.equal(body.error.type, c.type);
      assert.equal(body.error.code, c.status);
      assert.ok(body.error.message.length > 0);
    });
  }

  it('answers 405 for the wrong method', async () => {
    const response = await fetch(`${sim.url}/v1/completions`);
    assert.equal(response.status, 405);
    assert.equal(((await response.json()) as { error: { code: number } }).error.code, 405);
  });

  it('exposes vLLM metrics as valid Prometheus text with vLLM label sets', async () => {
    const samples = await metrics(sim);
    const labelsOf = (name: string): string[] =>
      Object.keys(samples.find((s) => s.name === name)?.labels ?? {}).sort();
    for (const name of [
      'vllm:num_requests_running',
      'vllm:num_requests_waiting',
      'vllm:kv_cache_usage_perc',
    ]) {
      assert.deepEqual(labelsOf(name), ['engine', 'model_name'], name);
      assert.equal(value(samples, name), 0, `${name} is 0 when idle`);
    }
    assert.deepEqual(labelsOf('vllm:lora_requests_info'), [
      'max_lora',
      'running_lora_adapters',
      'waiting_lora_adapters',
    ]);
    const cache = samples.find((s) => s.name === 'vllm:cache_config_info');
    assert.equal(cache?.labels['block_size'], '16');
    assert.equal(cache?.labels['num_gpu_blocks'], '4096');
    assert.ok(value(samples, 'vllm:prompt_tokens_total') > 0);
    assert.ok(value(samples, 'vllm:generation_tokens_total') > 0);
    assert.ok(value(samples, 'vllm:prefix_cache_hits_total') >= 288);
    const ttftCount = value(samples, 'vllm:time_to_first_token_seconds_count');
    assert.ok(ttftCount >= 5);
    assert.ok(
      samples.some((s) => s.name === 'vllm:time_to_first_token_seconds_bucket' && s.labels['le'] === '+Inf'),
    );
    assert.ok(value(samples, 'vllm:inter_token_latency_seconds_count') > 0);
  });
});

describe('simulator prefill/decode', () => {
  let prefill: RunningSimulator;
  let decode: RunningSimulator;
  before(async () => {
    prefill = await startSimulator({ ...fast, model: 'llama', podName: 'prefill-0', role: 'prefill' });
    decode = await startSimulator({
      ...fast,
      model: 'llama',
      podName: 'decode-0',
      role: 'decode',
      prefillAllowList: [`127.0.0.1:${prefill.port}`],
    });
  });
  after(async () => {
    await decode.close();
    await prefill.close();
  });

  it('a decode endpoint asks the prefill endpoint named in x-prefiller-host-port first', async () => {
    const prompt = Array.from({ length: 200 }, (_, i) => `w${i}`).join(' ');
    const response = await post(
      `${decode.url}/v1/completions`,
      { model: 'llama', prompt, max_tokens: 4, stream: true },
      { 'x-prefiller-host-port': `127.0.0.1:${prefill.port}` },
    );
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-inference-pod'), 'decode-0');
    assert.equal(response.headers.get('x-prefiller-pod'), 'prefill-0');
    const { events, done } = sseEvents(await response.text());
    assert.ok(done);
    assert.equal(events.length, 4);
    const prefilled = await metrics(prefill);
    assert.equal(value(prefilled, 'vllm:prompt_tokens_total'), 200);
    assert.equal(
      value(prefilled, 'vllm:generation_tokens_total'),
      1,
      'the prefill endpoint generates one token',
    );
    assert.equal(value(await metrics(decode), 'vllm:generation_tokens_total'), 4);
  });

  it('answers 502 when an allowed prefill endpoint cannot be reached', async () => {
    const closed = await startSimulator({ ...fast });
    const port = closed.port;
    await closed.close();
    const lonely = await startSimulator({ ...fast, role: 'decode', prefillAllowList: [`127.0.0.1:${port}`] });
    try {
      const response = await post(
        `${lonely.url}/v1/completions`,
        { prompt: 'x', max_tokens: 1 },
        { 'x-prefiller-host-port': `127.0.0.1:${port}` },
      );
      assert.equal(response.status, 502);
      assert.equal(((await response.json()) as { error: { code: number } }).error.code, 502);
    } finally {
      await lonely.close();
    }
  });

  it('refuses a prefill endpoint outside its --prefill-allow-list with 403, connecting to nothing', async () => {
    const attacker = await startAttackerTarget();
    try {
      for (const target of [attacker.address, `127.0.0.1:${decode.port}`]) {
        const response = await post(
          `${decode.url}/v1/completions`,
          { model: 'llama', prompt: 'x', max_tokens: 1 },
          { 'x-prefiller-host-port': target },
        );
        assert.equal(response.status, 403);
        const { error } = (await response.json()) as { error: { message: string; type: string } };
        assert.equal(error.type, 'PermissionDeniedError');
        assert.match(error.message, /x-prefiller-host-port/);
        assert.ok(error.message.includes(target), error.message);
      }
      // Without a list (the default), a decode simulator trusts no prefill endpoint at all.
      const bare = await startSimulator({ ...fast, role: 'decode' });
      try {
        const response = await post(
          `${bare.url}/v1/completions`,
          { prompt: 'x', max_tokens: 1 },
          { 'x-prefiller-host-port': attacker.address },
        );
        assert.equal(response.status, 403);
      } finally {
        await bare.close();
      }
      assert.equal(attacker.connections(), 0, 'the forged prefill endpoint was contacted');
    } finally {
      await attacker.close();
    }
  });
});

describe('simulator overload and failures', () => {
  it('queues beyond --max-num-seqs and sheds beyond --max-waiting-requests', async () => {
    // Real time so the long first request is certainly still running while the others arrive.
    const sim = await startSimulator({ port: 0, maxNumSeqs: 1, maxWaitingRequests: 1 });
    try {
      const first = await post(`${sim.url}/v1/completions`, {
        prompt: 'a',
        max_tokens: 30_000,
        stream: true,
      });
      const reader = (first.body as ReadableStream<Uint8Array>).getReader();
      await reader.read(); // the first token: the request is running
      const second = await post(`${sim.url}/v1/completions`, { prompt: 'b', max_tokens: 5, stream: true });
      assert.equal(second.status, 200, 'headers arrive once the request is queued');
      const samples = await metrics(sim);
      assert.equal(value(samples, 'vllm:num_requests_running'), 1);
      assert.equal(value(samples, 'vllm:num_requests_waiting'), 1);
      const third = await post(`${sim.url}/v1/completions`, { prompt: 'c', max_tokens: 5 });
      assert.equal(third.status, 429);
      await reader.cancel();
      await second.body?.cancel();
    } finally {
      await sim.close();
    }
  });

  it('injects failures at the configured rate', async () => {
    const sim = await startSimulator({ ...fast, failureRate: 1, failureKinds: ['unavailable'] });
    try {
      const response = await post(`${sim.url}/v1/completions`, { prompt: 'x', max_tokens: 1 });
      assert.equal(response.status, 503);
      assert.equal(
        ((await response.json()) as { error: { type: string } }).error.type,
        'ServiceUnavailableError',
      );
    } finally {
      await sim.close();
    }
  });

  it('answers 400, even to a stream, for a request larger than the whole KV cache', async () => {
    const sim = await startSimulator({ ...fast, numGpuBlocks: 2, blockSize: 16 });
    try {
      const prompt = Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ');
      const response = await post(`${sim.url}/v1/completions`, { prompt, max_tokens: 1, stream: true });
      assert.equal(response.status, 400);
      assert.match(
        ((await response.json()) as { error: { message: string } }).error.message,
        /KV-cache blocks/,
      );
    } finally {
      await sim.close();
    }
  });

  it('delivers every token of a stalled stream', async () => {
    const sim = await startSimulator({ ...fast, stallRate: 1, stallMs: 20_000 });
    try {
      const response = await post(`${sim.url}/v1/completions`, { prompt: 'x', max_tokens: 4, stream: true });
      const { events, done } = sseEvents(await response.text());
      assert.ok(done);
      assert.equal(events.length, 4);
    } finally {
      await sim.close();
    }
  });

  it('frees a request whose client went away', async () => {
    const sim = await startSimulator({ port: 0 });
    try {
      const response = await post(`${sim.url}/v1/completions`, {
        prompt: 'a',
        max_tokens: 30_000,
        stream: true,
      });
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      await reader.read();
      await reader.cancel();
      // The server sees the disconnect asynchronously; poll until the engine has dropped the request.
      let running = 1;
      // Bounded only so that a regression fails instead of hanging the run; the bound is far beyond any real delay.
      for (let poll = 0; poll < 3000 && running !== 0; poll++) {
        await sleep(20);
        const samples = await metrics(sim);
        running = value(samples, 'vllm:num_requests_running');
        if (running === 0) assert.equal(value(samples, 'vllm:kv_cache_usage_perc'), 0);
      }
      assert.equal(running, 0);
    } finally {
      await sim.close();
    }
  });
});

describe('llmisvc sim as a child process', () => {
  it('starts with flags, serves, and exits cleanly on SIGTERM', async () => {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const child = spawn(
      process.execPath,
      [
        join(root, 'bin/llmisvc.js'),
        'sim',
        '--port',
        '0',
        '--model',
        'llama',
        '--pod-name',
        'child-0',
        '--lora-modules',
        'a=/x',
        'b',
        '--no-enable-prefix-caching',
        '--time-scale',
        '0.001',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      let output = '';
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          const match = /at (http:\/\/\S+)/.exec(output);
          if (match) resolve(match[1] as string);
        });
        child.once('exit', (code) => reject(new Error(`llmisvc sim exited with ${code}: ${output}`)));
      });
      const response = await post(`${url}/v1/completions`, { model: 'b', prompt: 'hi', max_tokens: 2 });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('x-inference-pod'), 'child-0');
      const cache = parseExposition(await (await fetch(`${url}/metrics`)).text()).samples.find(
        (s) => s.name === 'vllm:cache_config_info',
      );
      assert.equal(cache?.labels['enable_prefix_caching'], 'False');
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
