/**
 * @module epp/model-server-metrics
 * Turns a model server's Prometheus text exposition into `EndpointMetrics`, pure. Understands vLLM's names
 * (`vllm:num_requests_waiting`, `vllm:num_requests_running`, `vllm:kv_cache_usage_perc` and the older
 * `vllm:gpu_cache_usage_perc`, `vllm:lora_requests_info`, `vllm:cache_config_info`, `vllm:prompt_tokens_total`) and
 * SGLang's (`sglang:num_queue_reqs`, `sglang:num_running_reqs`, `sglang:token_usage`, `sglang:prompt_tokens_total`).
 * Series of one name are summed for queue counts and token counters (one series per model) and maxed for usage.
 */
import type { EndpointMetrics } from './types.js';

/** A parsed sample: metric name, labels, value. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const WANTED = new Set([
  'vllm:num_requests_waiting',
  'vllm:num_requests_running',
  'vllm:kv_cache_usage_perc',
  'vllm:gpu_cache_usage_perc',
  'vllm:lora_requests_info',
  'vllm:cache_config_info',
  'vllm:prompt_tokens_total',
  'sglang:prompt_tokens_total',
  'sglang:num_queue_reqs',
  'sglang:num_running_reqs',
  'sglang:token_usage',
]);

/** Parses the samples of the metrics the EPP uses; other lines are skipped without being parsed. */
export function parseSamples(text: string): Sample[] {
  const samples: Sample[] = [];
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    // Most of a vLLM exposition is histograms the EPP ignores: skip them before allocating the line.
    const c = text.charCodeAt(start);
    if (c !== 118 /* v */ && c !== 115 /* s */) {
      start = end + 1;
      continue;
    }
    if (!text.startsWith('vllm:', start) && !text.startsWith('sglang:', start)) {
      start = end + 1;
      continue;
    }
    // The name alone decides, so the histograms' many `vllm:…_bucket` lines are skipped without copying them.
    let i = start;
    for (; i < end; i++) {
      const ch = text.charCodeAt(i);
      if (ch === 123 /* { */ || ch === 32 /* space */ || ch === 9 /* tab */ || ch === 13 /* CR */) break;
    }
    if (i === end || !WANTED.has(text.slice(start, i))) {
      start = end + 1;
      continue;
    }
    const line = text.slice(start, end).trim();
    start = end + 1;
    const brace = line.indexOf('{');
    const space = line.indexOf(' ');
    const nameEnd = brace !== -1 && (space === -1 || brace < space) ? brace : space;
    if (nameEnd <= 0) continue;
    const name = line.slice(0, nameEnd);
    if (!WANTED.has(name)) continue;
    let labels: Record<string, string> = {};
    let rest: string;
    if (nameEnd === brace) {
      const close = line.lastIndexOf('}');
      if (close < brace) continue;
      labels = parseLabels(line.slice(brace + 1, close));
      rest = line.slice(close + 1).trim();
    } else rest = line.slice(nameEnd + 1).trim();
    const value = Number(rest.split(/\s+/)[0]);
    if (Number.isNaN(value)) continue;
    samples.push({ name, labels, value });
  }
  return samples;
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    labels[m[1]!] = m[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
  }
  return labels;
}

function adapters(list: string | undefined): Set<string> {
  return new Set(
    (list ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
  );
}

/** Endpoint metrics from a scrape at `now`. */
export function metricsFromExposition(text: string, now: number): EndpointMetrics {
  let waiting = 0;
  let running = 0;
  let kv = 0;
  let lora: Sample | undefined;
  let blockSize = 0;
  let numGpuBlocks = 0;
  let promptTokensTotal = -1;
  for (const s of parseSamples(text)) {
    switch (s.name) {
      case 'vllm:num_requests_waiting':
      case 'sglang:num_queue_reqs':
        waiting += s.value;
        break;
      case 'vllm:num_requests_running':
      case 'sglang:num_running_reqs':
        running += s.value;
        break;
      case 'vllm:kv_cache_usage_perc':
      case 'vllm:gpu_cache_usage_perc':
      case 'sglang:token_usage':
        kv = Math.max(kv, s.value);
        break;
      case 'vllm:lora_requests_info':
        // One series per adapter-set change; the value is its timestamp, so the largest is the current one.
        if (!lora || s.value > lora.value) lora = s;
        break;
      case 'vllm:cache_config_info':
        blockSize = Number(s.labels['block_size']) || 0;
        numGpuBlocks = Number(s.labels['num_gpu_blocks']) || 0;
        break;
      case 'vllm:prompt_tokens_total':
      case 'sglang:prompt_tokens_total':
        promptTokensTotal = Math.max(0, promptTokensTotal) + s.value;
        break;
    }
  }
  return {
    waitingQueueSize: waiting,
    runningQueueSize: running,
    kvCacheUsage: kv,
    activeAdapters: adapters(lora?.labels['running_lora_adapters']),
    waitingAdapters: adapters(lora?.labels['waiting_lora_adapters']),
    maxActiveAdapters: Number(lora?.labels['max_lora']) || 0,
    blockSize,
    numGpuBlocks,
    promptTokensTotal,
    updatedAt: now,
  };
}
