#!/usr/bin/env node
// The CLI entry point: the compiled CLI lives in dist/ (built by `npm ci` through the prepare script).
import { setFlagsFromString } from 'node:v8';

// V8 optimizes a function once it has run enough. A router serving one request at a time on a quiet pool runs its
// request path too rarely to get there, so each request paid for interpreted code: in `bench:peers`-style idle probes
// the EPP's part of the path took ~0.45 ms against ~25 µs once optimized. So the commands that serve requests lower
// the bar, before any of our code is compiled (hence the dynamic import below); a tiering flag given on the node
// command line wins. V8 11 (Node 20) counts bytecode bytes run: a budget of 2,048 instead of 67,584 got the request
// path optimized within its first requests (idle added TTFT p50 of `llmisvc up` 1.40–1.78 → 1.14–1.27 ms,
// bench/results/peers/README.md). V8 12 and later (Node 22+) have no such flag (setting it prints "unrecognized
// flag") and count invocations instead: the same factor of 33 lowers Maglev's count from 400 to 12 and TurboFan's
// from 3,000 to 90. Not for short commands: the compiling it brings forward costs `up` about 0.2 s of its start
// (bench/results/up-startup) and would make `render` 70 % slower.
const TIERING_FLAGS =
  Number(process.versions.v8.split('.')[0]) >= 12
    ? ['--invocation-count-for-maglev=12', '--invocation-count-for-turbofan=90']
    : ['--interrupt-budget=2048'];
const command = process.argv.slice(2).find((arg) => !arg.startsWith('-'));
if (
  (command === 'up' || command === 'epp') &&
  !process.execArgv.some(
    (arg) => arg.startsWith('--interrupt-budget') || arg.startsWith('--invocation-count-for'),
  )
) {
  for (const flag of TIERING_FLAGS) setFlagsFromString(flag);
}
const { main } = await import('../dist/src/cli/index.js');

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    console.error(error);
    process.exitCode = 1;
  },
);
