/**
 * @module cli/bench
 * `llmisvc bench`: sends a seeded workload to one or more OpenAI-compatible URLs at a QPS or a QPS sweep and
 * prints a Markdown report (and, with `--out`, writes it with JSON results and SVG charts).
 *
 * Setups are {@link BenchTarget}s: running URLs (`--url name=http://...`, repeatable), or with `--compare` one
 * simulated fleet per routing configuration, started through `llmisvc up`'s orchestration (`fleetTarget`) and
 * passed to the same `runComparison`.
 */
import type { Command } from 'commander';
import { LlmisvcError } from '../errors/index.js';
import {
  createWorkload,
  discoverModels,
  machineDescription,
  markdownReport,
  progressDisplay,
  runComparison,
  urlTarget,
  workloadNames,
  writeReport,
  type BenchTarget,
  type ProgressDisplay,
} from '../bench/index.js';
import { fleetModel, fleetTarget, parseRoutingSetups } from '../local/index.js';

/** Parses `30s`, `2m`, `500ms`, `1h` or a plain number of seconds into milliseconds. */
export function parseDuration(text: string, flag = 'duration'): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match)
    throw new LlmisvcError('LLMISVC_ERR_CONFIG', `--${flag} '${text}' is not a duration`, {
      hint: 'write it like 30s, 2m, 500ms or 90 (seconds)',
    });
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Number(match[1]) * unit;
}

/** Parses `5,10,20` into QPS values. */
export function parseQpsList(text: string, flag: string): number[] {
  const values = text.split(',').map((v) => Number(v.trim()));
  if (values.length === 0 || values.some((v) => !(v > 0)))
    throw new LlmisvcError(
      'LLMISVC_ERR_CONFIG',
      `--${flag} '${text}' must be positive numbers separated by commas`,
    );
  return values;
}

/** Parses `--url` values: `http://...` or `name=http://...`. */
export function parseTargets(urls: readonly string[]): BenchTarget[] {
  return urls.map((value, i) => {
    const named = /^([A-Za-z0-9_.-]+)=(.+)$/.exec(value);
    const url = named ? (named[2] as string) : value;
    try {
      new URL(url);
    } catch {
      throw new LlmisvcError('LLMISVC_ERR_CONFIG', `--url '${value}' is not a URL`, {
        hint: 'write it like http://127.0.0.1:8080 or rr=http://127.0.0.1:8080',
      });
    }
    return urlTarget(
      named ? (named[1] as string) : urls.length > 1 ? `target-${i + 1}` : new URL(url).host,
      url,
    );
  });
}

function parseParams(entries: readonly string[]): Record<string, string> {
  const params: Record<string, string> = {};
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    if (eq < 1) throw new LlmisvcError('LLMISVC_ERR_CONFIG', `--param '${entry}' must be key=value`);
    params[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return params;
}

interface BenchFlags {
  url?: string[];
  compare?: string;
  file?: string;
  replicas?: string;
  timeScale?: string;
  workload: string;
  qps: string;
  sweep?: string;
  duration: string;
  model?: string;
  param: string[];
  seed: string;
  stream: boolean;
  timeout: string;
  out?: string;
  title?: string;
}

export function register(program: Command): void {
  program
    .command('bench')
    .description(
      'load-test OpenAI-compatible endpoints with a seeded open-loop workload and report latency and throughput',
    )
    .option('--url <url...>', 'server or gateway URL; repeat (as name=URL) to compare setups')
    .option(
      '--compare <setups>',
      'start a simulated fleet per routing setup and compare them: round-robin, epp, prefix-heavy, name=config.yaml',
    )
    .option(
      '-f, --file <service.yaml>',
      'with --compare: the service to run (default: examples/quickstart.yaml)',
    )
    .option('--replicas <n>', 'with --compare: simulated endpoints per fleet (default: the service replicas)')
    .option('--time-scale <x>', 'with --compare: simulator wall seconds per modelled second', '1')
    .option('--workload <name>', `one of ${workloadNames.join(', ')}`, 'shared-prefix')
    .option('--qps <n>', 'mean request rate (Poisson arrivals)', '10')
    .option('--sweep <list>', 'run at each of these rates, e.g. 5,10,20 (instead of --qps)')
    .option('--duration <time>', 'how long requests keep arriving at each rate', '30s')
    .option('--model <name>', 'model to request (default: the first base model the server lists)')
    .option('--param <key=value...>', 'workload parameters, e.g. groups=16 systemPromptLen=4000', [])
    .option('--seed <n>', 'seed of arrivals and prompts', '0')
    .option('--no-stream', 'ask for whole responses (TTFT and inter-token latency are then not measured)')
    .option('--timeout <time>', 'abort a request unanswered after this long', '300s')
    .option('--out <dir>', 'write report.md, results.json and SVG charts here')
    .option('--title <text>', 'report title')
    .action(async (flags: BenchFlags) => {
      if (!flags.url && !flags.compare)
        throw new LlmisvcError(
          'LLMISVC_ERR_CONFIG',
          'give --url (running servers) or --compare (simulated fleets)',
          {
            hint: 'For example: llmisvc bench --compare round-robin,epp,prefix-heavy --replicas 8 --sweep 20,40,60',
          },
        );
      if (flags.url && flags.compare)
        throw new LlmisvcError('LLMISVC_ERR_CONFIG', '--url and --compare do not go together', {
          hint: '--compare starts its own fleets; drop --url.',
        });
      const replicas = flags.replicas === undefined ? undefined : Number(flags.replicas);
      if (replicas !== undefined && !(Number.isInteger(replicas) && replicas > 0))
        throw new LlmisvcError(
          'LLMISVC_ERR_CONFIG',
          `--replicas '${flags.replicas}' must be a positive integer`,
        );
      const timeScale = Number(flags.timeScale ?? '1');
      if (!(timeScale > 0))
        throw new LlmisvcError(
          'LLMISVC_ERR_CONFIG',
          `--time-scale '${flags.timeScale}' must be a positive number`,
        );
      const targets: BenchTarget[] = flags.compare
        ? parseRoutingSetups(flags.compare).map((setup) =>
            fleetTarget(setup, { file: flags.file, replicas, simulator: { timeScale } }),
          )
        : parseTargets(flags.url ?? []);
      const qps = parseQpsList(flags.sweep ?? flags.qps, flags.sweep ? 'sweep' : 'qps');
      const durationMs = parseDuration(flags.duration);
      const timeoutMs = parseDuration(flags.timeout, 'timeout');
      const seed = Number(flags.seed);
      if (!Number.isInteger(seed))
        throw new LlmisvcError('LLMISVC_ERR_CONFIG', `--seed '${flags.seed}' must be an integer`);
      const params = parseParams(flags.param);
      // Fleets are not running yet: their model comes from the service file, and they serve no adapters.
      const first = flags.compare ? undefined : ((await targets[0]?.start())?.url as string);
      // With --model given, the listing only finds LoRA adapters; a server without /v1/models still gets benchmarked.
      const served = first
        ? await discoverModels(first).catch((error: unknown) => {
            if (flags.model) return { base: [], adapters: [] };
            throw error;
          })
        : { base: [fleetModel(flags.file)], adapters: [] };
      const model = flags.model ?? served.base[0];
      if (!model)
        throw new LlmisvcError('LLMISVC_ERR_INPUT', `${first} lists no base model`, { hint: 'pass --model' });
      const workload = () =>
        createWorkload(flags.workload, { model, seed, params, adapters: served.adapters });
      const sample = workload();

      const abort = new AbortController();
      const interrupt = (): void => abort.abort();
      process.once('SIGINT', interrupt);
      let display: ProgressDisplay | undefined;
      try {
        const series = await runComparison(targets, {
          qps,
          durationMs,
          timeoutMs,
          seed,
          stream: flags.stream,
          workload,
          signal: abort.signal,
          onRunStart: (target, rate) => {
            display = progressDisplay(process.stderr, `${target} @ ${rate} qps`);
          },
          onProgress: (_target, _rate, progress) => display?.update(progress),
          onRunEnd: (target, result) => {
            display?.done();
            const { ok, sent } = result.counts;
            console.error(
              `${target} @ ${result.qps} qps: ${ok}/${sent} ok, TTFT p90 ${result.ttftMs.p90.toFixed(0)} ms, ` +
                `${result.outputTokensPerSecond.toFixed(0)} output tok/s`,
            );
          },
        });
        const context = {
          title: flags.title ?? `llmisvc bench: ${sample.name}`,
          command: `llmisvc ${process.argv.slice(2).join(' ')}`,
          date: new Date().toISOString(),
          machine: machineDescription(),
          workload: sample.name,
          params: sample.params,
        };
        process.stdout.write(markdownReport(context, series));
        if (flags.out) {
          const written = await writeReport(flags.out, context, series);
          console.error(`wrote ${written.join(', ')}`);
        }
      } finally {
        process.off('SIGINT', interrupt);
      }
    });
}
