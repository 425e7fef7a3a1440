#!/usr/bin/env node
// The CLI entry point: the compiled CLI lives in dist/ (built by `npm ci` through the prepare script).
import { setFlagsFromString } from 'node:v8';

// V8 optimizes a function once it has run through its interrupt budget a few times (67,584 bytecode bytes by default).
// A router serving one request at a time on a quiet pool runs its request path too rarely to get there, so each
// request paid for interpreted code: in `bench:peers`-style idle probes the EPP's part of the path took ~0.45 ms
// against ~25 µs once optimized. A budget of 2,048 gets the request path optimized within its first requests (idle
// added TTFT p50 of `llmisvc up` 1.40–1.78 → 1.14–1.27 ms, bench/results/peers/README.md). Set before any of our
// code is compiled (hence the dynamic import below); a budget given on the node command line wins. Only for the
// commands that serve requests: the compiling it brings forward costs `up` about 0.2 s of its start (0.75–0.8 →
// 0.93–1.0 s on 2 cores, bench/results/up-startup) and would make a short command such as `render` 70 % slower.
const command = process.argv.slice(2).find((arg) => !arg.startsWith('-'));
if (
  (command === 'up' || command === 'epp') &&
  !process.execArgv.some((arg) => arg.startsWith('--interrupt-budget'))
) {
  setFlagsFromString('--interrupt-budget=2048');
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
