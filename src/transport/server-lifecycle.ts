/**
 * @module transport/server-lifecycle
 * Listening and graceful draining, the same for both gRPC servers (ours on node:net, and node:http2's): only how a
 * connection is told to finish and how the rest are dropped differ, so those are passed in. And the cap on
 * connections both take from anyone who reaches the port.
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

export const DEFAULT_MAX_CONNECTIONS = 4096;
/** Connections refused at the cap are reported at most twice in this time, with how many there were. */
const DROP_REPORT_MS = 10_000;

/** What a server that refused connections at its cap reports (through `onError`). */
export class ConnectionLimitError extends Error {
  constructor(
    readonly dropped: number,
    readonly limit: number,
  ) {
    super(
      `refused ${dropped} connection(s): ${limit} were open (maxConnections); a gateway needs a few per worker ` +
        'thread, so this is a client opening many, or a gateway fleet larger than the limit',
    );
  }
}

/**
 * Caps the connections `server` holds at once (default 4,096): past it Node closes a new one as soon as it is
 * accepted. Each costs about 11 KB idle (more with buffered frames), and anyone who reaches the port can open them.
 * The first refusal is reported at once, those after it together once 10 s have passed.
 */
export function capConnections(
  server: Server,
  maxConnections = DEFAULT_MAX_CONNECTIONS,
  onError?: (error: unknown) => void,
): void {
  server.maxConnections = maxConnections;
  let unreported = 0;
  let reportWindow: NodeJS.Timeout | null = null;
  const report = () => {
    onError?.(new ConnectionLimitError(unreported, maxConnections));
    unreported = 0;
  };
  server.on('drop', () => {
    unreported++;
    if (reportWindow) return;
    report();
    reportWindow = setTimeout(() => {
      reportWindow = null;
      if (unreported > 0) report();
    }, DROP_REPORT_MS).unref();
  });
}
