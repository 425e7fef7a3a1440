import { test } from 'node:test';
import assert from 'node:assert/strict';
import { metricsFromExposition } from './model-server-metrics.js';

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
