/**
 * @module bench/output
 * Where a benchmark writes its raw run: `bench/out/<bench>/` (gitignored), or `$BENCH_OUT/<bench>/`. Raw runs stay
 * out of the repository; the curated summary of each benchmark, `bench/results/<bench>/README.md` (machine, date,
 * command, the numbers that matter), is updated by hand from a run worth keeping.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** The raw output folder of benchmark `bench`, created if missing. */
export function rawOutputDir(bench: string): string {
  const dir = join(process.env['BENCH_OUT'] ?? join(root, 'bench', 'out'), bench);
  mkdirSync(dir, { recursive: true });
  return dir;
}
