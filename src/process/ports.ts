/**
 * @module process/ports
 * Ports for servers and child programs. A server of ours binds port 0 and reads the port the kernel gave it
 * (`listenOnFreePort`): no race. A child program that must be told its port up front (etcd, kube-apiserver, the
 * Kubernetes controllers: none can report a port it chose itself) gets one from `freeLoopbackPort`, which was free a
 * moment ago; between that check and the child's bind another process may take it, so a caller of
 * `freeLoopbackPort` must start the child again on new ports when it exits with "address already in use"
 * (`lostPortRace` in start.ts).
 */
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
  for (;;) {
    const port = await bindAndRelease(0);
    if (!avoid.includes(port)) return port;
  }
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
