/**
 * @module bench/up-startup
 * `npm run bench:up-startup`: how long `llmisvc up` (the embedded quickstart: 4 simulators, the EPP, the builtin
 * gateway) takes from running the command to printing its summary, and the stack's own "Ready in" (from the start
 * of `startLocalStack`). Five runs, each stopped with SIGTERM; writes bench/out/up-startup/report.md (raw; curated
 * summary in bench/results/up-startup/README.md).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAverage, machineDescription } from '../src/bench/index.js';
import { startAnnouncing } from '../src/process/index.js';
import { rawOutputDir } from './output.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'bin/llmisvc.js');
const runs = Number(process.env['RUNS'] ?? 5);
const rows: string[] = [];
const walls: number[] = [];
for (let i = 0; i < runs; i++) {
  const t0 = performance.now();
  const child = await startAnnouncing({
    command: process.execPath,
    args: [cli, 'up', '--port', '0'],
    announced: (out) => (out.includes('Ctrl-C') ? out : undefined),
  });
  const out = child.value;
  const wall = performance.now() - t0;
  walls.push(wall);
  const stack = /Ready in ([\d.]+) s/.exec(out)?.[1] ?? '?';
  rows.push(`| ${i + 1} | ${(wall / 1000).toFixed(2)} | ${stack} |`);
  await child.stop();
}
walls.sort((a, b) => a - b);
const report = [
  '# `llmisvc up` start-up time',
  '',
  `- Machine: ${machineDescription()}`,
  `- Date: ${new Date().toISOString()}`,
  `- Load average at the end (other work on the machine): ${loadAverage()}`,
  '- Command: `npm run bench:up-startup` (runs `node bin/llmisvc.js up --port 0` and waits for the summary)',
  '',
  '| Run | Command to summary (s) | Stack "Ready in" (s) |',
  '| ---: | ---: | ---: |',
  ...rows,
  '',
  `Median command-to-summary: ${(walls[Math.floor(walls.length / 2)]! / 1000).toFixed(2)} s. The difference between`,
  'the columns is Node start-up and loading the CLI; the stack time covers rendering, 4 simulator processes, the EPP',
  'and the gateway.',
  '',
].join('\n');
const out = rawOutputDir('up-startup');
await mkdir(out, { recursive: true });
await writeFile(join(out, 'report.md'), report);
console.log(report);
