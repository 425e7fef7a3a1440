import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  freeLoopbackPort,
  isPidAlive,
  keepTail,
  listenerPortRange,
  listenOnFreePort,
  logTail,
  runCommand,
  startAnnouncing,
  startOnFreePorts,
  startProcess,
  waitFor,
  waitReady,
} from './index.js';
import { PassThrough } from 'node:stream';

const node = process.execPath;

test('startProcess writes the output to its log, stops with SIGTERM and reports the exit', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'llmisvc-process-'));
  try {
    const logPath = join(dir, 'child.log');
    const child = startProcess({
      name: 'child',
      command: node,
      args: ['-e', "console.log('hello'); setInterval(() => {}, 1000)"],
      logPath,
      env: process.env,
    });
    assert.equal(
      await waitReady(child, 10_000, async () => (await logTail(logPath)).includes('hello')),
      true,
    );
    assert.equal(isPidAlive(child.pid), true);
    const exit = await child.stop(5000);
    assert.equal(exit.signal, 'SIGTERM');
    assert.equal(child.hasExited, true);
    assert.equal(isPidAlive(child.pid), false);
    assert.equal(await readFile(logPath, 'utf8'), 'hello\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('waitReady says false when the process exits before it is ready', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'llmisvc-process-'));
  try {
    const child = startProcess({
      name: 'quits',
      command: node,
      args: ['-e', 'process.exit(3)'],
      logPath: join(dir, 'log'),
    });
    assert.equal(await waitReady(child, 10_000, () => Promise.resolve(false), 10), false);
    assert.equal((await child.exited).code, 3);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('startAnnouncing resolves with what the child announces, then passes on what it reports', async () => {
  const reports: string[] = [];
  const child = await startAnnouncing({
    command: node,
    args: [
      '-e',
      "console.log('port 1234'); process.stdin.on('data', (d) => console.log('got ' + d.toString().trim()))",
    ],
    announced: (out) => /port (\d+)/.exec(out)?.[1],
    onStdout: (chunk) => reports.push(chunk.trim()),
  });
  assert.equal(child.value, '1234');
  child.stdin.write('x\n');
  await waitFor(() => reports.includes('got x'), { what: 'the report' });
  await child.stop();
  await assert.rejects(
    startAnnouncing({
      command: node,
      args: ['-e', "console.log('nope'); process.exit(2)"],
      announced: () => undefined,
    }),
    /exited \(code 2\) before it was ready:\nnope/,
  );
});

test('runCommand resolves on exit 0 and rejects with the output tail otherwise', async () => {
  const lines: string[] = [];
  await runCommand(node, ['-e', "console.log('a\\nb')"], { onLine: (l) => lines.push(l) });
  assert.deepEqual(lines, ['a', 'b']);
  await assert.rejects(
    runCommand(node, ['-e', "console.error('broken'); process.exit(4)"]),
    /exited with 4\nbroken/,
  );
});

test('listenOnFreePort keeps the port it got; freeLoopbackPort avoids the ones it is told to', async () => {
  const server = createServer();
  const port = await listenOnFreePort(server);
  assert.ok(port > 0);
  // The port is held: nobody can be handed it in between.
  assert.notEqual(await freeLoopbackPort(port), port);
  const other = await freeLoopbackPort(undefined, [port]);
  assert.notEqual(other, port);
  await new Promise((resolve) => server.close(resolve));
});

test('freeLoopbackPort hands out ports below the ephemeral range, where outgoing connections never land', async () => {
  const [low, high] = listenerPortRange();
  assert.ok(low === 10_000 && high > low, `${low}–${high}`);
  for (let i = 0; i < 20; i++) {
    const port = await freeLoopbackPort();
    assert.ok(port >= low && port < high, `port ${port} outside ${low}–${high}`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'llmisvc-ports-'));
  writeFileSync(join(dir, 'range'), '40000\t60999\n');
  assert.deepEqual(listenerPortRange(join(dir, 'range')), [10_000, 40_000]);
  writeFileSync(join(dir, 'range'), 'garbage');
  assert.deepEqual(listenerPortRange(join(dir, 'range')), [10_000, 32_768]);
  assert.deepEqual(listenerPortRange(join(dir, 'missing')), [10_000, 32_768]);
  rmSync(dir, { recursive: true, force: true });
});

test('waitFor resolves with the first value, times out naming what it waited for, and keepTail keeps the end', async () => {
  let n = 0;
  assert.equal(await waitFor(() => (++n >= 3 ? n : undefined), { intervalMs: 1 }), 3);
  await assert.rejects(
    waitFor(
      () => {
        throw new Error('not yet');
      },
      { timeoutMs: 20, intervalMs: 5, what: 'the moon' },
    ),
    /waiting for the moon \(last error: not yet\)/,
  );
  const stream = new PassThrough();
  const tail = keepTail([stream], 5);
  stream.write('abcdefgh');
  await waitFor(() => tail() === 'defgh', { what: 'the tail' });
});

test('startOnFreePorts starts again on other ports after a lost port race, and not after another failure', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'llmisvc-process-'));
  try {
    const seen: number[][] = [];
    const attempt = (script: string, name: string) => (ports: readonly number[]) => {
      seen.push([...ports]);
      return startProcess({ name, command: node, args: ['-e', script], logPath: join(dir, `${name}.log`) });
    };
    const ready = async (p: Parameters<typeof waitReady>[0]) => {
      if (!(await waitReady(p, 10_000, () => Promise.resolve(p.name.startsWith('serves')), 10)))
        throw new Error(`${p.name} exited`);
    };
    let tries = 0;
    const started = await startOnFreePorts(
      2,
      (ports) =>
        ++tries === 1
          ? attempt(
              "console.error('listen EADDRINUSE: address already in use'); process.exit(1)",
              'loses',
            )(ports)
          : attempt('setInterval(() => {}, 1000)', 'serves')(ports),
      ready,
    );
    assert.equal(started.process.name, 'serves');
    assert.equal(seen.length, 2);
    assert.notDeepEqual(seen[0], seen[1]);
    await started.process.stop();

    await assert.rejects(
      startOnFreePorts(1, attempt("console.error('bad flag'); process.exit(2)", 'broken'), ready),
      /broken exited/,
    );
    assert.equal(seen.length, 3, 'no second try for a failure that is not a port race');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
