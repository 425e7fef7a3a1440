/**
 * @module deps/lb
 * Getting a Gateway an address on clusters without a cloud load balancer: cloud-provider-kind for kind, MetalLB
 * for bare metal (address pool manifests in the current CRD form and the legacy ConfigMap form), and port-forward
 * as the last resort. Pure: commands and manifests as data; the CLI prints them.
 */
import { LlmisvcError } from '../errors/index.js';
import { DEFAULT_RENDER_OPTIONS } from '../render/index.js';
import { PROVIDER_FACTS, type ProviderName, VERSIONS } from './matrix.js';

export interface LbAdvice {
  commands: string[];
  notes: string[];
}

/** cloud-provider-kind runs on the host (or as a container on the `kind` network) and serves LoadBalancer IPs. */
export function kindLoadBalancer(): LbAdvice {
  return {
    commands: [
      `go install sigs.k8s.io/cloud-provider-kind@${VERSIONS.cloudProviderKind} && sudo install ~/go/bin/cloud-provider-kind /usr/local/bin`,
      'sudo cloud-provider-kind   # keep it running in its own terminal',
      `# or as a container: docker run -d --name cloud-provider-kind --network kind -v /var/run/docker.sock:/var/run/docker.sock registry.k8s.io/cloud-provider-kind/cloud-controller-manager:${VERSIONS.cloudProviderKind}`,
      '# a one-node cluster: let the control-plane node carry load balancers',
      'kubectl label node --all node.kubernetes.io/exclude-from-external-load-balancers-',
    ],
    notes: [
      'cloud-provider-kind watches every kind cluster on the machine and gives each LoadBalancer Service an IP on the kind Docker network, reachable from the host (on macOS/Windows Docker Desktop it maps a port on localhost instead).',
      'It needs the Docker socket (hence sudo), and addresses last as long as it runs.',
      'Check: kubectl get gateway -A  # ADDRESS filled in, then `llmisvc deps verify`.',
    ],
  };
}

function ipToInt(ip: string): number {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new LlmisvcError('LLMISVC_ERR_CONFIG', `"${ip}" is not an IPv4 address`, {
      hint: 'give the address range yourself: --range 172.18.255.200-172.18.255.250',
    });
  }
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/**
 * A range of 51 addresses at the top of the nodes' subnet (where DHCP and Docker hand out nothing by default),
 * never containing a node address.
 * @example deriveRange(['172.18.0.2'], 16) // '172.18.255.200-172.18.255.250'
 */
export function deriveRange(nodeIps: readonly string[], prefixLength: number): string {
  const ipv4 = nodeIps.filter((ip) => /^\d+\.\d+\.\d+\.\d+$/.test(ip));
  if (ipv4.length === 0) {
    throw new LlmisvcError(
      'LLMISVC_ERR_CONFIG',
      'no node has an IPv4 InternalIP to derive an address range from',
      {
        hint: 'give the range yourself: llmisvc deps lb metallb --range A-B (free addresses on the nodes’ network)',
      },
    );
  }
  if (!Number.isInteger(prefixLength) || prefixLength < 8 || prefixLength > 29) {
    throw new LlmisvcError('LLMISVC_ERR_CONFIG', `--prefix ${prefixLength} must be between 8 and 29`, {
      hint: 'use the prefix length of the nodes’ network (docker network inspect kind shows it for kind)',
    });
  }
  const mask = (0xffffffff << (32 - prefixLength)) >>> 0;
  const network = (ipToInt(ipv4[0]!) & mask) >>> 0;
  const broadcast = (network | (~mask >>> 0)) >>> 0;
  const end = broadcast - 5;
  const start = Math.max(network + 1, end - 50);
  const clash = ipv4.find((ip) => {
    const n = ipToInt(ip);
    return n >= start && n <= end;
  });
  if (clash) {
    throw new LlmisvcError(
      'LLMISVC_ERR_CONFIG',
      `node address ${clash} lies in the derived range ${intToIp(start)}-${intToIp(end)}`,
      {
        hint: 'give a range of free addresses yourself: --range A-B',
      },
    );
  }
  return `${intToIp(start)}-${intToIp(end)}`;
}

/** Checks `A-B` (or a CIDR) and returns it unchanged. */
export function parseRange(range: string): string {
  const cidr = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(range);
  if (cidr) {
    ipToInt(cidr[1]!);
    return range;
  }
  const [a, b, ...rest] = range.split('-').map((s) => s.trim());
  if (!a || !b || rest.length || ipToInt(a) > ipToInt(b)) {
    throw new LlmisvcError('LLMISVC_ERR_CONFIG', `--range "${range}" is not FIRST-LAST or a CIDR`, {
      hint: 'for example --range 172.18.255.200-172.18.255.250 or --range 192.168.1.240/28',
    });
  }
  return `${a}-${b}`;
}

export interface MetalLbManifests {
  install: string[];
  /** MetalLB ≥ 0.13: IPAddressPool + L2Advertisement. */
  current: object[];
  /** MetalLB < 0.13: the `config` ConfigMap. */
  legacy: object[];
}

export function metallbManifests(range: string): MetalLbManifests {
  const name = 'llmisvc';
  return {
    install: [
      `kubectl apply --server-side -f https://raw.githubusercontent.com/metallb/metallb/${VERSIONS.metallb}/config/manifests/metallb-native.yaml`,
      'kubectl wait --for=condition=Available deployment/controller -n metallb-system --timeout=5m',
      'kubectl rollout status daemonset/speaker -n metallb-system --timeout=5m',
    ],
    current: [
      {
        apiVersion: 'metallb.io/v1beta1',
        kind: 'IPAddressPool',
        metadata: { name, namespace: 'metallb-system' },
        spec: { addresses: [range] },
      },
      {
        apiVersion: 'metallb.io/v1beta1',
        kind: 'L2Advertisement',
        metadata: { name, namespace: 'metallb-system' },
        spec: { ipAddressPools: [name] },
      },
    ],
    legacy: [
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'config', namespace: 'metallb-system' },
        data: { config: `address-pools:\n- name: ${name}\n  protocol: layer2\n  addresses:\n  - ${range}\n` },
      },
    ],
  };
}

/** The port-forward to a Gateway's Service, and what it cannot do. */
export function portForward(
  provider: ProviderName,
  gateway: { name: string; namespace: string } = DEFAULT_RENDER_OPTIONS.gateway,
  localPort = 8080,
  port = 80,
): LbAdvice {
  const svc = PROVIDER_FACTS[provider].gatewayService(gateway);
  return {
    commands: [
      `kubectl port-forward -n ${svc.namespace} $(kubectl get service -n ${svc.namespace} -l ${svc.selector} -o name | head -n1) ${localPort}:${port}`,
      `curl http://localhost:${localPort}/v1/models   # through the Gateway: the HTTPRoute and the Endpoint Picker still apply`,
    ],
    notes: [
      'Only this machine can reach it, only while the command runs; it ends when the gateway pod restarts.',
      'It goes to one gateway pod (no load balancing across gateway replicas) over the API server, which limits throughput: fine for a smoke test, not for benchmarks.',
      'The Gateway still has no address, so `llmisvc deps verify` keeps reporting the load-balancer problem.',
    ],
  };
}
