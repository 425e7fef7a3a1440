import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint } from '../../test/harness/endpoints.js';
import { Datastore } from './datastore.js';
import { emptyModelDirectory } from './director.js';
import {
  EppMetrics,
  OVERFLOW_LABEL_VALUE,
  RequestObservation,
  upstreamErrorCode,
  usageFromResponse,
} from './epp-metrics.js';

async function seriesCount(metrics: EppMetrics): Promise<number> {
  const families = await metrics.registry.getMetricsAsJSON();
  return families.reduce((n, f) => n + (f.values as unknown[]).length, 0);
}

test('metrics: 10,000 distinct client model names do not grow the registry beyond the cap', async () => {
  const datastore = new Datastore();
  datastore.setEndpoints([{ address: '10.0.0.1:8000' }]);
  const cap = 50;
  const metrics = new EppMetrics(datastore, { labelCap: cap });
  const target = datastore.endpoints()[0]!;
  const send = (i: number) => {
    const labels = metrics.requestLabels(`model-${i}`, `model-${i}`, {}, emptyModelDirectory);
    if (i % 2 === 0) {
      metrics.countRouted(labels, target, 100);
      new RequestObservation(metrics, labels, 0).done(1);
    } else metrics.recordRefusal(labels, 404);
  };
  for (let i = 0; i < 2 * cap; i++) send(i);
  const atCap = await seriesCount(metrics);
  for (let i = 2 * cap; i < 10_000; i++) send(i);
  assert.equal(await seriesCount(metrics), atCap, 'names past the cap add no series');
  const text = await metrics.registry.metrics();
  assert.match(text, new RegExp(`inference_objective_request_total\\{model_name="${OVERFLOW_LABEL_VALUE}"`));
  assert.match(
    text,
    /inference_objective_request_total\{model_name="model-0",target_model_name="model-0"\} 1/,
  );
  const modelNames = new Set([...text.matchAll(/model_name="([^"]*)"/g)].map((m) => m[1]));
  assert.equal(modelNames.size, cap + 1, 'the first names keep their value, all others read "other"');
});

test('metrics: usage is read from JSON responses and from the last events of a stream', () => {
  assert.deepEqual(
    usageFromResponse('{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}'),
    { promptTokens: 12, completionTokens: 3, cachedTokens: undefined },
  );
  const stream = [
    'data: {"choices":[{"text":"a"}]}',
    '',
    'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":4}}}',
    '',
    'data: [DONE]',
    '',
  ].join('\n');
  assert.deepEqual(usageFromResponse(stream), { promptTokens: 5, completionTokens: 2, cachedTokens: 4 });
  assert.equal(usageFromResponse('data: {"choices":[{"text":"a"}]}\n\ndata: [DONE]\n'), undefined);
  assert.equal(usageFromResponse('{"truncated'), undefined);
});

test('metrics: error codes as GIE names them', () => {
  assert.equal(upstreamErrorCode(429), 'InferencePoolResourceExhausted');
  assert.equal(upstreamErrorCode(503), 'ServiceUnavailable');
  assert.equal(upstreamErrorCode(400), 'BadRequest');
  assert.equal(upstreamErrorCode(500), 'Internal');
  assert.equal(upstreamErrorCode(502, true), 'ModelServerError');
});

test('metrics: pool gauges average the endpoints with fresh metrics; none fresh, no average', async () => {
  const datastore = new Datastore();
  datastore.setEndpoints([{ address: 'a:1' }, { address: 'b:1' }, { address: 'c:1' }]);
  const [a, b, c] = datastore.endpoints();
  Object.assign(a!, endpoint('a:1', { waitingQueueSize: 2, kvCacheUsage: 0.2 }));
  Object.assign(b!, endpoint('b:1', { waitingQueueSize: 4, kvCacheUsage: 0.6 }));
  Object.assign(c!, { ...endpoint('c:1', { waitingQueueSize: 100 }), stale: true });
  const metrics = new EppMetrics(datastore, { poolName: 'pool' });
  const text = await metrics.registry.metrics();
  assert.match(text, /inference_pool_average_queue_size\{name="pool"\} 3\n/);
  assert.match(text, /inference_pool_average_kv_cache_utilization\{name="pool"\} 0\.4/);
  assert.match(text, /inference_pool_ready_pods\{name="pool"\} 2\n/);
  assert.match(text, /llm_d_epp_std_dev_queue_size\{name="pool"\} 1\n/);
  assert.match(text, /inference_pool_per_pod_queue_size\{name="pool",model_server_pod="b:1"\} 4\n/);
  assert.doesNotMatch(text, /model_server_pod="c:1"/, 'a stale endpoint is not reported');
  for (const e of datastore.endpoints()) e.stale = true;
  const none = await metrics.registry.metrics();
  assert.match(none, /inference_pool_ready_pods\{name="pool"\} 0\n/);
  assert.doesNotMatch(none, /inference_pool_average_queue_size\{/);
});

test('metrics: observations recorded later all land on the next turn of the event loop; a failing one is reported, not thrown', async () => {
  const errors: unknown[] = [];
  const metrics = new EppMetrics(new Datastore(), { onError: (error) => errors.push(error) });
  metrics.later(() => metrics.requests.inc({ model: 'm', outcome: 'routed' }));
  metrics.later(() => {
    throw new Error('a label the family does not have');
  });
  metrics.later(() => metrics.requests.inc({ model: 'm', outcome: 'routed' }));
  assert.doesNotMatch(await metrics.registry.metrics(), /llmisvc_epp_requests_total\{model="m"/);
  await new Promise((resolve) => setImmediate(resolve));
  assert.match(
    await metrics.registry.metrics(),
    /llmisvc_epp_requests_total\{model="m",outcome="routed"\} 2/,
  );
  assert.equal(errors.length, 1);
  assert.match(String(errors[0]), /a label the family does not have/);
});
