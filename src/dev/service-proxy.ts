/**
 * @module dev/service-proxy
 * A stand-in for kube-proxy in `llmisvc dev cluster`, for the programs of the cluster that run as processes here
 * (the gateway proxies): a Service port gets a local TCP address, and each connection to it goes to one Ready pod
 * of the Service's selector, on the port's target port, round robin — what a ClusterIP does through kube-proxy.
 * The pods are looked up per connection, so pods that come and go are followed without a watch; a Service with no
 * Ready pod closes the connection, as a ClusterIP with no endpoints refuses it.
 *
 * Only Services and pods of the Service's own namespace are read, and only pods' cluster IPs are dialled (KWOK's
 * loopback `podCIDR` addresses), so an address given out here reaches nothing a pod of that namespace could not.
 */
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { isPodReady } from '../epp/index.js';
import { pipeBoth } from './socket-bridge.js';
import {
  CORE_RESOURCES,
  labelSelectorString,
  type KubeClient,
  type KubeObject,
  type ResourceRef,
} from '../kube/index.js';

const SERVICE: ResourceRef = {
  group: '',
  version: 'v1',
  kind: 'Service',
  plural: 'services',
  namespaced: true,
};

type ServiceObject = KubeObject & {
  spec?: {
    selector?: Record<string, string>;
    ports?: { name?: string; port: number; targetPort?: number | string }[];
  };
};

type PodObject = KubeObject & {
  spec?: { containers?: { ports?: { name?: string; containerPort: number }[] }[] };
  status?: { podIP?: string; conditions?: { type: string; status: string }[] };
};

/** Where one connection to `namespace/service:port` goes, or why it goes nowhere. */
export async function pickServiceBackend(
  client: KubeClient,
  namespace: string,
  service: string,
  port: number,
  turn: number,
): Promise<{ host: string; port: number } | { refused: string }> {
  const svc = await client.get<ServiceObject>(SERVICE, namespace, service);
  const servicePort = svc.spec?.ports?.find((p) => p.port === port);
  if (!servicePort) return { refused: `Service ${namespace}/${service} has no port ${port}` };
  const selector = svc.spec?.selector;
  if (!selector || Object.keys(selector).length === 0) {
    return { refused: `Service ${namespace}/${service} has no selector` };
  }
  const labelSelector = labelSelectorString(selector);
  // Ready, not being deleted, with an IP: the pods the EPP counts as a pool's, the endpoints a Service would have.
  const pods = (await client.list<PodObject>(CORE_RESOURCES.pod, namespace, { labelSelector })).items
    .filter(isPodReady)
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  if (pods.length === 0) return { refused: `Service ${namespace}/${service} has no Ready pod` };
  const pod = pods[turn % pods.length]!;
  const target = servicePort.targetPort ?? port;
  const targetPort =
    typeof target === 'number'
      ? target
      : (pod.spec?.containers ?? []).flatMap((c) => c.ports ?? []).find((p) => p.name === target)
          ?.containerPort;
  if (targetPort === undefined) {
    return { refused: `pod ${namespace}/${pod.metadata.name} has no port named ${String(target)}` };
  }
  return { host: pod.status!.podIP!, port: targetPort };
}

const MAX_SERVICE_PORTS = 256;

export class ServiceProxies {
  private readonly servers = new Map<string, Promise<Server>>();
  private readonly sockets = new Set<Socket>();
  private turn = 0;
  private lastRefusal = '';

  constructor(
    private readonly client: KubeClient,
    private readonly log: (message: string) => void,
  ) {}

  /**
   * The local address that stands for `namespace/service:port` (one listener per Service port, made on first use;
   * at most `MAX_SERVICE_PORTS`, since every InferencePool a route sends to names one).
   */
  async address(namespace: string, service: string, port: number): Promise<{ host: string; port: number }> {
    const key = `${namespace}/${service}:${port}`;
    let server = this.servers.get(key);
    if (!server) {
      if (this.servers.size >= MAX_SERVICE_PORTS) {
        throw new Error(`more than ${MAX_SERVICE_PORTS} Service ports proxied; not proxying ${key}`);
      }
      server = this.listen(namespace, service, port);
      this.servers.set(key, server);
    }
    return { host: '127.0.0.1', port: ((await server).address() as AddressInfo).port };
  }

  private async listen(namespace: string, service: string, port: number): Promise<Server> {
    const server = createServer((downstream) => {
      this.track(downstream);
      // Held until the pod is known: data the client sends meanwhile stays in the socket's buffer.
      downstream.pause();
      pickServiceBackend(this.client, namespace, service, port, this.turn++)
        .then((backend) => {
          if ('refused' in backend) {
            this.report(backend.refused);
            downstream.destroy();
            return;
          }
          const upstream = connect(backend);
          this.track(upstream);
          pipeBoth(downstream, upstream);
          downstream.resume();
        })
        .catch((error: unknown) => {
          this.report(`looking up Service ${namespace}/${service}: ${(error as Error).message}`);
          downstream.destroy();
        });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return server;
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
  }

  /** Each distinct refusal once in a row: a gateway retrying a Service with no pods would repeat it every second. */
  private report(message: string): void {
    if (message !== this.lastRefusal) this.log(`service proxy: ${message}`);
    this.lastRefusal = message;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    const servers = await Promise.all(this.servers.values());
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    this.servers.clear();
  }
}
