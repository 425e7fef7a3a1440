/**
 * @module bench/chaos
 * `npm run chaos`: real faults, measured. Real processes and real signals (SIGKILL), traffic only to 127.0.0.1, every
 * scenario bounded in count and time. Writes `bench/out/chaos/SCENARIO.json` and `.md` (machine, date, command, load
 * average beside every figure) to the gitignored bench/out/; the curated summary is bench/results/chaos/README.md.
 *
 *   npm run chaos -- [--scenario all|apiserver|controller|leader|model-server|epp|epp-replicas|soak] [--services 200]
 *                    [--rate 20] [--seconds 20] [--max-tokens 64] [--minutes 30] [--idle-seconds 30]
 *                    [--converge-seconds 300] [--epp-down-ms 250] [--epp-replicas 3] [--sample-seconds 60] [--out DIR]
 *
 * `all` runs every scenario but the soak (run it on its own: it lasts `--minutes`).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { load, log, machine } from './chaos-common.js';
import { eppScenario, modelServerScenario, soakScenario, type ScenarioResult } from './chaos-serving.js';
import { rawOutputDir } from './output.js';

const SCENARIOS = [
  'apiserver',
  'controller',
  'leader',
  'model-server',
  'epp',
  'epp-replicas',
  'soak',
] as const;
type Scenario = (typeof SCENARIOS)[number];

const { values } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'all' },
    services: { type: 'string', default: '200' },
    rate: { type: 'string' },
    seconds: { type: 'string', default: '20' },
    'max-tokens': { type: 'string', default: '64' },
    minutes: { type: 'string', default: '30' },
    'epp-down-ms': { type: 'string', default: '250' },
    'epp-replicas': { type: 'string', default: '3' },
    'idle-seconds': { type: 'string', default: '30' },
    'converge-seconds': { type: 'string', default: '300' },
    'sample-seconds': { type: 'string', default: '60' },
    out: { type: 'string', default: rawOutputDir('chaos') },
  },
});

const chosen: Scenario[] =
  values.scenario === 'all'
    ? SCENARIOS.filter((s) => s !== 'soak')
    : (values.scenario.split(',') as Scenario[]);
for (const s of chosen)
  if (!SCENARIOS.includes(s))
    throw new Error(`unknown scenario ${s}; choose from all, ${SCENARIOS.join(', ')}`);

async function run(s: Scenario, logDir: string): Promise<ScenarioResult> {
  const seconds = Number(values.seconds);
  const maxTokens = Number(values['max-tokens']);
  const services = Number(values.services);
  const idleSeconds = Number(values['idle-seconds']);
  switch (s) {
    case 'model-server':
      return modelServerScenario({ rate: Number(values.rate ?? 20), seconds, maxTokens });
    case 'epp':
      return eppScenario({
        rate: Number(values.rate ?? 20),
        seconds,
        maxTokens,
        logDir,
        downMs: Number(values['epp-down-ms']),
      });
    case 'epp-replicas': {
      const { eppReplicasScenario } = await import('./chaos-epp-replicas.js');
      return eppReplicasScenario({
        replicas: Number(values['epp-replicas']),
        rate: Number(values.rate ?? 20),
        seconds,
        maxTokens,
      });
    }
    case 'soak':
      return soakScenario({
        minutes: Number(values.minutes),
        rate: Number(values.rate ?? 10),
        maxTokens,
        logDir,
        sampleSeconds: Number(values['sample-seconds']),
      });
    default: {
      const { controlPlaneScenario } = await import('./chaos-control-plane.js');
      return controlPlaneScenario(s, {
        services,
        idleSeconds,
        logDir,
        convergeTimeoutMs: Number(values['converge-seconds']) * 1000,
      });
    }
  }
}

function report(result: ScenarioResult, date: string, logDir: string): string {
  return [
    `# chaos: ${result.scenario}`,
    '',
    `- Machine: ${machine()}`,
    `- Date: ${date}`,
    `- Command: \`${result.command}\``,
    `- Load average (1/5/15 min; the machine is shared): ${result.loadStart} at the start, ${result.loadEnd} at the end`,
    `- Logs (not committed; kept only when a criterion failed): ${logDir}`,
    '',
    ...result.summary.map((l) => `- ${l}`),
    '',
    result.problems.length
      ? `**Criteria not met:**\n\n${result.problems.map((p) => `- ${p}`).join('\n')}`
      : 'All criteria met.',
    '',
    'Figures: see the `.json` beside this file.',
    '',
  ].join('\n');
}

await mkdir(values.out, { recursive: true });
let failed = 0;
// The whole run stops by itself: each scenario is bounded, and this is the backstop.
const deadlineMinutes = chosen.includes('soak') ? Number(values.minutes) + 15 : 30 * chosen.length;
const backstop = setTimeout(() => {
  console.error(`[chaos] still running after ${deadlineMinutes} min: giving up`);
  process.exit(2);
}, deadlineMinutes * 60_000);
backstop.unref();
for (const s of chosen) {
  const logDir = await mkdtemp(join(tmpdir(), `llmisvc-chaos-${s}-`));
  log(s, `start (load ${load()}); logs in ${logDir}`);
  const date = new Date().toISOString();
  try {
    const result = await run(s, logDir);
    const json = { ...result, date, machine: machine() };
    await writeFile(join(values.out, `${s}.json`), JSON.stringify(json, null, 2) + '\n');
    await writeFile(join(values.out, `${s}.md`), report(result, date, logDir));
    for (const line of result.summary) log(s, line);
    if (result.problems.length) {
      failed++;
      for (const p of result.problems) log(s, `PROBLEM: ${p}`);
    } else {
      log(s, 'all criteria met');
      await rm(logDir, { recursive: true, force: true });
    }
  } catch (error) {
    failed++;
    log(s, `FAILED: ${(error as Error).stack ?? String(error)}`);
  }
}
process.exit(failed ? 1 : 0);
