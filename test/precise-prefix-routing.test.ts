// Precise prefix-cache routing against an implementation no one here wrote: two llm-d-inference-sim processes publish
// their real KV-cache events (ZMQ + msgpack) to the EPP's central socket; the EPP, behind the builtin gateway, sends a
// repeated prompt to the simulator whose events say it holds the prompt's blocks, and follows the evictions the
// simulator reports.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { startEpp, type RunningEpp } from '../src/epp/index.js';
import { startBuiltinGateway, type RunningGateway } from '../src/gateway/index.js';
import {
  TOKENIZED_PROMPT,
  type PrecisePrefixCacheProducer,
  type TokenizedPrompt,
  type TokenProducer,
} from '../src/epp/plugins/index.js';
import { freeLoopbackPorts, killOnExit, waitFor } from '../src/process/index.js';
import { preciseEppConfig, prompt } from './harness/precise-routing.js';

const SIM = process.env['LLMISVC_INFERENCE_SIM'];
const MODEL = 'sim-model';

const CONFIG = preciseEppConfig(MODEL);

/** Polls `check` until it holds, for at most 20 s. */
const until = (what: string, check: () => boolean | Promise<boolean>) =>
  waitFor(check, { what, timeoutMs: 20_000 });

async function complete(base: string, text: string): Promise<{ status: number; port: string | null }> {
  const response = await fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, prompt: text, max_tokens: 2 }),
  });
  const body = await response.text();
  if (response.status !== 200) console.error(`HTTP ${response.status} from ${base}: ${body.slice(0, 300)}`);
  return { status: response.status, port: response.headers.get('x-inference-port') };
}

describe('precise prefix-cache routing on llm-d-inference-sim KV events', () => {
  const sims: ChildProcess[] = [];
  const ports: number[] = [];
  let epp: RunningEpp;
  let gateway: RunningGateway;
  let producer: PrecisePrefixCacheProducer;
  let tokens: TokenProducer;

  before(async () => {
    assert.ok(SIM, 'LLMISVC_INFERENCE_SIM is set by the test provisioning (test/harness/inference-sim.ts)');
    ports.push(...(await freeLoopbackPorts(2)));
    epp = await startEpp({
      grpcPort: 0,
      grpcHealthPort: 0,
      metricsPort: 0,
      host: '127.0.0.1',
      endpoints: ports.map((p) => ({ address: `127.0.0.1:${p}` })),
      configText: CONFIG,
      refreshMetricsIntervalMs: 50,
    });
    producer = epp.config.plugins.get('precise-prefix-cache-producer') as PrecisePrefixCacheProducer;
    tokens = epp.config.plugins.get('token-producer') as TokenProducer;
    const events = producer.boundEndpoint()!;
    for (const [i, port] of ports.entries()) {
      const child = spawn(
        SIM,
        [
          ...['--port', String(port), '--model', MODEL, '--force-dummy-tokenizer', '--enable-kvcache'],
          ...['--kv-cache-size', '64', '--block-size', '16', '--max-model-len', '8192'],
          ...['--zmq-endpoint', events, '--event-batch-size', '4'],
          // The second simulator speaks vLLM's map encoding, the first the positional one.
          ...(i === 1 ? ['--use-vllm-map-event-format'] : []),
        ],
        { env: { ...process.env, POD_IP: `127.0.0.1:${port}`, POD_NAME: `sim-${i}` }, stdio: 'ignore' },
      );
      killOnExit(child);
      sims.push(child);
    }
    for (const port of ports)
      await until(`simulator ${port}`, async () => (await fetch(`http://127.0.0.1:${port}/health`)).ok);
    await until('fresh metrics', () => epp.datastore.endpoints().every((e) => !e.stale));
    gateway = await startBuiltinGateway({
      port: 0,
      routes: [{ prefix: '/', backend: 'pool' }],
      eppAddress: `127.0.0.1:${epp.grpcPort}`,
      serviceEndpoints: ports.map((p) => `127.0.0.1:${p}`),
    });
  });

  after(async () => {
    await gateway?.close();
    await epp?.close();
    for (const child of sims) child.kill('SIGKILL');
  });

  /** The simulator's own tokens of `text`. */
  async function rendered(text: string): Promise<number[]> {
    const answer = await fetch(`http://127.0.0.1:${ports[0]}/v1/completions/render`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, prompt: text }),
    });
    const [{ token_ids }] = (await answer.json()) as [{ token_ids: number[] }];
    return token_ids;
  }

  /** Leading blocks of `text` each simulator holds, as the EPP's index says. */
  async function held(text: string): Promise<Map<string, number>> {
    return producer.index.match(producer.index.keysOf(MODEL, await rendered(text)));
  }

  /** What the EPP's token-producer gives a request for `text` now (its prefix store answers without a render). */
  async function prepared(text: string): Promise<TokenizedPrompt | undefined> {
    const data = new Map<string, unknown>();
    const body = Buffer.from(JSON.stringify({ model: MODEL, prompt: text, max_tokens: 2 }));
    await tokens.prepareRequestData(
      { path: '/v1/completions', headers: {}, body },
      epp.datastore.endpoints(),
      data,
    );
    return data.get(TOKENIZED_PROMPT) as TokenizedPrompt | undefined;
  }

  /** Waits until the prefix store knows all of `text` (its first sight is rendered in the background). */
  async function remembered(text: string): Promise<void> {
    await until('the background render', async () => {
      const got = await prepared(text);
      return got?.source === 'prefix-store' && got.promptTokens === undefined;
    });
  }

  for (const owner of [1, 0]) {
    it(`routes a repeated prompt to the simulator whose events hold its blocks (simulator ${owner}), then follows its eviction`, async () => {
      const address = `127.0.0.1:${ports[owner]}`;
      const other = ports[1 - owner]!;
      const text = prompt(`owner${owner}x`);
      // Only this simulator computes the prompt; its BlockStored events reach the EPP.
      assert.equal((await complete(`http://${address}`, text)).status, 200);
      await until('the BlockStored events', async () => ((await held(text)).get(address) ?? 0) >= 18);
      // The EPP has not seen this prompt: a first sight is routed without tokens while rendered in the background.
      await remembered(text);
      for (let i = 0; i < 4; i++) {
        const routed = await complete(gateway.url, text);
        assert.equal(routed.status, 200);
        assert.equal(
          routed.port,
          String(ports[owner]),
          `request ${i} went to the simulator holding the prefix`,
        );
      }
      // Other prompts fill the owner's 64 blocks: it evicts the prompt and says so (BlockRemoved).
      for (let i = 0; i < 4; i++)
        assert.equal((await complete(`http://${address}`, prompt(`filler${owner}x${i}x`))).status, 200);
      await until('the BlockRemoved events', async () => ((await held(text)).get(address) ?? 0) < 18);
      // Now the other simulator computes it: the EPP follows.
      assert.equal((await complete(`http://127.0.0.1:${other}`, text)).status, 200);
      await until(
        'the other BlockStored events',
        async () => ((await held(text)).get(`127.0.0.1:${other}`) ?? 0) >= 18,
      );
      const routed = await complete(gateway.url, text);
      assert.equal(routed.port, String(other));
      assert.equal(producer.stats.undecodable, 0);
    });
  }

  it('routes a new prompt on the tokens remembered for its text prefix, which the simulator hashed the same', async () => {
    const owner = `127.0.0.1:${ports[1]}`;
    const shared = prompt('sharedx', 320);
    assert.equal((await complete(`http://${owner}`, `${shared} computed here first`)).status, 200);
    // Two earlier requests sharing the prefix, as the EPP would have seen them: their renders teach the store.
    for (const question of ['what is alpha', 'and beta then, or gamma'])
      await remembered(`${shared} ${question}`);
    const text = `${shared} a question this EPP never rendered`;
    const stored = tokens.prefixStoreStats.get('prefix') ?? 0;
    const got = await prepared(text);
    assert.equal(got?.source, 'prefix-store');
    assert.equal(
      tokens.prefixStoreStats.get('prefix'),
      stored + 1,
      'answered from the prefix, without a render',
    );
    const real = await rendered(text);
    assert.deepEqual(
      Array.from(got.tokens),
      real.slice(0, got.tokens.length),
      "a prefix of the simulator's tokens",
    );
    assert.ok(
      got.tokens.length >= 288,
      `covers the shared prefix but its last chunk (${got.tokens.length} tokens)`,
    );
    assert.ok(got.promptTokens! >= real.length - 16 && got.promptTokens! <= real.length + 16);
    // Keyed like the simulator's own events: the index finds the owner's blocks from these tokens.
    await until("the owner's events", () => {
      const blocks = producer.index.match(producer.index.keysOf(MODEL, got.tokens)).get(owner) ?? 0;
      return blocks === Math.floor(got.tokens.length / 16);
    });
    const routed = await complete(gateway.url, text);
    assert.equal(routed.port, String(ports[1]), 'routed to the simulator holding the shared prefix');
  });
});
