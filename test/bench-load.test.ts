/**
 * @module test/bench-load
 * The load generator against real simulators on loopback for a few seconds: every planned request is accounted
 * for, tokens and endpoints are seen, sheds are counted, and the report and charts are written — including by the
 * `llmisvc bench` command itself. No timing bounds are asserted.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import {
  createWorkload,
  poissonArrivals,
  runComparison,
  runLoad,
  urlTarget,
  writeReport,
  type BenchTarget,
} from '../src/bench/index.js';
import { startSimulator, type RunningSimulator } from '../src/sim/index.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const small = {
  groups: '3',
  promptsPerGroup: '4',
  systemPromptLen: '200',
  questionLen: '20',
  outputLen: '8',
};

describe('load generator against a simulator', () => {
  let sim: RunningSimulator;
  let dir: string;
  before(async () => {
    sim = await startSimulator({
      port: 0,
      model: 'llama',
      podName: 'pod-a',
      timeScale: 0.05,
      loraModules: ['x', 'y'],
    });
    dir = await mkdtemp(join(tmpdir(), 'llmisvc-bench-'));
  });
  after(async () => {
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('sends every planned request and measures streamed tokens', async () => {
    const planned = poissonArrivals(7, 20, 2000).length;
    const progress: number[] = [];
    const result = await runLoad({
      url: `${sim.url}/v1/completions`,
      workload: createWorkload('shared-prefix', { model: 'llama', seed: 7, params: small }),
      qps: 20,
      durationMs: 2000,
      seed: 7,
      onProgress: (p) => progress.push(p.done),
    });
    assert.equal(result.counts.sent, planned);
    assert.deepEqual(result.counts, { sent: planned, ok: planned, errors: 0, shed: 0, timeouts: 0 });
    assert.equal(result.ttftMs.count, planned);
    assert.equal(result.interTokenMs.count, planned * 7, '8 tokens give 7 gaps');
    assert.equal(result.outputTokens, planned * 8);
    assert.ok(result.outputTokensPerSecond > 0);
    assert.deepEqual(result.pods, { 'pod-a': planned });
    assert.equal(progress.at(-1), planned);

    const written = await writeReport(
      dir,
      {
        title: 'smoke',
        date: new Date().toISOString(),
        machine: 'test',
        workload: 'shared-prefix',
        params: small,
      },
      [{ name: 'sim', results: [result] }],
    );
    const files = (await readdir(dir)).sort();
    assert.deepEqual(files, [
      'itl-p90.svg',
      'output-throughput.svg',
      'report.md',
      'results.json',
      'ttft-p90.svg',
    ]);
    assert.equal(written.length, 5);
    const report = await readFile(join(dir, 'report.md'), 'utf8');
    assert.ok(report.includes(`| sim | 20 | ${planned} | ${planned} | 0 | 0 | 0 |`), report);
    const json = JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as {
      series: { results: unknown[] }[];
    };
    assert.equal(json.series[0]?.results.length, 1);
  });

  it('runs the chat and LoRA workloads', async () => {
    for (const name of ['multi-turn', 'lora-mix'] as const) {
      const result = await runLoad({
        url: sim.url,
        workload: createWorkload(name, {
          model: 'llama',
          seed: 1,
          adapters: ['x', 'y'],
          params: { outputLen: '4' },
        }),
        qps: 10,
        durationMs: 1000,
        seed: 1,
      });
      assert.equal(result.counts.ok, result.counts.sent, name);
      assert.equal(result.outputTokens, result.counts.ok * 4, name);
    }
  });

  it('counts 429 answers as shed and other failures as errors', async () => {
    const failing = await startSimulator({
      port: 0,
      timeScale: 0.05,
      failureRate: 0.5,
      failureKinds: ['rate_limit', 'server_error'],
    });
    try {
      const result = await runLoad({
        url: failing.url,
        workload: createWorkload('long-prompt', {
          model: 'sim-model',
          params: { minPromptLen: '50', maxPromptLen: '60', outputLen: '2' },
        }),
        qps: 40,
        durationMs: 1500,
      });
      const { sent, ok, shed, errors, timeouts } = result.counts;
      assert.equal(ok + shed + errors + timeouts, sent);
      assert.ok(shed > 0 && errors > 0 && ok > 0, JSON.stringify(result.counts));
      assert.equal(result.ttftMs.count, ok);
    } finally {
      await failing.close();
    }
  });

  it('compares setups on identical traffic', async () => {
    const other = await startSimulator({
      port: 0,
      model: 'llama',
      podName: 'pod-b',
      timeScale: 0.05,
      enablePrefixCaching: false,
    });
    try {
      const targets: BenchTarget[] = [urlTarget('cached', sim.url), urlTarget('uncached', other.url)];
      const series = await runComparison(targets, {
        qps: [5, 10],
        durationMs: 800,
        seed: 3,
        workload: () => createWorkload('shared-prefix', { model: 'llama', seed: 3, params: small }),
      });
      assert.deepEqual(
        series.map((s) => s.name),
        ['cached', 'uncached'],
      );
      for (const [i, qps] of [5, 10].entries()) {
        const planned = poissonArrivals(3, qps, 800).length;
        assert.equal(series[0]?.results[i]?.counts.ok, planned);
        assert.equal(series[1]?.results[i]?.counts.ok, planned);
      }
      assert.deepEqual(Object.keys(series[1]?.results[0]?.pods ?? {}), ['pod-b']);
    } finally {
      await other.close();
    }
  });

  it('llmisvc bench compares two URLs and writes the report and charts', async () => {
    const out = join(dir, 'cli');
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        join(root, 'bin/llmisvc.js'),
        'bench',
        '--url',
        `a=${sim.url}/v1/completions`,
        '--url',
        `b=${sim.url}`,
        '--workload',
        'shared-prefix',
        '--sweep',
        '5,10',
        '--duration',
        '1s',
        ...Object.entries(small).flatMap(([k, v]) => ['--param', `${k}=${v}`]),
        '--out',
        out,
      ],
      { cwd: root },
    );
    assert.ok(stdout.startsWith('# llmisvc bench: shared-prefix'), stdout);
    const rows = (name: string): number =>
      stdout.split('\n').filter((l) => l.startsWith(`| ${name} |`) && l.split('|').length === 14).length;
    assert.deepEqual([rows('a'), rows('b')], [2, 2]);
    assert.ok(stdout.includes('## Compared with a'));
    assert.deepEqual((await readdir(out)).sort(), [
      'itl-p90.svg',
      'output-throughput.svg',
      'report.md',
      'results.json',
      'ttft-p90.svg',
    ]);
    assert.match(await readFile(join(out, 'ttft-p90.svg'), 'utf8'), /^<svg /);
  });
});
