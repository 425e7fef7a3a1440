/**
 * @module transport/server-lifecycle
 * Listening and graceful draining, the same for both gRPC servers (ours on node:net, and node:http2's): only how a
 * connection is told to finish and how the rest are dropped differ, so those are passed in. And the connection
 * limits all our servers apply, since anyone who reaches a port can open connections.
 */
import type { Server, Socket } from 'node:net';

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

export const DEFAULT_MAX_CONNECTIONS = 4096;
export const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 256;
/** Connections refused at a cap are reported at most twice in this time, with how many there were. */
const DROP_REPORT_MS = 10_000;

/** What a server that refused connections at a cap reports (through `onError`). */
export class ConnectionLimitError extends Error {
  constructor(
    readonly dropped: number,
    readonly limit: number,
    /** The client address whose own cap was reached; undefined for the server's cap. */
    readonly address?: string,
  ) {
    super(
      address === undefined
        ? `refused ${dropped} connection(s): ${limit} were open (maxConnections)`
        : `refused ${dropped} connection(s) from ${address}: ${limit} were open from that address ` +
            '(maxConnectionsPerAddress); a gateway needs a few per worker thread, so this is a client opening many',
    );
  }
}

export interface ConnectionLimits {
  /** Connections open at once (default 4,096): the memory bound. */
  maxConnections?: number | undefined;
  /**
   * Connections open at once from one client address (default 256), so that no one client can take every slot of
   * `maxConnections` from the gateways: a few idle connections cost it next to nothing.
   */
  maxConnectionsPerAddress?: number | undefined;
}

/**
 * Caps the connections `server` holds (`ConnectionLimits`): past a cap a new connection is closed as soon as it is
 * accepted. Anyone who reaches the port can open connections, and each costs memory (about 11 KB idle on our HTTP/2
 * transport, more with buffered frames or TLS). The first refusal of a kind is reported at once, those after it
 * together once 10 s have passed. Its 'connection' listener runs before the server's own (it is prepended) and
 * destroys a refused socket, which the server's listeners then find destroyed.
 */
export function limitConnections(
  server: Server,
  limits: ConnectionLimits = {},
  onError?: (error: unknown) => void,
): void {
  const maxConnections = limits.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  const perAddress = limits.maxConnectionsPerAddress ?? DEFAULT_MAX_CONNECTIONS_PER_ADDRESS;
  server.maxConnections = maxConnections;
  const reportTotal = droppedReporter((n) => onError?.(new ConnectionLimitError(n, maxConnections)));
  server.on('drop', reportTotal);
  const open = new Map<string, number>();
  const reporters = new Map<string, () => void>();
  server.prependListener('connection', (socket: Socket) => {
    const address = socket.remoteAddress;
    if (address === undefined) return;
    const count = open.get(address) ?? 0;
    if (count >= perAddress) {
      socket.destroy();
      let report = reporters.get(address);
      if (!report) {
        report = droppedReporter(
          (n) => onError?.(new ConnectionLimitError(n, perAddress, address)),
          () => reporters.delete(address),
        );
        reporters.set(address, report);
      }
      report();
      return;
    }
    open.set(address, count + 1);
    socket.once('close', () => {
      const left = open.get(address)! - 1;
      if (left === 0) open.delete(address);
      else open.set(address, left);
    });
  });
}

/**
 * A function to call on each refusal: reports the first at once, then those of the next 10 s together at its end;
 * `idle` runs once a window passes with nothing more to report.
 */
function droppedReporter(report: (dropped: number) => void, idle?: () => void): () => void {
  let unreported = 0;
  let window: NodeJS.Timeout | null = null;
  const close = () => {
    window = null;
    if (unreported === 0) return idle?.();
    report(unreported);
    unreported = 0;
    window = setTimeout(close, DROP_REPORT_MS).unref();
  };
  return () => {
    if (window) {
      unreported++;
      return;
    }
    report(1);
    window = setTimeout(close, DROP_REPORT_MS).unref();
  };
}
