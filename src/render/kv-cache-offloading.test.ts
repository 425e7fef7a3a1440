import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PodSpec } from '../api/index.js';
import { kvTransferFlags, withKVCacheTiers } from './kv-cache-offloading.js';

describe('kvTransferFlags', () => {
  it('configures the OffloadingConnector with the CPU spec when there is no secondary tier', () => {
    const [flag, json] = kvTransferFlags({ cpu: '1Gi' });
    assert.equal(flag, '--kv-transfer-config');
    assert.deepEqual(JSON.parse(json!), {
      kv_connector: 'OffloadingConnector',
      kv_role: 'kv_both',
      kv_connector_extra_config: { spec_name: 'CPUOffloadingSpec', cpu_bytes_to_use: 1073741824 },
    });
  });

  it('switches to the tiering spec with one fs tier per secondary, in order', () => {
    const [, json] = kvTransferFlags({
      cpu: 500000000,
      evictionPolicy: 'arc',
      secondary: [
        { fileSystem: { emptyDir: { size: '1Gi' } } },
        { fileSystem: { pvc: { ref: { name: 'c' } } } },
      ],
    });
    assert.deepEqual(JSON.parse(json!).kv_connector_extra_config, {
      spec_name: 'TieringOffloadingSpec',
      cpu_bytes_to_use: 500000000,
      eviction_policy: 'arc',
      secondary_tiers: [
        { type: 'fs', root_dir: '/mnt/kv-cache-0' },
        { type: 'fs', root_dir: '/mnt/kv-cache-1' },
      ],
    });
  });

  it('adds nothing without kvCacheOffloading', () => assert.deepEqual(kvTransferFlags(undefined), []));
});

describe('withKVCacheTiers', () => {
  const pod: PodSpec = {
    containers: [
      { name: 'main', resources: { requests: { 'ephemeral-storage': '1Gi', cpu: '1' } } },
      { name: 'sidecar' },
    ],
    volumes: [{ name: 'home', emptyDir: {} }],
  };

  it('adds a volume per tier, mounts it into main, and requests the emptyDir disk', () => {
    const out = withKVCacheTiers(pod, {
      cpu: '1Gi',
      secondary: [
        { fileSystem: { emptyDir: { size: '2Gi' } } },
        { fileSystem: { pvc: { spec: { storageClassName: 'nvme', accessModes: ['ReadWriteOnce'] } } } },
        { fileSystem: { pvc: { ref: { name: 'shared', path: 'kv/' } } } },
      ],
    });
    assert.deepEqual(out.volumes, [
      { name: 'home', emptyDir: {} },
      { name: 'kv-cache-secondary-0', emptyDir: { sizeLimit: '2Gi' } },
      {
        name: 'kv-cache-secondary-1',
        ephemeral: {
          volumeClaimTemplate: { spec: { storageClassName: 'nvme', accessModes: ['ReadWriteOnce'] } },
        },
      },
      { name: 'kv-cache-secondary-2', persistentVolumeClaim: { claimName: 'shared' } },
    ]);
    const main = out.containers![0]!;
    assert.deepEqual(main.volumeMounts, [
      { name: 'kv-cache-secondary-0', mountPath: '/mnt/kv-cache-0' },
      { name: 'kv-cache-secondary-1', mountPath: '/mnt/kv-cache-1' },
      { name: 'kv-cache-secondary-2', mountPath: '/mnt/kv-cache-2', subPath: 'kv/' },
    ]);
    // 1Gi already requested + the 2Gi tier, in bytes.
    assert.deepEqual(main['resources'], { requests: { 'ephemeral-storage': String(3 * 2 ** 30), cpu: '1' } });
    assert.equal(out.containers![1]!.volumeMounts, undefined);
  });

  it('leaves a pod without tiers alone', () => {
    assert.equal(withKVCacheTiers(pod, { cpu: '1Gi' }), pod);
  });
});
