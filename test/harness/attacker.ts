/**
 * @module test/harness/attacker
 * A TCP listener on loopback standing in for the address a forged routing header points at: it counts the
 * connections it is offered and closes each at once. A request that reaches it is a request that escaped.
 */
import { createServer, type Socket } from 'node:net';

export interface AttackerTarget {
  /** `127.0.0.1:port`, the value a forged header carries. */
  address: string;
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

export async function startAttackerTarget(): Promise<AttackerTarget> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = (server.address() as { port: number }).port;
  return {
    address: `127.0.0.1:${port}`,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
