import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DashboardState, sampleValue } from './dashboard.js';
import { restartDelayMs } from './supervisor.js';

describe('sampleValue', () => {
  const text = [
    '# HELP vllm:num_requests_waiting Waiting',
    'vllm:num_requests_waiting{model_name="m"} 3',
    'vllm:num_requests_waiting_extra 9',
    'vllm:prefix_cache_hits_total{model_name="m",engine="0"} 40',
    'vllm:prefix_cache_hits_total{model_name="m",engine="1"} 2',
  ].join('\n');
  it('reads one sample, not a longer name with the same start', () =>
    assert.equal(sampleValue(text, 'vllm:num_requests_waiting'), 3));
  it('sums label sets', () => assert.equal(sampleValue(text, 'vllm:prefix_cache_hits_total'), 42));
  it('is undefined when absent', () =>
    assert.equal(sampleValue(text, 'vllm:kv_cache_usage_perc'), undefined));
});

describe('DashboardState', () => {
  it('counts requests per endpoint and keeps the newest decisions first', () => {
    const state = new DashboardState();
    state.setEndpoints([{ pod: 'p0', workload: 'w', role: 'both', address: '127.0.0.1:1' }]);
    const t = 1_700_000_000_000;
    for (let i = 0; i < 50; i++) {
      state.record({
        time: t + i * 100,
        method: 'POST',
        path: `/r${i}`,
        endpoint: '127.0.0.1:1',
        pod: 'p0',
        prefill: undefined,
        status: 200,
        headersMs: 1,
        totalMs: 2,
        via: 'epp',
      });
    }
    const snap = state.snapshot(t + 6000);
    assert.equal(snap.requests, 50);
    assert.equal(snap.endpoints[0]!.requests, 50);
    assert.equal(snap.decisions.length, 40);
    assert.equal(snap.decisions[0]!.path, '/r49');
    // The window is the 5 full seconds before the current one (seconds 1..5 after t): 40 requests fell in it.
    assert.equal(snap.rps, 8);
  });
});

describe('restartDelayMs', () => {
  it('doubles from 250 ms up to 8 s', () =>
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 8].map(restartDelayMs),
      [250, 500, 1000, 2000, 4000, 8000, 8000, 8000],
    ));
});
