/**
 * @module cli
 * The `llmisvc` command line. Each command lives in its own file and only parses flags, calls its module and prints.
 */
import { Command, CommanderError } from 'commander';
import { isLlmisvcError } from '../errors/index.js';

/** Each command module adds itself to the program. */
type Register = (program: Command) => void;

/** Every command, by name, in the order `llmisvc --help` lists them; one file each. */
const COMMANDS: Record<string, () => Promise<{ register: Register }>> = {
  validate: () => import('./validate.js'),
  render: () => import('./render.js'),
  generate: () => import('./generate.js'),
  dev: () => import('./dev.js'),
  sim: () => import('./sim.js'),
  bench: () => import('./bench.js'),
  epp: () => import('./epp.js'),
  deps: () => import('./deps.js'),
  doctor: () => import('./doctor.js'),
  controller: () => import('./controller.js'),
  up: () => import('./up.js'),
};

/**
 * Loads only the command that runs (some pull in gRPC or the Kubernetes client, which `llmisvc render` should not
 * pay for); all of them for the top-level help or an unknown command.
 */
async function commands(argv: readonly string[]): Promise<Register[]> {
  const name = argv.slice(2).find((arg) => !arg.startsWith('-'));
  const chosen = name && COMMANDS[name] ? [COMMANDS[name]] : Object.values(COMMANDS);
  return Promise.all(chosen.map(async (load) => (await load()).register));
}

/** Runs the CLI and resolves to the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = new Command('llmisvc')
    .description('LLMInferenceService: Kubernetes-native LLM serving with cache-aware routing')
    .option('--verbose', 'print stack traces and debug detail')
    .showHelpAfterError()
    .exitOverride();
  for (const register of await commands(argv)) register(program);
  try {
    await program.parseAsync([...argv]);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    return reportError(error, Boolean(program.opts()['verbose']));
  }
}

function reportError(error: unknown, verbose: boolean): number {
  if (error instanceof CommanderError) {
    // commander has already printed its message (or the help text).
    return error.exitCode;
  }
  if (isLlmisvcError(error)) {
    console.error(`error ${error.code}: ${error.message}`);
    if (error.hint) console.error(`hint: ${error.hint}`);
    if (verbose && error.stack) console.error(error.stack);
    return 1;
  }
  console.error(verbose && error instanceof Error ? error.stack : `error: ${String(error)}`);
  return 1;
}
