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

const WANTED = [
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
];

/**
 * The wanted names by family prefix and the first byte after it. Under load most of an exposition is histogram lines
 * (`vllm:time_to_first_token_seconds_bucket{…}`: 230 of 270 lines, 18 KB, of llm-d-inference-sim after a few
 * requests), and their first byte past the prefix rules them out without reading the name: the parse of such an
 * exposition went from about 61 µs to 16 µs, and the EPP scrapes each endpoint up to 20 times a second. The
 * exposition is read as bytes: only the wanted lines become strings, so a scrape no longer leaves the whole 18–23 KB
 * behind as a string for the garbage collector (and decoding plus parsing, 13 µs on a 23 KB exposition, is 11 µs).
 */
const FAMILIES = ['vllm:', 'sglang:'].map((prefix) => {
  const byFirstByte = new Map<number, { name: string; bytes: Buffer }[]>();
  for (const name of WANTED.filter((n) => n.startsWith(prefix))) {
    const c = name.charCodeAt(prefix.length);
    byFirstByte.set(c, [...(byFirstByte.get(c) ?? []), { name, bytes: Buffer.from(name, 'latin1') }]);
  }
  return { prefix: Buffer.from(prefix, 'latin1'), byFirstByte };
});

function startsWithAt(data: Buffer, bytes: Buffer, at: number): boolean {
  if (at + bytes.length > data.length) return false;
  for (let i = 0; i < bytes.length; i++) if (data[at + i] !== bytes[i]) return false;
  return true;
}

/** The wanted metric name the line at `start` begins with, if any: a candidate followed by `{`, space or tab. */
function wantedNameAt(data: Buffer, start: number): { name: string; bytes: Buffer } | undefined {
  for (const family of FAMILIES) {
    if (!startsWithAt(data, family.prefix, start)) continue;
    const names = family.byFirstByte.get(data[start + family.prefix.length]!);
    if (names === undefined) return undefined;
    for (const wanted of names) {
      if (!startsWithAt(data, wanted.bytes, start)) continue;
      const after = data[start + wanted.bytes.length];
      if (after === 123 /* { */ || after === 32 /* space */ || after === 9 /* tab */) return wanted;
    }
    return undefined;
  }
  return undefined;
}

/** Parses the samples of the metrics the EPP uses; other lines are skipped without being decoded. */
export function parseSamples(exposition: Buffer | string): Sample[] {
  const data = typeof exposition === 'string' ? Buffer.from(exposition, 'utf8') : exposition;
  const samples: Sample[] = [];
  let start = 0;
  while (start < data.length) {
    let end = data.indexOf(10 /* \n */, start);
    if (end === -1) end = data.length;
    const wanted = wantedNameAt(data, start);
    const lineStart = start;
    start = end + 1;
    if (wanted === undefined) continue;
    const rest = data.toString('utf8', lineStart + wanted.bytes.length, end).trim();
    let labels: Record<string, string> = {};
    let valueText = rest;
    if (rest.startsWith('{')) {
      const close = rest.lastIndexOf('}');
      if (close === -1) continue;
      labels = parseLabels(rest.slice(1, close));
      valueText = rest.slice(close + 1).trim();
    }
    const value = Number(valueText.split(/\s+/)[0]);
    if (valueText === '' || Number.isNaN(value)) continue;
    samples.push({ name: wanted.name, labels, value });
  }
  return samples;
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    const raw = m[2]!;
    labels[m[1]!] = raw.includes('\\')
      ? raw.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
      : raw;
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
export function metricsFromExposition(exposition: Buffer | string, now: number): EndpointMetrics {
  let waiting = 0;
  let running = 0;
  let kv = 0;
  let lora: Sample | undefined;
  let blockSize = 0;
  let numGpuBlocks = 0;
  let promptTokensTotal = -1;
  for (const s of parseSamples(exposition)) {
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
