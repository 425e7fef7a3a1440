import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { summarizeRun, type RequestRecord } from './load.js';
import { formatMs, markdownReport, reportCharts } from './report.js';
import { progressLine } from './progress.js';

function record(index: number, fields: Partial<RequestRecord>): RequestRecord {
  return {
    index,
    sentAt: index * 100,
    outcome: 'ok',
    status: 200,
    group: 'g',
    pod: 'pod-a',
    ttftMs: 50,
    interTokenMs: [10, 10],
    e2eMs: 70,
    outputTokens: 3,
    error: undefined,
    ...fields,
  };
}

const run = (qps: number, ttft: number) =>
  summarizeRun('shared-prefix', qps, 1000, 2000, [
    record(0, { ttftMs: ttft }),
    record(1, { ttftMs: ttft * 2, pod: 'pod-b' }),
    record(2, { outcome: 'shed', status: 429, ttftMs: undefined, outputTokens: 0 }),
    record(3, { outcome: 'error', status: 500, ttftMs: undefined, outputTokens: 0 }),
  ]);

describe('run summaries and reports', () => {
  it('counts outcomes and derives throughput from successful requests only', () => {
    const result = run(5, 40);
    assert.deepEqual(result.counts, { sent: 4, ok: 2, errors: 1, shed: 1, timeouts: 0 });
    assert.equal(result.outputTokens, 6);
    assert.equal(result.outputTokensPerSecond, 3);
    assert.equal(result.ttftMs.p50, 60);
    assert.equal(result.interTokenMs.count, 4);
    assert.deepEqual(result.pods, { 'pod-a': 1, 'pod-b': 1 });
  });

  it('writes one table row per setup and QPS, and compares setups against the first', () => {
    const markdown = markdownReport(
      {
        title: 'T',
        date: '2026-01-01',
        machine: 'test box',
        workload: 'shared-prefix',
        params: { groups: 4 },
        command: 'llmisvc bench',
      },
      [
        { name: 'round-robin', results: [run(5, 400), run(10, 4000)] },
        { name: 'epp', results: [run(5, 40), run(10, 80)] },
      ],
    );
    const rows = markdown
      .split('\n')
      .filter((l) => /^\| (round-robin|epp) \|/.test(l) && l.split('|').length === 14);
    assert.equal(rows.length, 4);
    assert.ok(markdown.includes('- Workload: shared-prefix (groups=4)'));
    assert.ok(markdown.includes('## Compared with round-robin'));
    assert.ok(markdown.includes('| epp | 3 | 1.00 | 152 | 50.0 |'), markdown);
    assert.ok(markdown.includes('- epp at 10 QPS: pod-a 1, pod-b 1'));
  });

  it('produces the TTFT, throughput and ITL charts', () => {
    const charts = reportCharts([{ name: 'a', results: [run(5, 40), run(10, 80)] }]);
    assert.deepEqual(
      charts.map((c) => c.file),
      ['ttft-p90.svg', 'output-throughput.svg', 'itl-p90.svg'],
    );
    for (const chart of charts) assert.match(chart.svg, /<polyline /);
  });

  it('formats latencies', () => {
    assert.deepEqual([NaN, 1.234, 12.34, 123.4, 12_345].map(formatMs), [
      '–',
      '1.23',
      '12.3',
      '123',
      '12.3 s',
    ]);
  });

  it('draws a progress line', () => {
    const line = progressLine(
      'qps 5',
      { elapsedMs: 5000, durationMs: 10_000, sent: 20, planned: 50, done: 15, inFlight: 5, failed: 1 },
      10,
    );
    assert.equal(line, 'qps 5 [#####-----] 5.0/10s  sent 20/50  in flight 5  failed 1');
  });
});
