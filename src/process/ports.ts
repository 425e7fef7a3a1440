/**
 * @module process/ports
 * Ports for servers and child programs. A server of ours binds port 0 and reads the port the kernel gave it
 * (`listenOnFreePort`): no race. A child program that must be told its port up front (etcd, kube-apiserver, the
 * Kubernetes controllers: none can report a port it chose itself) gets one from `freeLoopbackPort`, which was free a
 * moment ago; between that check and the child's bind another process may take it, so a caller of
 * `freeLoopbackPort` must start the child again on new ports when it exits with "address already in use"
 * (`lostPortRace` in start.ts; `llmisvc up`'s supervisor does the same for a `{port}` model-server command, while its
simulators bind port 0 and report the port over IPC). The port comes from below the kernel's ephemeral range, so the outgoing connections
 * of the programs around (a gateway's and an EPP's thousands) never take it in that moment; only another listener can.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';

/**
 * Listens on port 0 of `host` and resolves to the port the kernel chose; the server keeps it, so nothing can take
 * it in between. Works for any `net.Server` (an `http.Server` too).
 */
export function listenOnFreePort(server: Server, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago, for a child program that needs its port number up front:
 * `preferred` when it is free (so a restarted server keeps its address), else one the kernel picks, never one of
 * `avoid`. The caller retries with another port when the child then fails to bind it (see the module comment).
 */
export async function freeLoopbackPort(preferred?: number, avoid: readonly number[] = []): Promise<number> {
  if (preferred && !avoid.includes(preferred)) {
    const port = await bindAndRelease(preferred).catch(() => undefined);
    if (port) return port;
  }
  const [low, high] = listenerPortRange();
  for (let attempt = 0; attempt < 64; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (avoid.includes(port)) continue;
    if (await bindAndRelease(port).catch(() => undefined)) return port;
  }
  for (;;) {
    const port = await bindAndRelease(0);
    if (!avoid.includes(port)) return port;
  }
}

/** `count` distinct ports from freeLoopbackPort, for programs started side by side. */
export async function freeLoopbackPorts(count: number, avoid: readonly number[] = []): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) ports.push(await freeLoopbackPort(undefined, [...avoid, ...ports]));
  return ports;
}

/**
 * Ports to hand out for listeners: from 10000 up to the start of the kernel's ephemeral range
 * (`net.ipv4.ip_local_port_range`, 32768 by default), which outgoing connections draw from.
 */
export function listenerPortRange(rangeFile = '/proc/sys/net/ipv4/ip_local_port_range'): [number, number] {
  let ephemeralLow = 32768;
  try {
    const first = Number(readFileSync(rangeFile, 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(first) && first > 11_000) ephemeralLow = first;
  } catch {
    // not Linux: the IANA default
  }
  return [10_000, ephemeralLow];
}

async function bindAndRelease(port: number): Promise<number> {
  const server = createServer();
  server.unref();
  if (port === 0) {
    const bound = await listenOnFreePort(server);
    await new Promise((resolve) => server.close(resolve));
    return bound;
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  await new Promise((resolve) => server.close(resolve));
  return port;
}
