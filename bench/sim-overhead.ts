/**
 * @module bench/sim-overhead
 * `npm run bench:sim-overhead`: what one simulator process costs in CPU, which decides how many fit on a laptop
 * next to the gateway and the EPP in `llmisvc up`. Starts `llmisvc sim` as a child process, drives it over HTTP with
 * `llmisvc bench`'s load generator (streamed shared-prefix requests), and reads the child's CPU time from
 * /proc (Linux). Also times one `/metrics` rendering in-process, since the EPP scrapes every 50 ms. Writes
 * bench/out/sim-overhead/report.md (raw; curated summary in bench/results/sim-overhead/README.md).
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createWorkload, machineDescription, runLoad } from '../src/bench/index.js';
import { startAnnouncing } from '../src/process/index.js';
import { defaultSimulatorOptions, PerformanceModel } from '../src/sim/index.js';
import { SimulatorMetrics } from '../src/sim/metrics.js';
import { rawOutputDir } from './output.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const out = rawOutputDir('sim-overhead');
const qps = 20;
const durationMs = 30_000;
const params = { groups: '4', systemPromptLen: '1024', questionLen: '64', outputLen: '128' };

async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces): utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
  return (Number(fields[11]) + Number(fields[12])) / ticks;
}

async function scrapeCostMs(): Promise<{ ms: number; bytes: number }> {
  const model = new PerformanceModel(defaultSimulatorOptions);
  const metrics = new SimulatorMetrics(model, {
    model: 'm',
    maxLoras: 1,
    blockSize: 16,
    numGpuBlocks: 4096,
    enablePrefixCaching: true,
    wallSeconds: () => Date.now() / 1000,
  });
  for (let i = 0; i < 200; i++) {
    metrics.firstToken({ promptTokens: 100, queueSeconds: 0.01 * i, ttftSeconds: 0.02 * i });
    metrics.nextToken(0.001 * i);
    metrics.requestFinished({ e2eSeconds: 0.1 * i, finishedReason: 'length' });
  }
  for (let i = 0; i < 500; i++) await metrics.text();
  const rounds = 5000;
  const start = process.cpuUsage();
  for (let i = 0; i < rounds; i++) await metrics.text();
  const used = process.cpuUsage(start);
  return { ms: (used.user + used.system) / 1000 / rounds, bytes: (await metrics.text()).length };
}

async function main(): Promise<void> {
  const child = await startAnnouncing({
    command: process.execPath,
    args: [join(root, 'bin/llmisvc.js'), 'sim', '--port', '0', '--model', 'm'],
    announced: (out) => /at (http:\/\/\S+)/.exec(out)?.[1],
  });
  try {
    const url = child.value;
    const simBefore = await cpuSeconds(child.pid);
    const benchBefore = process.cpuUsage();
    const result = await runLoad({
      url,
      workload: createWorkload('shared-prefix', { model: 'm', seed: 1, params }),
      qps,
      durationMs,
      seed: 1,
    });
    const benchUsed = process.cpuUsage(benchBefore);
    const simCpu = (await cpuSeconds(child.pid)) - simBefore;
    const benchCpu = (benchUsed.user + benchUsed.system) / 1e6;
    const scrape = await scrapeCostMs();
    const { ok } = result.counts;
    const report = [
      '# Simulator CPU overhead',
      '',
      `- Date: ${new Date().toISOString()}`,
      `- Machine: ${machineDescription()}`,
      '- Command: `npm run bench:sim-overhead`',
      `- Load: shared-prefix (${Object.entries(params)
        .map(([k, v]) => `${k}=${v}`)
        .join(
          ', ',
        )}), ${qps} QPS for ${durationMs / 1000} s, streamed, one \`llmisvc sim\` child at time scale 1`,
      '',
      '| Measure | Value |',
      '|---|---:|',
      `| Requests (ok / sent) | ${ok} / ${result.counts.sent} |`,
      `| Output tokens streamed | ${result.outputTokens} |`,
      `| Simulator CPU | ${simCpu.toFixed(2)} s (${((simCpu / (result.elapsedMs / 1000)) * 100).toFixed(1)}% of one core) |`,
      `| Simulator CPU per request | ${((simCpu * 1000) / ok).toFixed(2)} ms |`,
      `| Simulator CPU per streamed token | ${((simCpu * 1e6) / result.outputTokens).toFixed(1)} µs |`,
      `| Load generator CPU per request | ${((benchCpu * 1000) / ok).toFixed(2)} ms |`,
      `| One /metrics rendering (prom-client, in-process) | ${scrape.ms.toFixed(3)} ms CPU, ${scrape.bytes} bytes |`,
      `| TTFT p50 / p90 (client, wall) | ${result.ttftMs.p50.toFixed(1)} / ${result.ttftMs.p90.toFixed(1)} ms |`,
      `| Inter-token p50 / p90 (client, wall) | ${result.interTokenMs.p50.toFixed(1)} / ${result.interTokenMs.p90.toFixed(1)} ms |`,
      '',
      'A scrape every 50 ms by the EPP costs one rendering (plus HTTP handling) 20 times a second per simulator.',
      '',
    ].join('\n');
    await mkdir(out, { recursive: true });
    await writeFile(join(out, 'report.md'), report);
    process.stdout.write(report);
  } finally {
    await child.stop();
  }
}

await main();
