/**
 * @module dev/lb-forwards
 * The load balancer's part for the gateway proxies of `llmisvc dev cluster`: a proxy's Envoy listens on its
 * Gateway's load-balancer address at the pod's port (10080 for a Gateway listener on 80: Envoy Gateway maps
 * privileged ports), and a cloud load balancer would take the Service's port (80) to it. Here a TCP forward on the
 * same address does, so the service URL the controller reports (`http://ADDRESS/…`) answers. Binding a port below
 * 1024 needs root (or CAP_NET_BIND_SERVICE): without it the forward is left out, said once, and the pod's port
 * still answers.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { pipeBoth } from './socket-bridge.js';

export interface Forward {
  address: string;
  port: number;
  targetPort: number;
}

const key = (f: Forward) => `${f.address}:${f.port}->${f.targetPort}`;

export class LoadBalancerForwards {
  private readonly servers = new Map<string, Promise<Server | undefined>>();
  private readonly sockets = new Set<Socket>();

  constructor(private readonly log: (message: string) => void) {}

  /** Makes exactly these forwards listen: new ones start, the others stop. */
  async set(forwards: readonly Forward[]): Promise<void> {
    const wanted = new Map(forwards.map((f) => [key(f), f]));
    for (const [k, server] of this.servers) {
      if (wanted.has(k)) continue;
      this.servers.delete(k);
      const s = await server;
      await new Promise<void>((resolve) => (s ? s.close(() => resolve()) : resolve()));
    }
    for (const [k, f] of wanted) {
      if (!this.servers.has(k)) this.servers.set(k, this.listen(f));
    }
    await Promise.all(this.servers.values());
  }

  private async listen(f: Forward): Promise<Server | undefined> {
    const server = createServer((client) => {
      const upstream = connect({ host: f.address, port: f.targetPort });
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
      }
      pipeBoth(client, upstream);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(f.port, f.address, () => resolve());
      });
      this.log(`load balancer: ${f.address}:${f.port} forwards to the gateway proxy's port ${f.targetPort}`);
      return server;
    } catch (error) {
      this.log(
        `load balancer: cannot listen on ${f.address}:${f.port} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); ` +
          `the gateway answers on ${f.address}:${f.targetPort}`,
      );
      return undefined;
    }
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await this.set([]);
  }
}
