/**
 * @module dev/cluster-config
 * What `llmisvc dev cluster` asks of its parts, as plain data: the fake nodes KWOK plays (some with
 * `nvidia.com/gpu`), KWOK's configuration, and the flags of kube-controller-manager and kube-scheduler. Pure: the
 * edge (dev/cluster) writes the files and starts the processes.
 */
import { stringify } from 'yaml';

/** The annotation that hands a Node to KWOK (its documented convention); nodes without it are left alone. */
export const KWOK_NODE_ANNOTATION = 'kwok.x-k8s.io/node';
export const KWOK_NODE_ANNOTATION_VALUE = 'fake';
/** The extended resource GPU nodes advertise, as the NVIDIA device plugin names it. */
export const GPU_RESOURCE = 'nvidia.com/gpu';

/**
 * Pod IPs come from loopback, one /24 per node (127.B.N.0/24, B = 1 for the first cluster on the machine, see
 * dev/pod-block; KWOK hands them out from `spec.podCIDR`), so a process on this machine can later listen on a
 * pod's own IP: every 127.0.0.0/8 address reaches `lo` on Linux.
 */
export const POD_CIDR_PREFIX = '127.1';

export interface DevNodeSpec {
  name: string;
  cpu: string;
  memory: string;
  pods: number;
  /** `nvidia.com/gpu` capacity; 0 for a CPU node. */
  gpus: number;
  podCIDR: string;
}

export interface DevNodeCounts {
  cpuNodes: number;
  gpuNodes: number;
  gpusPerNode: number;
}

export const DEFAULT_NODE_COUNTS: DevNodeCounts = { cpuNodes: 2, gpuNodes: 2, gpusPerNode: 8 };

/** The nodes of a development cluster: `kwok-cpu-0…` then `kwok-gpu-0…`, each with its own pod CIDR. */
export function devNodes(
  counts: DevNodeCounts = DEFAULT_NODE_COUNTS,
  podPrefix: string = POD_CIDR_PREFIX,
): DevNodeSpec[] {
  const total = counts.cpuNodes + counts.gpuNodes;
  if (total < 1 || total > 250 || counts.cpuNodes < 0 || counts.gpuNodes < 0 || counts.gpusPerNode < 0) {
    throw new RangeError(
      `between 1 and 250 nodes are supported (asked for ${counts.cpuNodes} + ${counts.gpuNodes})`,
    );
  }
  const nodes: DevNodeSpec[] = [];
  const add = (name: string, gpus: number) =>
    nodes.push({
      name,
      cpu: '32',
      memory: '256Gi',
      pods: 110,
      gpus,
      podCIDR: `${podPrefix}.${nodes.length + 1}.0/24`,
    });
  for (let i = 0; i < counts.cpuNodes; i++) add(`kwok-cpu-${i}`, 0);
  for (let i = 0; i < counts.gpuNodes; i++) add(`kwok-gpu-${i}`, counts.gpusPerNode);
  return nodes;
}

/**
 * The Node object for one fake node. Capacity and allocatable are set here and kept by KWOK's node-initialize
 * Stage, which fills in the Ready condition, addresses and nodeInfo.
 */
export function kwokNodeObject(spec: DevNodeSpec): Record<string, unknown> {
  const resources: Record<string, string> = {
    cpu: spec.cpu,
    memory: spec.memory,
    pods: String(spec.pods),
    ...(spec.gpus > 0 ? { [GPU_RESOURCE]: String(spec.gpus) } : {}),
  };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: spec.name,
      annotations: { [KWOK_NODE_ANNOTATION]: KWOK_NODE_ANNOTATION_VALUE },
      labels: {
        'kubernetes.io/hostname': spec.name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        type: 'kwok',
        ...(spec.gpus > 0 ? { 'nvidia.com/gpu.present': 'true' } : {}),
      },
    },
    spec: { podCIDR: spec.podCIDR, podCIDRs: [spec.podCIDR] },
    status: { capacity: resources, allocatable: resources },
  };
}

/**
 * KWOK's configuration file: its options followed by the Stage documents it plays (KWOK reads every document of
 * every `--config` file). The default CIDR only serves pods on a node without `spec.podCIDR`.
 */
export function kwokConfiguration(input: { stages: readonly string[]; podPrefix?: string }): string {
  const options = stringify({
    apiVersion: 'config.kwok.x-k8s.io/v1alpha1',
    kind: 'KwokConfiguration',
    options: {
      cidr: `${input.podPrefix ?? POD_CIDR_PREFIX}.0.0/24`,
      nodeIP: '127.0.0.1',
      manageNodesWithAnnotationSelector: `${KWOK_NODE_ANNOTATION}=${KWOK_NODE_ANNOTATION_VALUE}`,
      nodeLeaseDurationSeconds: 40,
      // KWOK v0.8.0 defaults these only when it reads no configuration file at all; 0 is refused.
      nodeLeaseParallelism: 4,
      nodePlayStageParallelism: 4,
      podPlayStageParallelism: 4,
      podsOnNodeSyncParallelism: 1,
    },
  });
  return [options, ...input.stages.map((stage) => stage.trim() + '\n')].join('---\n');
}

export interface ComponentFlagsInput {
  /** The component's own kubeconfig (its own user). */
  kubeconfig: string;
  port: number;
  /** Where it writes its self-signed serving certificate. */
  certDir: string;
}

/** Flags both controllers share: loopback serving, delegated authentication, no leader election (one replica). */
function commonFlags(input: ComponentFlagsInput): string[] {
  return [
    `--kubeconfig=${input.kubeconfig}`,
    `--authentication-kubeconfig=${input.kubeconfig}`,
    `--authorization-kubeconfig=${input.kubeconfig}`,
    // The API server authenticates by token only, so it publishes no client CA in
    // kube-system/extension-apiserver-authentication; looking for one only fills the log with retries.
    '--authentication-skip-lookup=true',
    '--bind-address=127.0.0.1',
    `--secure-port=${input.port}`,
    `--cert-dir=${input.certDir}`,
    // One replica that starts and stops with the cluster: waiting for a lease only slows a restart down.
    '--leader-elect=false',
    '--profiling=false',
  ];
}

export function kubeControllerManagerFlags(
  input: ComponentFlagsInput & { serviceAccountKey: string; rootCa: string },
): string[] {
  return [
    ...commonFlags(input),
    // Every controller talks to the API server as its own ServiceAccount (kube-system/deployment-controller, …),
    // as in a kubeadm cluster, so RBAC is exercised the same way.
    '--use-service-account-credentials=true',
    `--service-account-private-key-file=${input.serviceAccountKey}`,
    // Published as the kube-root-ca.crt ConfigMap in every namespace.
    `--root-ca-file=${input.rootCa}`,
    '--cluster-name=llmisvc-dev',
    '--controllers=*',
  ];
}

export function kubeSchedulerFlags(input: ComponentFlagsInput): string[] {
  return commonFlags(input);
}

export function kwokFlags(input: { kubeconfig: string; config: string; port: number }): string[] {
  return [
    `--kubeconfig=${input.kubeconfig}`,
    `--config=${input.config}`,
    // Serves /healthz (plain HTTP) for the readiness check.
    `--server-address=127.0.0.1:${input.port}`,
  ];
}
