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

describe('DashboardState over a long uptime', () => {
  const t0 = 1_700_000_000_000;
  const decision = (time: number, endpoint: string) => ({
    time,
    method: 'POST',
    path: '/v1/completions',
    endpoint,
    pod: undefined,
    prefill: undefined,
    status: 200,
    headersMs: 1,
    totalMs: 2,
    via: 'epp' as const,
  });

  it('holds a bounded number of per-second counts after 7 days at 1 request/s with nobody polling', () => {
    const state = new DashboardState();
    const endpoints = ['127.0.0.1:1', '127.0.0.1:2'];
    state.setEndpoints(
      endpoints.map((address, i) => ({ pod: `p${i}`, workload: 'w', role: 'both', address })),
    );
    const seconds = 7 * 24 * 3600;
    for (let s = 0; s < seconds; s++) state.record(decision(t0 + s * 1000 + 500, endpoints[s % 2]!));
    // The total and each endpoint keep at most the window and the current second, whatever the uptime.
    assert.ok(state.countedSeconds() <= 3 * 6, `${state.countedSeconds()} per-second counts held`);
    const now = t0 + seconds * 1000;
    const snap = state.snapshot(now);
    assert.equal(snap.requests, seconds);
    assert.equal(snap.rps, 1);
    assert.deepEqual(
      snap.endpoints.map((e) => [e.requests, e.rps]),
      [
        [seconds / 2, 0.4],
        [seconds / 2, 0.6],
      ],
    );
  });

  it('counts only the last full seconds: a gap leaves no old count in the rate', () => {
    const cases: [string, number[], number, number][] = [
      // [what, request times in seconds after t0, snapshot second, expected rps]
      ['nothing yet', [], 10, 0],
      ['the current second is left out', [10, 10], 10, 0],
      ['the five full seconds before', [5, 6, 7, 8, 9, 9], 10, 1.2],
      ['older than five seconds is out', [4, 4, 4, 9], 10, 0.2],
      ['a slot reused after a gap', [3, 3, 3, 3, 3, 3, 9], 10, 0.2],
      ['all stale after a long pause', [1, 2, 3, 4, 5], 1000, 0],
    ];
    for (const [what, times, at, rps] of cases) {
      const state = new DashboardState();
      for (const s of times) state.record(decision(t0 + s * 1000, 'none'));
      assert.equal(state.snapshot(t0 + at * 1000).rps, rps, what);
    }
  });
});

describe('restartDelayMs', () => {
  it('doubles from 250 ms up to 8 s', () =>
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 8].map(restartDelayMs),
      [250, 500, 1000, 2000, 4000, 8000, 8000, 8000],
    ));
});
