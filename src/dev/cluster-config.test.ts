import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { singleRequireGoMod } from './cluster-assets.js';
import { toolsGo } from './go.js';
import { versionSkew } from './cluster.js';
import {
  GPU_RESOURCE,
  KWOK_NODE_ANNOTATION,
  devNodes,
  kubeControllerManagerFlags,
  kwokConfiguration,
  kwokNodeObject,
} from './cluster-config.js';

describe('dev cluster configuration', () => {
  it('lays out CPU nodes then GPU nodes, each with its own loopback pod CIDR', () => {
    const nodes = devNodes({ cpuNodes: 1, gpuNodes: 2, gpusPerNode: 4 });
    assert.deepEqual(
      nodes.map((n) => [n.name, n.gpus, n.podCIDR]),
      [
        ['kwok-cpu-0', 0, '127.1.1.0/24'],
        ['kwok-gpu-0', 4, '127.1.2.0/24'],
        ['kwok-gpu-1', 4, '127.1.3.0/24'],
      ],
    );
    assert.deepEqual(
      devNodes({ cpuNodes: 1, gpuNodes: 0, gpusPerNode: 0 }, '127.7').map((n) => n.podCIDR),
      ['127.7.1.0/24'],
      'in the cluster’s own block',
    );
    assert.throws(() => devNodes({ cpuNodes: 0, gpuNodes: 0, gpusPerNode: 8 }), RangeError);
    assert.throws(() => devNodes({ cpuNodes: 200, gpuNodes: 51, gpusPerNode: 8 }), RangeError);
  });

  it('gives GPU nodes nvidia.com/gpu capacity and hands every node to KWOK', () => {
    const [cpu, gpu] = devNodes({ cpuNodes: 1, gpuNodes: 1, gpusPerNode: 8 }).map(kwokNodeObject) as {
      metadata: { annotations: Record<string, string>; labels: Record<string, string> };
      spec: { podCIDR: string };
      status: { capacity: Record<string, string>; allocatable: Record<string, string> };
    }[];
    assert.equal(cpu!.metadata.annotations[KWOK_NODE_ANNOTATION], 'fake');
    assert.equal(cpu!.status.capacity[GPU_RESOURCE], undefined);
    assert.equal(gpu!.status.capacity[GPU_RESOURCE], '8');
    assert.equal(gpu!.status.allocatable[GPU_RESOURCE], '8');
    assert.equal(gpu!.metadata.labels['nvidia.com/gpu.present'], 'true');
    assert.equal(gpu!.spec.podCIDR, '127.1.2.0/24');
  });

  it("writes KWOK's options first and then every Stage as its own document", () => {
    const stage = 'apiVersion: kwok.x-k8s.io/v1alpha1\nkind: Stage\nmetadata:\n  name: pod-ready\n';
    const docs = parseAllDocuments(kwokConfiguration({ stages: [stage, stage] })).map(
      (d) => d.toJS() as { kind: string; options?: Record<string, unknown> },
    );
    assert.deepEqual(
      docs.map((d) => d.kind),
      ['KwokConfiguration', 'Stage', 'Stage'],
    );
    assert.equal(docs[0]!.options!['manageNodesWithAnnotationSelector'], `${KWOK_NODE_ANNOTATION}=fake`);
  });

  it('runs every controller of kube-controller-manager under its own ServiceAccount', () => {
    const flags = kubeControllerManagerFlags({
      kubeconfig: '/c/kcm.kubeconfig',
      port: 1234,
      certDir: '/c/pki/kcm',
      serviceAccountKey: '/c/pki/sa.key',
      rootCa: '/c/pki/ca.crt',
    });
    assert.ok(flags.includes('--use-service-account-credentials=true'));
    assert.ok(flags.includes('--service-account-private-key-file=/c/pki/sa.key'));
    assert.ok(flags.includes('--bind-address=127.0.0.1'));
  });

  it('builds KWOK from a module that requires exactly the release', () => {
    const goMod = singleRequireGoMod('sigs.k8s.io/kwok', 'v0.8.0', '1.26.0');
    assert.match(goMod, /^module llmisvc\.local\/kwok$/m);
    assert.match(goMod, /^require sigs\.k8s\.io\/kwok v0\.8\.0$/m);
    assert.match(goMod, /^go 1\.26\.0$/m);
    assert.match(
      toolsGo([{ binary: 'kwok', pkg: 'sigs.k8s.io/kwok/cmd/kwok' }]),
      /_ "sigs\.k8s\.io\/kwok\/cmd\/kwok"/,
    );
  });

  it('warns when the API server and the controllers are of different minor releases', () => {
    assert.equal(versionSkew('v1.34.4', 'v1.34.1'), undefined);
    assert.match(versionSkew('v1.31.0', 'v1.34.4') ?? '', /pass --kubernetes-version v1\.31\.0/);
  });
});
