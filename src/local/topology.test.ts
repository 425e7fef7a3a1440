import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { DEFAULT_RENDER_OPTIONS, parseApiVersions, renderService } from '../render/index.js';
import { readServiceFile } from './stack.js';
import { localTopology, servedModelName } from './topology.js';

function topologyOf(example: string) {
  const file = fileURLToPath(new URL(`../../../examples/${example}`, import.meta.url));
  const { service, configs } = readServiceFile(file);
  return localTopology(
    renderService({
      service,
      configs,
      apiVersions: parseApiVersions(undefined),
      options: DEFAULT_RENDER_OPTIONS,
    }),
  );
}

describe('localTopology', () => {
  it('reads the scheduler replicas: active-active EPPs for `up`', () => {
    assert.equal(topologyOf('epp-replicas.yaml').eppReplicas, 3);
  });

  it('reads the quickstart: 4 replicas, the model, the EPP config and the OpenAI paths with rewrites', () => {
    const t = topologyOf('quickstart.yaml');
    assert.equal(t.namespace, 'default');
    assert.equal(t.name, 'quickstart');
    assert.equal(t.model, 'Qwen/Qwen2.5-0.5B-Instruct');
    assert.deepEqual(
      t.workloads.map((w) => [w.name, w.kind, w.role, w.replicas]),
      [['quickstart-kserve', 'Deployment', 'both', 4]],
    );
    assert.deepEqual(t.workloads[0]!.podNames, [
      'quickstart-kserve-0',
      'quickstart-kserve-1',
      'quickstart-kserve-2',
      'quickstart-kserve-3',
    ]);
    assert.match(t.eppConfigText ?? '', /kind: EndpointPickerConfig/);
    assert.match(t.eppConfigText ?? '', /prefix-cache-scorer/);
    assert.equal(t.eppReplicas, 1);
    const chat = t.routes.find((r) => r.prefix === '/default/quickstart/v1/chat/completions');
    assert.deepEqual(chat, {
      prefix: '/default/quickstart/v1/chat/completions',
      rewrite: '/v1/chat/completions',
      backend: 'pool',
    });
    assert.deepEqual(
      t.routes.find((r) => r.backend === 'service'),
      { prefix: '/default/quickstart', rewrite: '/', backend: 'service' },
    );
    // Model-name routing: the header rule on the API paths, and the /publishers/ path rewritten to the API path.
    assert.deepEqual(
      t.routes.find((r) => r.prefix === '/v1/chat/completions'),
      {
        prefix: '/v1/chat/completions',
        rewrite: undefined,
        backend: 'pool',
        headers: [{ name: 'X-Gateway-Model-Name', value: 'Qwen/Qwen2.5-0.5B-Instruct' }],
      },
    );
    assert.equal(
      t.routes.find((r) =>
        r.prefix.startsWith('/publishers/default/models/Qwen/Qwen2.5-0.5B-Instruct/v1/chat'),
      )?.rewrite,
      '/v1/chat/completions',
    );
  });

  it('reads prefill and decode workloads with their roles', () => {
    const t = topologyOf('prefill-decode.yaml');
    const byRole = Object.fromEntries(t.workloads.map((w) => [w.role, w.replicas]));
    assert.deepEqual(byRole, { decode: 4, prefill: 2 });
    assert.equal(t.model, 'meta-llama/Llama-3.1-70B-Instruct');
    assert.match(t.eppConfigText ?? '', /pd-profile-handler|prefill/);
  });

  it('counts a LeaderWorkerSet group as one endpoint (its leader)', () => {
    const t = topologyOf('multi-node-data-parallel.yaml');
    const lws = t.workloads.find((w) => w.kind === 'LeaderWorkerSet');
    assert.ok(lws);
    assert.equal(lws.replicas, 2);
    assert.deepEqual(lws.podNames, [`${lws.name}-0`, `${lws.name}-1`]);
    assert.equal(t.model, 'deepseek-ai/DeepSeek-V2-Lite-Chat');
  });

  it('has no EPP config for a service without a scheduler: every route goes to the Service', () => {
    const t = topologyOf('no-scheduler.yaml');
    assert.equal(t.eppConfigText, undefined);
    assert.ok(t.routes.length > 0);
    assert.ok(t.routes.every((r) => r.backend === 'service'));
  });
});

describe('servedModelName', () => {
  const cases: [string, Record<string, unknown>, string | undefined][] = [
    ['list args', { args: ['--served-model-name', 'a/b', '--port', '8000'] }, 'a/b'],
    [
      'inside a shell script',
      { command: ['/bin/bash', '-c'], args: ['vllm serve \\\n --served-model-name "x/y" \\\n --port 8001'] },
      'x/y',
    ],
    [
      'quoted with a space, then given again after the script (vLLM keeps the last)',
      {
        command: ['/bin/sh', '-c'],
        args: ['exec vllm serve /m --served-model-name "my model" "$@"', '--', '--served-model-name', 'z'],
      },
      'z',
    ],
    ['with =', { args: ['--served-model-name=m'] }, 'm'],
    ['absent', { args: ['--port', '8000'] }, undefined],
  ];
  for (const [name, container, expected] of cases) {
    it(name, () => assert.equal(servedModelName(container), expected));
  }
});
