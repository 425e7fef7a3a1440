/**
 * Integration: `llmisvc epp` as a child process, the way `llmisvc up` runs it — it listens on the ports it logs,
 * routes over ext_proc, reports flag mistakes with a stable code, and exits cleanly on SIGTERM.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { get as httpGet } from 'node:http';
import { connect as connectTcp } from 'node:net';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { prefillDecodeEndpointPickerConfig } from '../src/epp/index.js';
import { createExtProcClient, pickEndpoint, type ExtProcClient } from '../src/gateway/index.js';
import { startModelServerFixture, type ModelServerFixture } from '../src/bench/index.js';
import { REPO_ROOT } from './harness/repo.js';

const bin = fileURLToPath(new URL('../../bin/llmisvc.js', import.meta.url));
let fixtures: ModelServerFixture[] = [];

before(async () => {
  fixtures = [await startModelServerFixture('p'), await startModelServerFixture('d')];
});

after(async () => {
  for (const f of fixtures) await f.close();
});

/** Waits (up to 5 s) until the log so far matches `pattern`. */
async function waitForLog(log: () => string, pattern: RegExp): Promise<void> {
  for (let i = 0; !pattern.test(log()); i++) {
    if (i > 100) assert.fail(`no log line matched ${String(pattern)}:\n${log()}`);
    await sleep(50);
  }
}

/** The first JSON log line that says the EPP listens, or the output so far when it exits first. */
function listeningLine(
  child: ChildProcess,
): Promise<{ grpcPort: number; healthPort: number; metricsPort: number }> {
  return new Promise((resolve, reject) => {
    let out = '';
    const collect = (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.includes('endpoint picker listening'));
      if (line) resolve(JSON.parse(line));
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => reject(new Error(`exited with ${code}: ${out}`)));
  });
}

/** A pick once the EPP has scraped its endpoints: "listening" comes first, and until then every answer is 503. */
async function pickOnceScraped(client: ExtProcClient, body: Buffer) {
  let pick = await pickEndpoint(client, { path: '/v1/completions', body });
  for (let i = 0; i < 200 && pick.immediateResponse?.status === 503; i++) {
    pick.done();
    await sleep(25);
    pick = await pickEndpoint(client, { path: '/v1/completions', body });
  }
  return pick;
}

test('llmisvc epp serves the ports it logs and stops on SIGTERM', async () => {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      bin,
      'epp',
      '--endpoints',
      `${fixtures[0]!.address},role=prefill,${fixtures[1]!.address},role=decode`,
      '--host',
      '127.0.0.1',
      '--grpc-port',
      '0',
      '--grpc-health-port',
      '0',
      '--metrics-port',
      '0',
      '--refresh-metrics-interval',
      '25ms',
      '--config-text',
      prefillDecodeEndpointPickerConfig,
      '--max-connections-per-address',
      '2',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let logged = '';
  child.stdout!.on('data', (d: Buffer) => (logged += d.toString()));
  try {
    const listening = await listeningLine(child);
    const client = createExtProcClient(`127.0.0.1:${listening.grpcPort}`);
    const prompt = 'A long document to summarise. '.repeat(20);
    const body = Buffer.from(JSON.stringify({ model: 'm', prompt }));
    const pick = await pickOnceScraped(client, body);
    assert.equal(pick.endpoint, fixtures[1]!.address, 'the decode endpoint receives the request');
    assert.equal(
      pick.headers['x-prefiller-host-port'],
      fixtures[0]!.address,
      'and is told where the prefill ran',
    );
    // The client holds one connection; of two more from the same address the second is refused and logged.
    const extra = [0, 1].map(() => connectTcp(listening.grpcPort, '127.0.0.1').on('error', () => undefined));
    await once(extra[1]!, 'close');
    assert.equal(extra[0]!.destroyed, false, 'the first extra connection is held');
    for (const socket of extra) socket.destroy();
    await waitForLog(
      () => logged,
      /refused 1 connection\(s\) from 127\.0\.0\.1: 2 were open from that address/,
    );
    pick.done();
    client.close();
    const metrics = await (await fetch(`http://127.0.0.1:${listening.metricsPort}/metrics`)).text();
    assert.match(metrics, /llmisvc_epp_requests_total\{model="m",outcome="routed"\} 1/);
    // On loopback a page whose name was rebound to 127.0.0.1 reads nothing (fetch cannot set Host: node:http can).
    const rebound = await new Promise<{ status?: number; body: string }>((resolve, reject) =>
      httpGet(
        {
          host: '127.0.0.1',
          port: listening.metricsPort,
          path: '/metrics',
          headers: { host: 'rebound.example' },
        },
        (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode, body }));
        },
      ).on('error', reject),
    );
    assert.equal(rebound.status, 421);
    assert.match(rebound.body, /DNS rebinding/);
    assert.doesNotMatch(rebound.body, /llmisvc_epp/);
  } finally {
    child.kill('SIGTERM');
  }
  const [code] = await once(child, 'exit');
  assert.equal(code, 0);
});

test('llmisvc epp reports flag mistakes with a code and a hint', () => {
  const cases: [string[], RegExp][] = [
    [['epp'], /LLMISVC_ERR_CONFIG: give exactly one of --endpoints/],
    [['epp', '--endpoints', 'nohost'], /LLMISVC_ERR_CONFIG: --endpoints: "nohost" is not host:port/],
    [['epp', '--endpoints', '127.0.0.1:1', '--config-text', 'kind: Nope'], /LLMISVC_ERR_INVALID/],
    [['epp', '--endpoints', '127.0.0.1:1', '--body-limit', 'lots'], /--body-limit lots/],
    [
      ['epp', '--endpoints', '127.0.0.1:1', '--max-connections', '0'],
      /--max-connections 0: expected a whole number/,
    ],
    [
      ['epp', '--endpoints', '127.0.0.1:1', '--max-connections', '10', '--max-connections-per-address', '11'],
      /--max-connections-per-address 11 is above --max-connections 10/,
    ],
  ];
  for (const [args, pattern] of cases) {
    const result = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(result.status, 1, args.join(' '));
    assert.match(result.stderr, pattern, args.join(' '));
  }
});

test('the serving commands set V8 tiering flags this Node knows (Node 20, and Node 22 when provisioned)', () => {
  // bin/llmisvc.js lowers V8's tier-up bar for `up` and `epp`; a flag a V8 does not know is not an error but a line
  // on stderr ("unrecognized flag") at every start, as `--interrupt-budget` was on Node 22.
  const nodes = [process.execPath, ...(process.env['NODE22_BIN'] ? [process.env['NODE22_BIN']] : [])];
  for (const node of nodes) {
    for (const command of ['epp', 'up']) {
      const result = spawnSync(node, [bin, command, '--help'], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(result.status, 0, `${node} ${command} --help: ${result.stderr}`);
      assert.equal(result.stderr, '', `${node} ${command}: nothing on stderr`);
      assert.match(result.stdout, /Usage: llmisvc/);
    }
  }
});

const canConfine = process.getuid?.() === 0 && spawnSync('unshare', ['--version']).status === 0;

/** True when every folder on the way to `path` lets other users through (uid 65534 must reach the program). */
function reachableByOthers(path: string): boolean {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) return false;
    if (dir === dirname(dir)) return true;
  }
}

/**
 * The program as an image would hold it, where uid 65534 can read it: the checkout itself when its folders let others
 * through, else a hard-linked (or copied) tree of what the CLI loads in a world-readable temporary folder (a CI clone
 * may live in a 0700 folder). Returns its bin file and a clean-up.
 */
function programForOthers(): { bin: string; remove: () => void } {
  if (reachableByOthers(bin)) return { bin, remove: () => undefined };
  const dir = mkdtempSync(join(tmpdir(), 'llmisvc-epp-image-'));
  chmodSync(dir, 0o755);
  for (const part of ['package.json', 'bin', 'dist', 'node_modules']) {
    const from = join(REPO_ROOT, part);
    if (spawnSync('cp', ['-al', from, dir]).status !== 0) execFileSync('cp', ['-a', from, dir]);
  }
  return { bin: join(dir, 'bin', 'llmisvc.js'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

test(
  "llmisvc epp starts with TLS under its pod's constraints: read-only root, no openssl, a non-root user",
  { skip: canConfine ? false : 'needs root and unshare(1) to build the confinement' },
  async (t) => {
    // As the rendered EPP Deployment runs it (readOnlyRootFilesystem, runAsNonRoot, no volume, an image without
    // openssl): a private mount namespace with / remounted read-only, uid/gid 65534, PATH and HOME leading nowhere.
    const confine =
      'mount -o remount,bind,ro / && exec setpriv --reuid 65534 --regid 65534 --clear-groups "$@"';
    const program = programForOthers();
    t.after(program.remove);
    const child = spawn(
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        confine,
        'confine',
        '/usr/bin/env',
        '-i',
        'PATH=/nonexistent',
        'HOME=/nonexistent',
        process.execPath,
        program.bin,
        'epp',
        '--endpoints',
        fixtures[1]!.address,
        '--secure-serving',
        'true',
        '--host',
        '127.0.0.1',
        '--grpc-port',
        '0',
        '--grpc-health-port',
        '0',
        '--metrics-port',
        '0',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      const listening = await listeningLine(child);
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      assert.match(status, /^Uid:\s+65534\b/m, 'the EPP runs as the non-root user');
      const client = createExtProcClient(`127.0.0.1:${listening.grpcPort}`, { tls: true });
      const body = Buffer.from(JSON.stringify({ model: 'm', prompt: 'confined' }));
      const pick = await pickOnceScraped(client, body);
      assert.equal(
        pick.endpoint,
        fixtures[1]!.address,
        'it routes over TLS with the certificate it made in memory',
      );
      pick.done();
      client.close();
    } finally {
      child.kill('SIGTERM');
    }
    const [code] = await once(child, 'exit');
    assert.equal(code, 0);
  },
);
