/**
 * `llmisvc up` with a routing group (examples/routing-group.yaml: qwen-stable at 90, qwen-canary at 10) on the
 * builtin gateway and behind a real Envoy, real HTTP: requests naming the model split by weight across the members,
 * through the body (the gateway, or with Envoy our body-router ext_proc, sets `X-Gateway-Model-Name` from it) or
 * KServe's /publishers/ path; each member's own path reaches it alone; a client's own model-name header steers
 * nothing. And examples/served-by-header.yaml: every response
 * names its pod in `x-served-by`, on the builtin gateway and behind a real Envoy (where the EPP sets it). And two
 * services claiming one model name outside a group: the keeper gets the name, `up` warns.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startLocalStack, type LocalStack, type StackEvent } from '../src/local/index.js';
import { seededRandom } from '../src/sim/index.js';
import { REPO_ROOT } from './harness/repo.js';

const MODEL = 'Qwen/Qwen2.5-0.5B-Instruct';

async function post(
  stack: LocalStack,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; pod: string | null; servedBy: string | null }> {
  const res = await fetch(`${stack.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  await res.arrayBuffer();
  return {
    status: res.status,
    pod: res.headers.get('x-inference-pod'),
    servedBy: res.headers.get('x-served-by'),
  };
}

const chat = (model: unknown) => ({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
const member = (pod: string | null) => pod?.replace(/-kserve-\d+$/, '');

const ENVOY_BIN = process.env['ENVOY_BIN'];

/**
 * examples/routing-group.yaml with the served-by header on both members: each member's Endpoint Picker names the pod
 * it picked, so a response whose `x-served-by` equals its `x-inference-pod` was routed by the EPP of the member
 * that served it (behind Envoy, a split member whose own EPP was not asked would show another member's pod).
 */
function routingGroupWithServedBy(): string {
  const text = readFileSync(join(REPO_ROOT, 'examples', 'routing-group.yaml'), 'utf8').replace(
    /^( {2}namespace: default)$/gm,
    "$1\n  annotations:\n    serving.kserve.io/enable-served-by-header: 'true'",
  );
  const dir = mkdtempSync(join(tmpdir(), 'llmisvc-group-'));
  const file = join(dir, 'routing-group.yaml');
  writeFileSync(file, text);
  return file;
}

// The same traffic through both gateways: the builtin one is its own body-based router; with Envoy, our body-router
// ext_proc sets the model-name header and Envoy's weighted clusters split, each member through its own EPP.
for (const gateway of ['builtin', 'envoy'] as const)
  describe(
    `llmisvc up: a routing group (${gateway} gateway)`,
    { skip: gateway === 'envoy' && !ENVOY_BIN ? 'ENVOY_BIN not set (run through npm test)' : false },
    () => {
      let stack: LocalStack;
      let file: string;
      before(async () => {
        file = routingGroupWithServedBy();
        stack = await startLocalStack({
          file,
          port: 0,
          gateway,
          envoyBin: ENVOY_BIN,
          simulator: { timeScale: 0.01 },
          random: seededRandom(15),
        });
      });
      after(async () => {
        await stack?.stop();
        rmSync(dirname(file), { recursive: true, force: true });
      });

      it('runs every member with its own model servers and Endpoint Picker', () => {
        assert.deepEqual(
          stack.services.map((s) => [s.key, s.eppAddress !== undefined]),
          [
            ['default/qwen-stable', true],
            ['default/qwen-canary', true],
          ],
        );
        assert.deepEqual(
          stack.endpoints.map((e) => e.pod),
          ['qwen-stable-kserve-0', 'qwen-stable-kserve-1', 'qwen-canary-kserve-0'],
        );
      });

      it('splits requests naming the model 90/10 across the members', async () => {
        const counts: Record<string, number> = {};
        const n = 300;
        for (let i = 0; i < n; i++) {
          // Half through the body's model, half through the /publishers/ path.
          const path =
            i % 2 ? '/v1/chat/completions' : `/publishers/default/models/${MODEL}/v1/chat/completions`;
          const r = await post(stack, path, chat(MODEL));
          assert.equal(r.status, 200);
          // Picked by the serving member's own EPP.
          assert.equal(r.servedBy, r.pod);
          counts[member(r.pod)!] = (counts[member(r.pod)!] ?? 0) + 1;
        }
        const canary = (counts['qwen-canary'] ?? 0) / n;
        // 10 % expected; the seeded run lands within a few points of it.
        assert.ok(canary > 0.05 && canary < 0.16, `canary share ${canary} (${JSON.stringify(counts)})`);
        assert.equal((counts['qwen-stable'] ?? 0) + (counts['qwen-canary'] ?? 0), n);
      });

      it("keeps each member's own paths to that member", async () => {
        for (const name of ['qwen-canary', 'qwen-stable'])
          for (let i = 0; i < 10; i++) {
            const r = await post(stack, `/default/${name}/v1/chat/completions`, chat(MODEL));
            assert.equal(r.status, 200);
            assert.equal(member(r.pod), name);
            assert.equal(r.servedBy, r.pod);
          }
        // A request without a body too (Envoy: the body router sees headers only).
        const res = await fetch(`${stack.url}/default/qwen-canary/v1/models`);
        assert.equal(res.status, 200);
        assert.equal(member(res.headers.get('x-inference-pod')), 'qwen-canary');
        await res.arrayBuffer();
      });

      it('lets no client-sent model-name header steer a request, and routes no unknown or malformed model', async () => {
        // The header says another model: the body decides (and it names the group's).
        const steered = await post(stack, '/v1/chat/completions', chat(MODEL), {
          'X-Gateway-Model-Name': 'other-namespace/secret-model',
        });
        assert.equal(steered.status, 200);
        // The header names the group's model, the body another one: the header is dropped, nothing matches.
        const forged = await post(stack, '/v1/chat/completions', chat('other-namespace/secret-model'), {
          'X-Gateway-Model-Name': MODEL,
        });
        assert.equal(forged.status, 404);
        assert.equal(forged.pod, null);
        for (const bad of [chat(`${MODEL}\u0000`), chat(42), chat('é'), chat('x'.repeat(5000))]) {
          const r = await post(stack, '/v1/chat/completions', bad, { 'X-Gateway-Model-Name': MODEL });
          assert.equal(r.status, 404, JSON.stringify(bad).slice(0, 40));
        }
        // A JSON body that does not parse is refused by both gateways' body routing, before any backend.
        const truncated = await post(stack, '/v1/chat/completions', '{"model": ', {
          'X-Gateway-Model-Name': MODEL,
        });
        assert.equal(truncated.status, 400);
        assert.equal(truncated.pod, null);
        // A /publishers/ path of another namespace or model reaches nothing either.
        for (const path of [
          `/publishers/other/models/${MODEL}/v1/chat/completions`,
          '/publishers/default/models/unknown/v1/chat/completions',
          `/publishers/default/models/${MODEL}/../../../../qwen-canary/v1/chat/completions`,
        ]) {
          const r = await post(stack, path, chat(MODEL));
          assert.equal(r.status, 404, path);
        }
        // And the gateway still serves.
        assert.equal((await post(stack, '/v1/chat/completions', chat(MODEL))).status, 200);
      });

      it('reads bodies up to 16 MiB for the model name, and refuses larger ones with 413', async () => {
        const big = (bytes: number) => ({
          ...chat(MODEL),
          messages: [{ role: 'user', content: 'x'.repeat(bytes) }],
        });
        // Above Envoy's default 1 MiB buffer: the body router still sees the whole body.
        const twoMiB = await post(stack, '/v1/chat/completions', big(2 * 2 ** 20));
        assert.equal(twoMiB.status, 200);
        const tooLarge = await post(stack, '/v1/chat/completions', big(17 * 2 ** 20));
        assert.equal(tooLarge.status, 413);
        assert.equal((await post(stack, '/v1/chat/completions', chat(MODEL))).status, 200);
      });

      it("lets no client-sent split draw pick a group member (Envoy's weighted-cluster header)", async () => {
        // Were the header obeyed, 5 (mod the total weight of 100, the canary's 10 listed first) would send every request to the canary.
        const members = new Set<string>();
        for (let i = 0; i < 30; i++) {
          const r = await post(stack, '/v1/chat/completions', chat(MODEL), { 'x-llmisvc-split-draw': '5' });
          assert.equal(r.status, 200);
          members.add(member(r.pod)!);
        }
        assert.ok(members.has('qwen-stable'), [...members].join(','));
      });
    },
  );

// Builtin: the gateway names the endpoint it proxied to. Envoy: the Endpoint Picker sets the header in its answer to
// the response headers, as in a cluster.
for (const gateway of ['builtin', 'envoy'] as const)
  describe(
    `llmisvc up: the served-by header (${gateway} gateway)`,
    {
      skip: gateway === 'envoy' && !ENVOY_BIN ? 'ENVOY_BIN not set (run through npm test)' : false,
    },
    () => {
      let stack: LocalStack;
      before(async () => {
        stack = await startLocalStack({
          file: join(REPO_ROOT, 'examples', 'served-by-header.yaml'),
          port: 0,
          gateway,
          envoyBin: ENVOY_BIN,
          simulator: { timeScale: 0.01 },
        });
      });
      after(() => stack?.stop());

      it('names the pod that served each response in x-served-by', async () => {
        const seen = new Set<string>();
        for (let i = 0; i < 20; i++) {
          const r = await post(stack, '/default/served-by/v1/chat/completions', chat(MODEL));
          assert.equal(r.status, 200);
          assert.ok(r.servedBy, 'x-served-by is set');
          assert.equal(r.servedBy, r.pod);
          seen.add(r.servedBy);
        }
        for (const pod of seen) assert.match(pod, /^served-by-kserve-[01]$/);
      });
    },
  );

// Two services of one file claiming one model name outside a routing group: `up` serves both as the controller
// would (the keeper gets the model-name rules, the other only its own paths) and says so.
describe('llmisvc up: two services claiming one model name', () => {
  let stack: LocalStack;
  let dir: string;
  const events: StackEvent[] = [];
  before(async () => {
    const service = (name: string) => `apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceService
metadata: { name: ${name}, namespace: team }
spec:
  model: { uri: hf://org/${name}, name: org/llama }
  router: { route: {}, gateway: {}, scheduler: {} }
`;
    dir = mkdtempSync(join(tmpdir(), 'llmisvc-collision-'));
    const file = join(dir, 'collision.yaml');
    writeFileSync(file, [service('zeta'), service('alpha')].join('---\n'));
    stack = await startLocalStack({
      file,
      port: 0,
      simulator: { timeScale: 0.01 },
      onEvent: (e) => events.push(e),
    });
  });
  after(async () => {
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('warns once, naming the loser and the keeper, and routes the name to the keeper only', async () => {
    const warnings = events.flatMap((e) => (e.type === 'warning' ? [e.message] : []));
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.match(
      warnings[0]!,
      /^team\/zeta: model name "org\/llama" is already served in this namespace by alpha/,
    );
    for (let i = 0; i < 6; i++) {
      const byName = await post(stack, '/v1/chat/completions', chat('org/llama'));
      assert.equal(byName.status, 200);
      assert.equal(member(byName.pod), 'alpha');
    }
    const own = await post(stack, '/team/zeta/v1/chat/completions', chat('org/llama'));
    assert.equal(own.status, 200);
    assert.equal(member(own.pod), 'zeta');
  });
});
