import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  cpuSecondsFromStat,
  parsePrefixCacheCounters,
  peersIdleTable,
  peersLoadTable,
  targetChecks,
  tokenPacing,
  tokenPacingTable,
  type IdleRow,
  type PeerRow,
} from './peers-report.js';
import { summarize } from './stats.js';

test('prefix-cache counters are summed over label sets, with or without _total', () => {
  const page = [
    '# HELP vllm:prefix_cache_hits Prefix cache hits, in terms of number of cached tokens.',
    '# TYPE vllm:prefix_cache_hits counter',
    'vllm:prefix_cache_hits_total{model_name="m"} 96',
    'vllm:prefix_cache_hits{model_name="lora-a"} 4',
    'vllm:prefix_cache_queries_total{model_name="m"} 1.5e2',
    'vllm:prefix_cache_queries_created{model_name="m"} 1.7e9',
    'vllm:num_requests_running{model_name="m"} 3',
  ].join('\n');
  assert.deepEqual(parsePrefixCacheCounters(page), { hits: 100, queries: 150 });
  assert.deepEqual(parsePrefixCacheCounters('vllm:gpu_cache_usage_perc 0.1\n'), { hits: 0, queries: 0 });
});

test('CPU seconds come from utime and stime, even when the command name holds spaces and parentheses', () => {
  const stat = '4242 (vllm (router) x) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 50 7 3 20 0 9 0 123 0 0';
  assert.equal(cpuSecondsFromStat(stat), 3);
});

test('the load table puts routers side by side per rate and shows what is unknown as a dash', () => {
  const row = (router: string, qps: number): PeerRow => ({
    router,
    qps,
    ok: 10,
    sent: 10,
    ttftMs: summarize([10, 20, 30]),
    interTokenMs: summarize([10]),
    e2eMs: summarize([300]),
    outputTokensPerSecond: 123.4,
    prefixHitRatio: 0.5,
    cpuMsPerRequest: NaN,
    idleCpuMsPerSecond: 4,
    warmCpuMsPerRequest: qps === 32 ? 1.234 : NaN,
  });
  const lines = peersLoadTable([row('a', 32), row('b', 8), row('a', 8)]).split('\n');
  assert.equal(lines.length, 5);
  assert.match(
    lines[2]!,
    /^\| 8 \| b \| 10\/10 \| 20\.0 \/ 28\.0 \/ 29\.8 \|.*\| 123 \| 50\.0 % \| – \| 4\.0 \| – \|$/,
  );
  assert.match(lines[3]!, /^\| 8 \| a /);
  assert.match(lines[4]!, /^\| 32 \| a .*\| 4\.0 \| 1\.23 \|$/);
  const idle = peersIdleTable([
    { router: 'r', samples: 3, directTtftMs: summarize([10, 11, 12]), routedTtftMs: summarize([11, 12, 14]) },
  ]);
  assert.match(idle, /\| r \| 3 \| 12\.0 \/ 14\.0 \| 11\.0 \/ 12\.0 \| 1\.00 \| 1\.98 \|/);
});

test('the targets of issue 16 are judged against round robin and sglang-router, and a missing peer is said', () => {
  const load = (router: string, itl: number, cpu: number): PeerRow => ({
    router,
    qps: 32,
    ok: 1,
    sent: 1,
    ttftMs: summarize([1]),
    interTokenMs: summarize([itl]),
    e2eMs: summarize([1]),
    outputTokensPerSecond: 1,
    prefixHitRatio: 1,
    cpuMsPerRequest: cpu,
    idleCpuMsPerSecond: 0,
    warmCpuMsPerRequest: NaN,
  });
  const idle = (router: string, routed: number): IdleRow => ({
    router,
    samples: 1,
    directTtftMs: summarize([20]),
    routedTtftMs: summarize([routed]),
  });
  const names = { ours: ['epp'], roundRobin: 'rr', sglang: 'sg' };
  const lines = targetChecks(
    [idle('rr', 21), idle('epp', 21.4)],
    [load('sg', 11, 2), load('epp', 12, 2.9), { ...load('epp', 1, 1), qps: 8 }],
    names,
  );
  assert.match(lines[0]!, /p50 1\.40 ms ≤ .* 1\.50 ms: met; added p99 1\.40 ms ≤ 3 ms: met/);
  assert.match(
    lines[1]!,
    /ITL p90 12\.00 ms ≤ sglang-router's 11\.00 ms: NOT met; CPU 2\.90 .* 3\.00 ms: met/,
  );
  // With warm figures on both rows the CPU verdict is on them, and the measured window's figures are given too.
  const warm = targetChecks(
    [],
    [
      { ...load('sg', 11, 0.9), warmCpuMsPerRequest: 0.8 },
      { ...load('epp', 11, 1.5), warmCpuMsPerRequest: 1.1 },
    ],
    names,
  );
  assert.match(
    warm[1]!,
    /warm CPU 1\.10 ms\/request ≤ sglang-router's × 1\.5 = 1\.20 ms: met \(over the measured window from a fresh start: 1\.50 against 1\.35 ms\)/,
  );
  // A warm figure on one side only is not compared with the other's window figure.
  assert.match(
    targetChecks([], [load('sg', 11, 0.9), { ...load('epp', 11, 1.5), warmCpuMsPerRequest: 1.1 }], names)[1]!,
    /; CPU 1\.50 ms\/request ≤ sglang-router's × 1\.5 = 1\.35 ms: NOT met$/,
  );
  assert.match(
    targetChecks([idle('epp', 22)], [load('epp', 1, 1)], names).join('\n'),
    /no rr idle row[^]*no sg row/,
  );
});

test('token pacing counts the gaps of tokens delivered together and summarizes the gaps from the sixth on', () => {
  const held = [0.02, 0.03, 0.01, 0.02, 40, 10, 10, 12];
  const paced = [10, 10, 10, 10, 10, 11, 11];
  const pacing = tokenPacing('r', [held, paced]);
  assert.equal(pacing.burstShare, 4 / 15);
  assert.equal(pacing.laterGapsMs.count, 5);
  assert.equal(pacing.laterGapsMs.p50, 11);
  assert.match(tokenPacingTable([pacing]), /\| r \| 26\.7 % \| 11\.0 \/ /);
  assert.ok(Number.isNaN(tokenPacing('none', []).burstShare));
});
