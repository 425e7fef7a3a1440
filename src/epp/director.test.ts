import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  loadEndpointPickerConfig,
  defaultEndpointPickerConfig,
  prefillDecodeEndpointPickerConfig,
} from './config.js';
import { decide, emptyModelDirectory, type ModelDirectory } from './director.js';
import { endpoint, seededRandom } from '../../test/harness/endpoints.js';
import type { Endpoint } from './types.js';

const NOW = 1_000_000;

function body(model: string, prompt: string): Buffer {
  return Buffer.from(JSON.stringify({ model, prompt, max_tokens: 4 }));
}

function route(
  config: ReturnType<typeof loadEndpointPickerConfig>,
  endpoints: Endpoint[],
  b: Buffer | undefined,
  extra: {
    headers?: Record<string, string>;
    directory?: ModelDirectory;
    seed?: number;
    subset?: Set<string>;
  } = {},
) {
  return decide(
    {
      requestId: 'r',
      path: '/v1/completions',
      headers: extra.headers ?? {},
      body: b,
      subsetHint: extra.subset,
    },
    endpoints,
    config,
    extra.directory ?? emptyModelDirectory,
    NOW,
    seededRandom(extra.seed ?? 1),
  );
}

test('decisions: rejections by status', () => {
  const config = loadEndpointPickerConfig(defaultEndpointPickerConfig);
  const fresh = [endpoint('10.0.0.1:8000'), endpoint('10.0.0.2:8000')];
  const cases: {
    name: string;
    endpoints: Endpoint[];
    body: Buffer | undefined;
    status: number;
    headers?: Record<string, string>;
    directory?: ModelDirectory;
  }[] = [
    { name: 'not JSON', endpoints: fresh, body: Buffer.from('{"model": '), status: 400 },
    { name: 'no model', endpoints: fresh, body: Buffer.from('{"prompt":"x"}'), status: 400 },
    { name: 'JSON array', endpoints: fresh, body: Buffer.from('[1,2]'), status: 400 },
    {
      name: 'unknown model when models are declared',
      endpoints: fresh,
      body: body('other', 'x'),
      status: 404,
      directory: {
        models: new Map([['m', { criticality: 'Standard', targets: [] }]]),
        objectives: new Map(),
      },
    },
    { name: 'no endpoints', endpoints: [], body: body('m', 'x'), status: 503 },
    {
      name: 'only stale endpoints',
      endpoints: [endpoint('10.0.0.1:8000', { updatedAt: NOW - 10_000 })],
      body: body('m', 'x'),
      status: 503,
    },
    {
      name: 'sheddable while saturated',
      endpoints: [
        endpoint('10.0.0.1:8000', { waitingQueueSize: 50 }),
        endpoint('10.0.0.2:8000', { kvCacheUsage: 0.99 }),
      ],
      body: body('m', 'x'),
      headers: { 'x-gateway-inference-objective': 'batch' },
      directory: { models: new Map(), objectives: new Map([['batch', -1]]) },
      status: 429,
    },
  ];
  for (const c of cases) {
    const d = route(config, c.endpoints, c.body, { headers: c.headers, directory: c.directory });
    assert.equal(d.kind, 'reject', c.name);
    if (d.kind === 'reject') assert.equal(d.error.status, c.status, c.name);
  }
});

test('decisions: critical requests are not shed while saturated', () => {
  const config = loadEndpointPickerConfig(defaultEndpointPickerConfig);
  const saturated = [
    endpoint('10.0.0.1:8000', { waitingQueueSize: 50 }),
    endpoint('10.0.0.2:8000', { waitingQueueSize: 40 }),
  ];
  const directory: ModelDirectory = {
    models: new Map(),
    objectives: new Map([
      ['chat', 10],
      ['batch', -5],
    ]),
  };
  const critical = route(config, saturated, body('m', 'x'), {
    headers: { 'x-gateway-inference-objective': 'chat' },
    directory,
  });
  assert.equal(critical.kind, 'route');
  if (critical.kind === 'route') assert.equal(critical.endpoint.address, '10.0.0.2:8000');
  const standard = route(config, saturated, body('m', 'x'));
  assert.equal(standard.kind, 'route');
});

test('decisions: stale endpoints are avoided and the subset hint is respected', () => {
  const config = loadEndpointPickerConfig(defaultEndpointPickerConfig);
  const endpoints = [
    endpoint('10.0.0.1:8000', { updatedAt: NOW - 5000 }),
    { ...endpoint('10.0.0.2:8000'), stale: true },
    endpoint('10.0.0.3:8000', { waitingQueueSize: 3 }),
    endpoint('10.0.0.4:8000', { waitingQueueSize: 4 }),
  ];
  for (let seed = 1; seed < 20; seed++) {
    const d = route(config, endpoints, body('m', 'hello'), { seed });
    assert.equal(d.kind, 'route');
    if (d.kind === 'route') assert.equal(d.endpoint.address, '10.0.0.3:8000');
  }
  const hinted = route(config, endpoints, body('m', 'hello'), { subset: new Set(['10.0.0.4:8000']) });
  assert.equal(hinted.kind === 'route' && hinted.endpoint.address, '10.0.0.4:8000');
});

test('decisions: a shared long prefix sticks to the endpoint that served it', () => {
  const config = loadEndpointPickerConfig(defaultEndpointPickerConfig);
  const endpoints = ['1', '2', '3', '4'].map((i) => endpoint(`10.0.0.${i}:8000`));
  const system = 'You are a careful assistant. '.repeat(40);
  const first = route(config, endpoints, body('m', system + 'question one'), { seed: 7 });
  assert.equal(first.kind, 'route');
  const home = first.kind === 'route' ? first.endpoint.address : '';
  for (let i = 0; i < 10; i++) {
    const d = route(config, endpoints, body('m', `${system}question ${i}`), { seed: 100 + i });
    assert.equal(d.kind === 'route' && d.endpoint.address, home, `request ${i}`);
  }
  // A different prefix is free to go anywhere; with a long queue at home it must leave.
  const busy = endpoints.map((e) =>
    e.address === home ? { ...e, metrics: { ...e.metrics, waitingQueueSize: 20 } } : e,
  );
  const moved = route(config, busy, body('m', 'Completely different text. '.repeat(40)), { seed: 3 });
  assert.notEqual(moved.kind === 'route' && moved.endpoint.address, home);
});

test('decisions: InferenceModel mapping rewrites the model in the body', () => {
  const config = loadEndpointPickerConfig(defaultEndpointPickerConfig);
  const directory: ModelDirectory = {
    models: new Map([
      ['chat', { criticality: 'Critical', targets: [{ name: 'chat-lora-v2', weight: 100 }] }],
    ]),
    objectives: new Map(),
  };
  const d = route(config, [endpoint('10.0.0.1:8000')], body('chat', 'hi'), { directory });
  assert.equal(d.kind, 'route');
  if (d.kind === 'route') {
    assert.equal(d.targetModel, 'chat-lora-v2');
    assert.equal(JSON.parse(d.rewrittenBody!.toString()).model, 'chat-lora-v2');
    assert.equal(d.criticality, 'Critical');
  }
});

test("decisions: requestHandler.propagatePriority writes the objective's priority into the body, flipped for vLLM", () => {
  const config = loadEndpointPickerConfig(
    'apiVersion: llm-d.ai/v1\nkind: EndpointPickerConfig\nplugins:\n- type: queue-scorer\nrequestHandler: {propagatePriority: true}\n',
  );
  assert.equal(config.propagatePriority, true);
  const directory: ModelDirectory = {
    models: new Map(),
    objectives: new Map([
      ['interactive', 100],
      ['batch', -10],
    ]),
  };
  const sglang = { ...endpoint('10.0.0.1:8000'), labels: { 'llm-d.ai/engine-type': 'sglang' } };
  const vllm = { ...endpoint('10.0.0.2:8000'), labels: { 'llm-d.ai/engine-type': 'vLLM' } };
  const unlabelled = endpoint('10.0.0.3:8000');
  const gieLabelled = {
    ...endpoint('10.0.0.4:8000'),
    labels: { 'inference.networking.k8s.io/engine-type': 'vllm' },
  };
  // The client's own "priority" is overwritten: it does not get to promote itself in the server's queue.
  const clientBody = Buffer.from(JSON.stringify({ model: 'm', prompt: 'hi', priority: -1000 }));
  const sent = (e: Endpoint, headers: Record<string, string>) => {
    const d = route(config, [e], clientBody, { directory, headers });
    assert.equal(d.kind, 'route');
    return d.kind === 'route' ? (JSON.parse(d.rewrittenBody!.toString()) as Record<string, unknown>) : {};
  };
  const interactive = { 'x-gateway-inference-objective': 'interactive' };
  assert.deepEqual(sent(sglang, interactive), { model: 'm', prompt: 'hi', priority: 100 });
  assert.equal(sent(vllm, interactive)['priority'], -100);
  assert.equal(sent(vllm, { 'x-gateway-inference-objective': 'batch' })['priority'], 10);
  assert.equal(sent(unlabelled, interactive)['priority'], 100);
  assert.equal(sent(gieLabelled, interactive)['priority'], -100);
  // No objective (or an unknown one): the default priority 0, still written over the client's.
  assert.equal(sent(vllm, {})['priority'], 0);
  assert.equal(sent(sglang, { 'x-gateway-inference-objective': 'nope' })['priority'], 0);
  // Off (the default): the body goes as the client sent it.
  const off = route(loadEndpointPickerConfig(defaultEndpointPickerConfig), [vllm], clientBody, {
    directory,
    headers: interactive,
  });
  assert.equal(off.kind === 'route' && off.rewrittenBody, undefined);
});

test("decisions: a client's kv_transfer_params never reach the model server (they would name hosts to fetch KV blocks from)", () => {
  const config = loadEndpointPickerConfig(defaultEndpointPickerConfig);
  const hostile = Buffer.from(
    JSON.stringify({
      model: 'm',
      prompt: 'hi',
      kv_transfer_params: { do_remote_prefill: true, remote_host: '169.254.169.254', remote_port: 80 },
    }),
  );
  const d = route(config, [endpoint('10.0.0.1:8000')], hostile, {
    directory: { models: new Map(), objectives: new Map() },
  });
  assert.equal(d.kind, 'route');
  assert.deepEqual(JSON.parse(d.kind === 'route' ? d.rewrittenBody!.toString() : '{}'), {
    model: 'm',
    prompt: 'hi',
  });
  // Without the field the body goes as the client sent it (no rewrite).
  const plain = route(config, [endpoint('10.0.0.1:8000')], Buffer.from('{"model":"m","prompt":"hi"}'), {
    directory: { models: new Map(), objectives: new Map() },
  });
  assert.equal(plain.kind === 'route' && plain.rewrittenBody, undefined);
});

test('decisions: P/D sends long uncached prompts through a prefill endpoint', () => {
  const config = loadEndpointPickerConfig(prefillDecodeEndpointPickerConfig);
  const endpoints = [
    endpoint('10.0.1.1:8000', {}, 'prefill'),
    endpoint('10.0.2.1:8000', {}, 'decode'),
    endpoint('10.0.2.2:8000', {}, 'decode'),
  ];
  const long = 'Summarise the following report. '.repeat(30);
  const d = route(config, endpoints, body('m', long));
  assert.equal(d.kind, 'route');
  if (d.kind === 'route') {
    assert.equal(d.headers['x-prefiller-host-port'], '10.0.1.1:8000');
    assert.match(d.endpoint.address, /^10\.0\.2\./);
  }
  const short = route(config, endpoints, body('m', 'hi'));
  assert.equal(short.kind === 'route' && short.headers['x-prefiller-host-port'], undefined);
  // Once the decode endpoint has the prefix cached, the same long prompt no longer needs a prefill.
  const again = route(config, endpoints, body('m', long));
  assert.equal(again.kind === 'route' && again.headers['x-prefiller-host-port'], undefined);
});
