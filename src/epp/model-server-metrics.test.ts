import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_LINE_BYTES, metricsFromExposition, parseSamples } from './model-server-metrics.js';

test('vLLM exposition → endpoint metrics', () => {
  const text = `# HELP vllm:num_requests_waiting Number of requests waiting.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="a"} 3.0
vllm:num_requests_waiting{model_name="b"} 2
vllm:num_requests_running{model_name="a"} 7
vllm:kv_cache_usage_perc{model_name="a"} 0.42
vllm:lora_requests_info{max_lora="4",running_lora_adapters="sql,chat",waiting_lora_adapters=""} 1.7e9
vllm:lora_requests_info{max_lora="4",running_lora_adapters="old",waiting_lora_adapters="x"} 1.6e9
vllm:cache_config_info{block_size="16",num_gpu_blocks="2048",cache_dtype="auto"} 1
vllm:num_requests_waiting_total 99
vllm:prompt_tokens_total{model_name="a"} 1200
vllm:prompt_tokens_total{model_name="b"} 34
vllm:prompt_tokens_created{model_name="a"} 1.7e9
`;
  const m = metricsFromExposition(text, 5);
  assert.equal(m.waitingQueueSize, 5);
  assert.equal(m.runningQueueSize, 7);
  assert.equal(m.kvCacheUsage, 0.42);
  assert.deepEqual([...m.activeAdapters], ['sql', 'chat']);
  assert.deepEqual([...m.waitingAdapters], []);
  assert.equal(m.maxActiveAdapters, 4);
  assert.equal(m.blockSize, 16);
  assert.equal(m.numGpuBlocks, 2048);
  assert.equal(m.promptTokensTotal, 1234, 'one counter series per model, summed');
  assert.equal(m.updatedAt, 5);
});

test('older vLLM and SGLang names', () => {
  assert.equal(metricsFromExposition('vllm:gpu_cache_usage_perc 0.9\n', 1).kvCacheUsage, 0.9);
  const s = metricsFromExposition(
    'sglang:num_queue_reqs{tp_rank="0"} 4\nsglang:num_running_reqs 2\nsglang:token_usage 0.5\n',
    1,
  );
  assert.deepEqual([s.waitingQueueSize, s.runningQueueSize, s.kvCacheUsage], [4, 2, 0.5]);
  assert.equal(metricsFromExposition('garbage {{{\n\n', 1).waitingQueueSize, 0);
  assert.equal(metricsFromExposition('sglang:prompt_tokens_total 0\n', 1).promptTokensTotal, 0);
  assert.equal(
    metricsFromExposition('vllm:num_requests_running 1\n', 1).promptTokensTotal,
    -1,
    'not reported',
  );
});

test('wanted lines among histograms, CRLF endings, tabs, and lines that only look like them', () => {
  const buckets = Array.from(
    { length: 200 },
    (_, i) => `vllm:time_to_first_token_seconds_bucket{le="${i}",model_name="a"} ${i}`,
  );
  const text = [
    ...buckets,
    'vllm:num_requests_waiting\t{model_name="a"}\t2\r',
    'vllm:num_requests_running{model_name="a"} 3 1700000000000\r',
    'vllm:kv_cache_usage_perc_max{model_name="a"} 0.99',
    'vllm:kv_cache_usage_perc{model_name="a"}',
    'vllm:kv_cache_usage_perc{model_name="a" 0.7',
    'vllm:kv_cache_usage_perc{model_name="a"} 0.25',
    '# HELP vllm:num_requests_waiting 99',
    ' vllm:num_requests_waiting 99',
    'sglang:token_usagex 0.9',
    'vllm:prompt_tokens_total',
  ].join('\n');
  const m = metricsFromExposition(text, 1);
  assert.equal(m.waitingQueueSize, 2, 'a tab may separate name, labels and value');
  assert.equal(m.runningQueueSize, 3, 'a timestamp after the value is ignored');
  assert.equal(m.kvCacheUsage, 0.25, 'a longer name, a missing value or an unclosed label set is skipped');
  assert.equal(m.promptTokensTotal, -1, 'a name without a value is no sample');
});

test('escaped label values are decoded in one pass', () => {
  const text = String.raw`vllm:lora_requests_info{max_lora="2",running_lora_adapters="a\\n,b\"c,d\ne"} 1`;
  const m = metricsFromExposition(text, 1);
  assert.deepEqual([...m.activeAdapters], [String.raw`a\n`, 'b"c', 'd\ne']);
});

test('label blocks: escapes, spacing, a trailing comma and a `}` inside a value; malformed ones drop the sample', () => {
  const [s] = parseSamples(
    'vllm:lora_requests_info{ max_lora = "4", running_lora_adapters="a\\"}b,c\\\\d\\ne" ,} 7\n',
  );
  assert.deepEqual(s?.labels, { max_lora: '4', running_lora_adapters: 'a"}b,c\\d\ne' });
  assert.equal(s?.value, 7);
  for (const line of [
    'vllm:num_requests_waiting{model_name="m" 3',
    'vllm:num_requests_waiting{model_name=m} 3',
    'vllm:num_requests_waiting{model_name="m"x="y"} 3',
    'vllm:num_requests_waiting{9="m"} 3',
    'vllm:num_requests_waiting{model_name="m\\',
  ])
    assert.deepEqual(parseSamples(line), [], line);
});

test('1 MB of hostile label blocks is dropped and the honest lines around it still count', () => {
  // Lines just under the line bound, then one far over it: the first kind must be scanned, the second is skipped.
  const hostile = `vllm:num_requests_waiting{${'x'.repeat(MAX_LINE_BYTES - 40)}} 1000\n`;
  const text =
    'vllm:num_requests_waiting{model_name="a"} 2\n' +
    hostile.repeat(Math.ceil(1_000_000 / hostile.length)) +
    `vllm:num_requests_waiting{model_name="${'y'.repeat(1_000_000)}"} 1000\n` +
    'vllm:num_requests_running{model_name="a"} 3\n';
  assert.ok(text.length > 2_000_000);
  const m = metricsFromExposition(text, 1);
  assert.equal(m.waitingQueueSize, 2);
  assert.equal(m.runningQueueSize, 3);
});

test('values a server cannot honestly report are dropped or clamped', () => {
  const lying = metricsFromExposition(
    'vllm:num_requests_waiting{model_name="a"} 1e309\n' +
      'vllm:num_requests_waiting{model_name="b"} Infinity\n' +
      'vllm:num_requests_waiting{model_name="c"} 4\n' +
      'vllm:num_requests_running{model_name="a"} -1000000\n' +
      'vllm:num_requests_running{model_name="b"} NaN\n' +
      'vllm:kv_cache_usage_perc{model_name="a"} Infinity\n' +
      'vllm:kv_cache_usage_perc{model_name="b"} -3\n' +
      'vllm:prompt_tokens_total{model_name="a"} -5\n' +
      'vllm:cache_config_info{block_size="16",num_gpu_blocks="1e300"} 1\n',
    1,
  );
  assert.equal(lying.waitingQueueSize, 4, 'non-finite counts are dropped');
  assert.equal(lying.runningQueueSize, 0, 'negative counts are dropped');
  assert.equal(lying.kvCacheUsage, 0, 'non-finite and negative usage is dropped');
  assert.equal(lying.promptTokensTotal, -1, 'a negative counter is dropped (-1: no counter seen)');
  assert.equal(lying.blockSize, 16);
  assert.equal(lying.numGpuBlocks, 0, 'a block count must be a safe integer');
  assert.equal(metricsFromExposition('vllm:kv_cache_usage_perc 1.0000001\n', 1).kvCacheUsage, 1);
  const huge = metricsFromExposition(
    'vllm:num_requests_waiting{model_name="a"} 1e308\nvllm:num_requests_waiting{model_name="b"} 1e308\n',
    1,
  );
  assert.ok(Number.isFinite(huge.waitingQueueSize), 'finite samples never sum to Infinity');
});
