/**
 * @module cli
 * The `llmisvc` command line. Each command lives in its own file and only parses flags, calls its module and prints.
 */
import { Command, CommanderError } from 'commander';
import { isLlmisvcError } from '../errors/index.js';

/** Each command module adds itself to the program. */
type Register = (program: Command) => void;

async function commands(): Promise<Register[]> {
  // Imported lazily so that `llmisvc render` does not load gRPC, the Kubernetes client and the rest.
  return Promise.all([
    // one line per command file, in the order `llmisvc --help` lists them
    import('./validate.js').then((m) => m.register),
    import('./render.js').then((m) => m.register),
    import('./generate.js').then((m) => m.register),
    import('./dev.js').then((m) => m.register),
    import('./sim.js').then((m) => m.register),
    import('./bench.js').then((m) => m.register),
    import('./epp.js').then((m) => m.register),
    import('./up.js').then((m) => m.register),
  ]);
}

/** Runs the CLI and resolves to the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = new Command('llmisvc')
    .description('LLMInferenceService: Kubernetes-native LLM serving with cache-aware routing')
    .option('--verbose', 'print stack traces and debug detail')
    .showHelpAfterError()
    .exitOverride();
  for (const register of await commands()) register(program);
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
