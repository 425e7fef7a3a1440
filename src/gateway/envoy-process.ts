/**
 * @module gateway/envoy-process
 * Runs one Envoy with a generated bootstrap on a port it picks itself (listener port 0, read back from its admin
 * API: no port race), for the integration tests and the EPP benchmark. The local stack runs its Envoy under its
 * supervisor instead, on a fixed port, since a restart must keep the address.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { logTail, startProcess, waitFor, type ManagedProcess } from '../process/index.js';
import { envoyBootstrap, type EnvoyBootstrapOptions } from './envoy-bootstrap.js';

export interface RunningEnvoy {
  /** Port of the gateway listener. */
  port: number;
  /** Process id (benchmarks read its CPU time). */
  pid: number;
  adminPort: number;
  /** Envoy's counters and gauges by name (admin `/stats`), e.g. `http.gateway.ext_proc.streams_started`. */
  counters(): Promise<Map<string, number>>;
  close(): Promise<void>;
}

/** The `name: value` lines of Envoy's admin `/stats` with a whole-number value (histograms are left out). */
async function readCounters(admin: string): Promise<Map<string, number>> {
  const text = await (await fetch(`http://${admin}/stats`)).text();
  const counters = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([^:]+): (\d+)$/.exec(line);
    if (match) counters.set(match[1]!, Number(match[2]));
  }
  return counters;
}

/** Waits for `check`, failing early (with Envoy's log) when Envoy exits. */
async function whileRunning<T>(
  envoy: ManagedProcess,
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
): Promise<T> {
  try {
    return await waitFor(
      async () => {
        if (envoy.hasExited) throw Object.assign(new Error('exited'), { exited: true });
        return check();
      },
      { what, timeoutMs: 15_000, intervalMs: 50 },
    );
  } catch (error) {
    const how = envoy.hasExited ? `envoy exited before ${what}` : (error as Error).message;
    throw new Error(`${how}:\n${await logTail(envoy.logPath, 40)}`);
  }
}

/**
 * Starts Envoy `envoyBin` with `envoyBootstrap(options)` (listener port 0 unless given) and resolves once its
 * listener is up.
 *
 * @example
 * const envoy = await startEnvoy(bin, { eppHost: '127.0.0.1', eppPort, poolEndpoints: ['127.0.0.1:8000'] });
 * await fetch(`http://127.0.0.1:${envoy.port}/v1/models`);
 * await envoy.close();
 */
export async function startEnvoy(
  envoyBin: string,
  options: Omit<EnvoyBootstrapOptions, 'listenPort'> & { listenPort?: number },
): Promise<RunningEnvoy> {
  // Awaited here, so options the bootstrap refuses reject the promise rather than throw at the call.
  return await startEnvoyWithBootstrap(envoyBin, envoyBootstrap({ listenPort: 0, ...options }));
}

/**
 * Starts Envoy `envoyBin` with a bootstrap as it is (its first listener's port read back from the admin API), on
 * `concurrency` worker threads, and resolves once that listener is up.
 */
export async function startEnvoyWithBootstrap(
  envoyBin: string,
  bootstrap: Record<string, unknown>,
  concurrency = 1,
): Promise<RunningEnvoy> {
  const dir = mkdtempSync(join(tmpdir(), 'llmisvc-envoy-'));
  const configPath = join(dir, 'envoy.json');
  const adminPath = join(dir, 'admin-address');
  writeFileSync(configPath, JSON.stringify(bootstrap));
  const envoy = startProcess({
    name: 'envoy',
    command: envoyBin,
    args: [
      '-c',
      configPath,
      '--admin-address-path',
      adminPath,
      '--base-id',
      String(Math.floor(Math.random() * 1e9)),
      '--disable-hot-restart',
      '--concurrency',
      String(concurrency),
      '-l',
      'warning',
    ],
    logPath: join(dir, 'envoy.log'),
  });
  const close = async () => {
    await envoy.stop(5000);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const admin = await whileRunning(envoy, 'the admin address', () =>
      existsSync(adminPath) ? readFileSync(adminPath, 'utf8').trim() || undefined : undefined,
    );
    const adminPort = Number(admin.slice(admin.lastIndexOf(':') + 1));
    const port = await whileRunning(envoy, 'the listener', async () => {
      const res = await fetch(`http://${admin}/listeners?format=json`);
      const json = (await res.json()) as {
        listener_statuses?: { local_address?: { socket_address?: { port_value?: number } } }[];
      };
      return json.listener_statuses?.[0]?.local_address?.socket_address?.port_value || undefined;
    });
    return { port, adminPort, pid: envoy.pid, counters: () => readCounters(admin), close };
  } catch (error) {
    await close();
    throw error;
  }
}
