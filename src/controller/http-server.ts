/**
 * @module controller/http-server
 * The plain-HTTP side of the controller: `/metrics` (Prometheus), `/healthz` (the process works) and `/readyz`
 * (the caches synced, or this replica is a standby that serves webhooks).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface ProbeServer {
  port: number;
  close(): Promise<void>;
}

export async function startProbeServer(options: {
  registry: Registry;
  ready: () => boolean;
  healthy: () => boolean;
  host?: string;
  port?: number;
}): Promise<ProbeServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      options.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': options.registry.contentType });
          res.end(text);
        },
        (error: Error) => {
          res.writeHead(500);
          res.end(error.message);
        },
      );
      return;
    }
    if (path === '/healthz' || path === '/readyz') {
      const ok = path === '/healthz' ? options.healthy() : options.ready();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(ok ? 'ok\n' : 'not ready\n');
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '0.0.0.0', resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
