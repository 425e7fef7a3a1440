/**
 * @module transport/server-lifecycle
 * Listening and graceful draining, the same for both gRPC servers (ours on node:net, and node:http2's): only how a
 * connection is told to finish and how the rest are dropped differ, so those are passed in.
 */
import type { Server } from 'node:net';

/** Listens on `host:port` (0 = a free port) and resolves with the port bound. */
export function listenAndReadPort(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}

/**
 * Stops accepting, tells every connection to finish (`goAway`: GOAWAY, open streams complete), and waits up to
 * `timeoutMs` for the last to close (server.close calls back then); after that `dropOpen` ends the rest and says how
 * many streams it dropped.
 */
export async function drainServer(
  server: Server,
  timeoutMs: number,
  goAway: () => void,
  dropOpen: () => number,
): Promise<{ dropped: number }> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  goAway();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), timeoutMs);
  });
  const outcome = await Promise.race([closed, late]);
  clearTimeout(timer);
  if (outcome !== 'late') return { dropped: 0 };
  const dropped = dropOpen();
  await closed;
  return { dropped };
}
