/**
 * `llmisvc bench --compare` smoke run: two simulated fleets (round robin and the EPP) started through the local
 * stack, the same short seeded workload on both, a report with a row per setup and the charts, and no process left.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CLI } from './harness/repo.js';

describe('llmisvc bench --compare', () => {
  it('runs the same workload over a round-robin and an EPP fleet and writes the comparison', async () => {
    const out = mkdtempSync(join(tmpdir(), 'llmisvc-compare-'));
    try {
      const child = spawn(
        process.execPath,
        [
          CLI,
          'bench',
          '--compare',
          'round-robin,epp',
          '--replicas',
          '2',
          '--qps',
          '4',
          '--duration',
          '2s',
          '--out',
          out,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      assert.equal(code, 0, stderr);
      assert.match(stdout, /^\| round-robin \| 4 \| \d+ \| \d+ \|/m);
      assert.match(stdout, /^\| epp \| 4 \| \d+ \| \d+ \|/m);
      assert.match(stdout, /Requests per endpoint/);
      const report = readFileSync(join(out, 'report.md'), 'utf8');
      assert.match(report, /--compare round-robin,epp/);
      for (const chart of ['ttft-p90.svg', 'output-throughput.svg'])
        assert.ok(existsSync(join(out, chart)), chart);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
