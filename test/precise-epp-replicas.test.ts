// Active-active EPP replicas with precise prefix-cache routing, nothing shared: `llmisvc up --epp-replicas 2` with
// llm-d-inference-sim publishing its real KV-cache events through the stack's relay to every replica. A prompt that
// only one simulator computed (directly, past the gateway) is then routed to it by both replicas — neither routed it
// before, so only the events can have told them.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalStack, type LocalStack } from '../src/local/index.js';
import { preciseEppConfig, prompt } from './harness/precise-routing.js';

const SIM = process.env['LLMISVC_INFERENCE_SIM'];
const MODEL = 'sim-model';

// Renders on every request's path (prefixStore off): each replica's first sight of a prompt is routed on its tokens,
// which is what this test is about (the prefix store is tested in precise-prefix-routing.test.ts).
const CONFIG = preciseEppConfig(MODEL, { prefixStore: false });

const SERVICE = `apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceService
metadata: { name: relay, namespace: default }
spec:
  model: { uri: "hf://${MODEL}", name: "${MODEL}" }
  replicas: 3
  router: { route: {}, gateway: {}, scheduler: {} }
`;

async function complete(base: string, text: string): Promise<string | null> {
  const response = await fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, prompt: text, max_tokens: 2 }),
  });
  await response.text();
  assert.equal(response.status, 200);
  return response.headers.get('x-inference-port');
}

describe('active-active EPP replicas on KV events (up --epp-replicas 2, the events relay)', () => {
  let stack: LocalStack;

  before(async () => {
    assert.ok(SIM, 'LLMISVC_INFERENCE_SIM is set by the test provisioning (test/harness/inference-sim.ts)');
    const dir = mkdtempSync(join(tmpdir(), 'llmisvc-precise-replicas-'));
    writeFileSync(join(dir, 'service.yaml'), SERVICE);
    stack = await startLocalStack({
      file: join(dir, 'service.yaml'),
      port: 0,
      gateway: 'builtin',
      eppReplicas: 2,
      eppConfigText: CONFIG,
      modelServerCmd:
        `env POD_IP=127.0.0.1:{port} POD_NAME={pod} ${SIM} --port {port} --model {model} --force-dummy-tokenizer --enable-kvcache ` +
        '--kv-cache-size 64 --block-size 16 --max-model-len 8192 --zmq-endpoint {kv-events-endpoint} --event-batch-size 1',
    });
  });

  after(async () => {
    await stack?.stop();
  });

  it('both replicas route a prompt to the simulator whose events hold it', async () => {
    assert.equal(stack.eppReplicas.length, 2);
    for (const owner of stack.endpoints.slice(0, 2)) {
      const port = owner.address.split(':')[1]!;
      const text = prompt(`relay${port}x`);
      assert.equal(await complete(`http://${owner.address}`, text), port, 'computed by the owner alone');
      // Its BlockStored event (sent at once: batch size 1) reaches both replicas through the relay; give it a moment
      // on a loaded machine rather than probe through the gateway (a probe routed early would spread the prompt).
      await new Promise((resolve) => setTimeout(resolve, 1000));
      // The builtin gateway asks the replicas in turn: of 6 requests each replica decides 3, all for the owner.
      const routed: (string | null)[] = [];
      for (let i = 0; i < 6; i++) routed.push(await complete(stack.url, text));
      assert.deepEqual(routed, Array<string>(6).fill(port));
    }
  });
});
