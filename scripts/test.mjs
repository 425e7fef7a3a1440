#!/usr/bin/env node
// `npm test`: build, provision what the tests need (cached per machine, with progress), start the shared test
// services, then run every test file with Node's built-in runner. `--unit` runs only the unit tests beside the code.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const unitOnly = process.argv.includes('--unit');
const filters = process.argv.slice(2).filter((a) => !a.startsWith('--'));

function step(message) {
  console.log(`[test] ${message}`);
}

step('building (tsc)');
const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

function testFiles(dir) {
  const found = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...testFiles(path));
    else if (name.endsWith('.test.js')) found.push(path);
  }
  return found;
}

const dirs = unitOnly ? ['dist/src'] : ['dist/src', 'dist/test'];
let files = dirs
  .flatMap((d) => testFiles(join(root, d)))
  .map((f) => relative(root, f))
  .sort();
if (filters.length) files = files.filter((f) => filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('[test] no test files matched');
  process.exit(1);
}

const harness = await import('../dist/test/harness/provision.js');
const env = { ...process.env };
const stops = [];
if (!unitOnly) {
  for (const provisioner of harness.provisioners) {
    step(`provisioning ${provisioner.name}`);
    Object.assign(env, await provisioner.provision({ log: (m) => step(`  ${provisioner.name}: ${m}`), env }));
  }
  for (const service of harness.services) {
    step(`starting ${service.name}`);
    const started = await service.start({ log: (m) => step(`  ${service.name}: ${m}`), env });
    Object.assign(env, started.env);
    stops.push(started.stop);
  }
}

step(`running ${files.length} test files`);
// Besides the usual report, a list of skipped tests: under CI a test that skips because a real part it needs is
// missing must fail the run, not pass it silently (the provisioners above install every part).
const skippedFile = join(mkdtempSync(join(tmpdir(), 'llmisvc-test-')), 'skipped.txt');
const reporters = [
  `--test-reporter=${process.stdout.isTTY ? 'spec' : 'tap'}`,
  '--test-reporter-destination=stdout',
  `--test-reporter=${pathToFileURL(join(root, 'scripts/skipped-tests-reporter.mjs')).href}`,
  `--test-reporter-destination=${skippedFile}`,
];
const child = spawn(
  process.execPath,
  ['--enable-source-maps', '--test', '--test-concurrency=2', ...reporters, ...files],
  { cwd: root, env, stdio: 'inherit' },
);
// A test file whose process never exits (a handle left open) would hang the run until CI's limit: stop it here
// instead, loudly. Far above the suite's normal duration.
const limitMinutes = Number(process.env['LLMISVC_TEST_TIMEOUT_MINUTES'] ?? 30);
const watchdog = setTimeout(() => {
  console.error(`[test] still running after ${limitMinutes} minutes: stopping (a test left a handle open?)`);
  child.kill('SIGTERM');
}, limitMinutes * 60_000);
let code = await new Promise((resolve) => child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
clearTimeout(watchdog);
for (const stop of stops.reverse()) await stop();
const skipped = existsSync(skippedFile) ? readFileSync(skippedFile, 'utf8').trim() : '';
if (skipped) {
  console.log(`[test] skipped:\n${skipped}`);
  if (process.env['CI'] && !unitOnly && filters.length === 0) {
    console.error('[test] under CI every test must run: the skips above mean a real part was missing');
    code = code || 1;
  }
}
process.exit(code);
