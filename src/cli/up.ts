/**
 * @module cli/up
 * `llmisvc up`: runs a service locally (default: the embedded examples/quickstart.yaml) and prints where to reach it.
 * Progress on a terminal is one updating line; anything else (a log file, CI) gets plain lines.
 */
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { defaultCacheDir } from '../gateway/index.js';
import { LlmisvcError } from '../errors/index.js';
import { startLocalStack, type LocalStack, type StackEvent } from '../local/index.js';

interface UpFlags {
  file?: string;
  port: string;
  gateway: 'builtin' | 'envoy';
  modelServer: 'sim' | 'vllm';
  modelServerCmd?: string;
  eppConfig?: string;
  eppReplicas?: string;
  routing: 'epp' | 'round-robin';
  timeScale?: string;
}

function progressPrinter(tty: boolean): { event: (e: StackEvent) => void; clear: () => void } {
  let total = 0;
  let ready = 0;
  let live = false;
  const line = (text: string) => {
    if (tty) {
      process.stdout.write(`\r\x1b[K${text}`);
      live = true;
    }
  };
  const print = (text: string) => {
    const redraw = live;
    if (live) process.stdout.write('\r\x1b[K');
    live = false;
    console.log(text);
    // Keep the progress line under the message while servers are still starting.
    if (redraw && ready < total) line(`  starting model servers ${ready}/${total}`);
  };
  return {
    event(e) {
      switch (e.type) {
        case 'rendered':
          total = e.endpoints;
          print(
            `llmisvc up: ${e.topology.namespace}/${e.topology.name} (model ${e.topology.model}): ` +
              `${e.endpoints} model server${e.endpoints === 1 ? '' : 's'}` +
              (e.topology.eppConfigText ? ', Endpoint Picker' : ', no scheduler (round robin)'),
          );
          line(`  starting model servers 0/${total}`);
          break;
        case 'installing-envoy':
          print(`  envoy: ${e.message}`);
          break;
        case 'ready':
          if (e.restarts > 0) print(`  ${e.name} is back (pid ${e.pid}, restart ${e.restarts})`);
          // EPP replica processes (`epp-0` …) report as `epp-ready`; model-server pods all end in `-kserve…-N`.
          else if (e.name !== 'envoy' && !/^epp-\d+$/.test(e.name)) {
            ready += 1;
            line(`  starting model servers ${ready}/${total}`);
            if (!tty && ready === total) print(`  model servers ready (${total})`);
          }
          break;
        case 'epp-ready':
          print(`  endpoint picker ready on ${e.address} (${e.ms} ms)`);
          break;
        case 'gateway-ready':
          print(`  ${e.kind} gateway ready on ${e.url} (${e.ms} ms)`);
          break;
        case 'exited':
          print(
            `! ${e.name} (pid ${e.pid}) exited (${e.signal ?? `code ${e.code}`})` +
              (e.logTail ? `; last output:\n    ${e.logTail.split('\n').join('\n    ')}` : ''),
          );
          break;
        case 'restarting':
          print(`  restarting ${e.name} in ${e.inMs} ms (attempt ${e.restarts})`);
          break;
        case 'warning':
          print(`! warning: ${e.message}`);
          break;
        case 'port-taken':
          print(`  ${e.name}: port ${e.port} was taken before it bound it; starting it on another`);
          break;
      }
    },
    clear() {
      if (live) process.stdout.write('\r\x1b[K');
      live = false;
    },
  };
}

/** The summary printed once the stack serves: where to go and what to run. */
export function summary(stack: LocalStack): string {
  const width = Math.max(...stack.endpoints.map((e) => e.pod.length));
  const lines = [
    '',
    `Ready in ${(stack.readyMs / 1000).toFixed(2)} s.`,
    '',
    `  OpenAI API   ${stack.baseUrl}/v1  (model "${stack.model}")`,
    `  Dashboard    ${stack.dashboardUrl}`,
    `  Gateway      ${stack.url} (${stack.gateway})`,
    `  Logs         ${stack.logDir}`,
    '',
    ...(stack.eppReplicas.length
      ? [
          `  EPPs         ${stack.eppReplicas.map((r) => `${r.name} ${r.address}`).join(', ')} (active-active)`,
        ]
      : []),
    `  Endpoints${stack.eppEndpoints ? ' (Endpoint Picker, static mode)' : ' (round robin)'}:`,
    ...stack.endpoints.map((e) => `    ${e.pod.padEnd(width)}  ${e.address.padEnd(15)}  ${e.role}`),
    '',
    'Try:',
    `  curl -s ${stack.baseUrl}/v1/chat/completions -H 'content-type: application/json' \\`,
    `    -d '{"model":"${stack.model}","messages":[{"role":"user","content":"Hello!"}]}'`,
    '',
    'Ctrl-C stops everything.',
  ];
  return lines.join('\n');
}

export function register(program: Command): void {
  program
    .command('up')
    .description(
      'run a service locally: model servers (simulated by default), the Endpoint Picker and a gateway',
    )
    .option('-f, --file <service.yaml>', 'the LLMInferenceService to run (default: examples/quickstart.yaml)')
    .option('--port <port>', 'gateway port on 127.0.0.1', '8080')
    .addOption(new Option('--gateway <kind>', 'gateway').choices(['builtin', 'envoy']).default('builtin'))
    .addOption(
      new Option('--model-server <kind>', 'model servers to run').choices(['sim', 'vllm']).default('sim'),
    )
    .option(
      '--model-server-cmd <command>',
      'command per replica; {port} {model} {pod} {role} {prefill-endpoints} {kv-events-endpoint} are replaced',
    )
    .option('--epp-config <file>', 'EndpointPickerConfig replacing the one the service renders')
    .option(
      '--epp-replicas <n>',
      'active-active Endpoint Picker replicas, each its own process (default: router.scheduler.replicas, or 1)',
    )
    .addOption(
      new Option('--routing <kind>', 'epp, or round-robin (no Endpoint Picker, builtin gateway)')
        .choices(['epp', 'round-robin'])
        .default('epp'),
    )
    .option('--time-scale <x>', 'simulator: wall seconds per modelled second (1 = real time)')
    .action(async (flags: UpFlags) => {
      const port = Number(flags.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        throw new LlmisvcError('LLMISVC_ERR_CONFIG', `--port ${flags.port}: not a port number`, {
          hint: 'Use 1–65535 (0 = any free port).',
        });
      }
      let eppConfigText: string | undefined;
      if (flags.eppConfig) {
        try {
          eppConfigText = readFileSync(flags.eppConfig, 'utf8');
        } catch (error) {
          throw new LlmisvcError(
            'LLMISVC_ERR_INPUT',
            `cannot read ${flags.eppConfig}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
          );
        }
      }
      const eppReplicas = flags.eppReplicas === undefined ? undefined : Number(flags.eppReplicas);
      if (
        eppReplicas !== undefined &&
        (!Number.isInteger(eppReplicas) || eppReplicas < 1 || eppReplicas > 16)
      ) {
        throw new LlmisvcError(
          'LLMISVC_ERR_CONFIG',
          `--epp-replicas ${flags.eppReplicas}: expected a whole number 1–16`,
          { hint: 'Example: --epp-replicas 2' },
        );
      }
      const timeScale = flags.timeScale === undefined ? undefined : Number(flags.timeScale);
      const progress = progressPrinter(Boolean(process.stdout.isTTY));
      let stopping = false;
      const stopped = new Promise<void>((resolve) => {
        const onSignal = () => {
          if (stopping) return;
          stopping = true;
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          resolve();
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
      });
      const starting = startLocalStack({
        file: flags.file,
        port,
        gateway: flags.gateway,
        modelServer: flags.modelServer,
        modelServerCmd: flags.modelServerCmd,
        eppConfigText,
        eppReplicas,
        routing: flags.routing,
        ...(timeScale !== undefined && Number.isFinite(timeScale) ? { simulator: { timeScale } } : {}),
        envoyBin: process.env['ENVOY_BIN'],
        cacheDir: defaultCacheDir(process.env),
        searchPath: process.env['PATH'],
        onEvent: (e) => progress.event(e),
      });
      // A Ctrl-C during start-up waits for the start to settle, then stops what started.
      const stack: LocalStack | undefined = await Promise.race([starting, stopped.then(() => undefined)]);
      if (!stack) {
        progress.clear();
        console.log('stopping…');
        await starting.then((s) => s.stop()).catch(() => undefined);
        return;
      }
      progress.clear();
      console.log(summary(stack));
      await stopped;
      console.log('\nstopping…');
      await stack.stop();
      console.log('stopped.');
    });
}
