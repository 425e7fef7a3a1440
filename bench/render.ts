/**
 * @module bench/render
 * `npm run bench:render`: what rendering costs — `renderService` on every example (presets, baseRefs, strategic
 * merge, templates, children), and `llmisvc render` as a user runs it (a fresh Node process per call).
 * Writes bench/out/render/render-<date>.md (raw; curated summary in bench/results/render/README.md) with the machine,
 * the date and the command.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type LLMInferenceService, parseDocuments, toTypedObject } from '../src/api/index.js';
import { DEFAULT_API_VERSIONS, DEFAULT_RENDER_OPTIONS, renderService } from '../src/render/index.js';
import { loadAverage, machineDescription } from '../src/bench/index.js';
import { rawOutputDir } from './output.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const examples = readdirSync(join(root, 'examples')).filter((f) => f.endsWith('.yaml'));

function render(service: LLMInferenceService) {
  return renderService({
    service,
    configs: [],
    apiVersions: DEFAULT_API_VERSIONS,
    options: DEFAULT_RENDER_OPTIONS,
  });
}

const rows: string[] = [];
for (const file of examples) {
  const text = readFileSync(join(root, 'examples', file), 'utf8');
  const service = toTypedObject(parseDocuments(text, file)[0]!) as LLMInferenceService;
  for (let i = 0; i < 100; i++) render(service); // warm-up
  const runs = 1000;
  const start = process.cpuUsage();
  const t0 = performance.now();
  let children = 0;
  for (let i = 0; i < runs; i++) children = render(service).children.length;
  const wall = (performance.now() - t0) / runs;
  const cpu = process.cpuUsage(start);
  rows.push(
    `| ${file} | ${children} | ${wall.toFixed(3)} | ${((cpu.user + cpu.system) / 1000 / runs).toFixed(3)} |`,
  );
}

const cliRuns: number[] = [];
for (let i = 0; i < 10; i++) {
  const t0 = performance.now();
  execFileSync(process.execPath, [join(root, 'bin/llmisvc.js'), 'render', '-f', 'examples/dp-ep.yaml'], {
    cwd: root,
  });
  cliRuns.push(performance.now() - t0);
}
cliRuns.sort((a, b) => a - b);

const date = new Date().toISOString();
const report = `# Render benchmark — ${date.slice(0, 10)}

- Command: \`npm run bench:render\`
- Date: ${date}
- Machine: ${machineDescription()}
- Load average after the runs: ${loadAverage()}

## \`renderService\` per service (mean of 1,000 after 100 warm-up renders)

Presets chosen and merged (strategic merge), templates rendered, merged spec validated, every child built.

| example | children | wall ms | CPU ms |
|---|---:|---:|---:|
${rows.join('\n')}

## \`llmisvc render -f examples/dp-ep.yaml\` as a user runs it (new Node process each time, 10 runs)

median ${cliRuns[5]!.toFixed(0)} ms, fastest ${cliRuns[0]!.toFixed(0)} ms, slowest ${cliRuns[9]!.toFixed(0)} ms — Node's start-up and module loading dominate.
`;
const out = join(rawOutputDir('render'), `render-${date.slice(0, 10)}.md`);
writeFileSync(out, report);
console.log(report);
console.log(`wrote ${out}`);
