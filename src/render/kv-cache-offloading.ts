/**
 * @module render/kv-cache-offloading
 * `kvCacheOffloading` as vLLM runs it: the `--kv-transfer-config` of vLLM's OffloadingConnector (a CPU tier, and
 * file-system tiers below it through the TieringOffloadingSpec), and a volume per file-system tier mounted into the
 * `main` container at the directory the connector writes to. Names and paths follow KServe's controller
 * (`kv-cache-secondary-<i>` at `/mnt/kv-cache-<i>`), so pods look the same under either controller.
 */
import { type Container, type KVCacheOffloadingSpec, type PodSpec, quantityValue } from '../api/index.js';

const CPU_SPEC = 'CPUOffloadingSpec';
const TIERING_SPEC = 'TieringOffloadingSpec';

/** Where file-system tier `index` is mounted (vLLM's `root_dir` for it). */
export function kvCacheTierPath(index: number): string {
  return `/mnt/kv-cache-${index}`;
}

function tierVolumeName(index: number): string {
  return `kv-cache-secondary-${index}`;
}

/**
 * The vLLM flags for a workload's KV cache offloading (none without it).
 * @example kvTransferFlags({ cpu: '1Gi' }) // ['--kv-transfer-config', '{"kv_connector":"OffloadingConnector",...}']
 */
export function kvTransferFlags(kv: KVCacheOffloadingSpec | undefined): string[] {
  if (!kv) return [];
  const tiers = (kv.secondary ?? []).map((_, index) => ({ type: 'fs', root_dir: kvCacheTierPath(index) }));
  const extra = {
    spec_name: tiers.length > 0 ? TIERING_SPEC : CPU_SPEC,
    cpu_bytes_to_use: quantityValue(kv.cpu),
    ...(kv.evictionPolicy ? { eviction_policy: kv.evictionPolicy } : {}),
    ...(tiers.length > 0 ? { secondary_tiers: tiers } : {}),
  };
  const config = {
    kv_connector: 'OffloadingConnector',
    kv_role: 'kv_both',
    kv_connector_extra_config: extra,
  };
  return ['--kv-transfer-config', JSON.stringify(config)];
}

function tierVolume(tier: NonNullable<KVCacheOffloadingSpec['secondary']>[number], index: number) {
  const name = tierVolumeName(index);
  const { emptyDir, pvc } = tier.fileSystem;
  if (emptyDir) return { name, emptyDir: { sizeLimit: emptyDir.size } };
  if (pvc?.spec) return { name, ephemeral: { volumeClaimTemplate: { spec: pvc.spec } } };
  return { name, persistentVolumeClaim: { claimName: pvc!.ref!.name } };
}

/** The ephemeral-storage request after adding emptyDir tiers, so pods land on nodes with that much disk. */
function ephemeralStorage(current: unknown, sizes: readonly (string | number)[]): string | number {
  if (current === undefined && sizes.length === 1) return sizes[0]!;
  const bytes = [current ?? 0, ...sizes].reduce<number>(
    (sum, q) => sum + (quantityValue(q as string | number) ?? 0),
    0,
  );
  return String(bytes);
}

function withTierMounts(container: Container, kv: KVCacheOffloadingSpec): Container {
  const tiers = kv.secondary ?? [];
  const mounts = tiers.map((tier, index) => ({
    name: tierVolumeName(index),
    mountPath: kvCacheTierPath(index),
    ...(tier.fileSystem.pvc?.ref?.path ? { subPath: tier.fileSystem.pvc.ref.path } : {}),
  }));
  const sizes = tiers.flatMap((t) => (t.fileSystem.emptyDir ? [t.fileSystem.emptyDir.size] : []));
  const resources = (container['resources'] ?? {}) as { requests?: Record<string, unknown> };
  return {
    ...container,
    volumeMounts: [...(container.volumeMounts ?? []), ...mounts],
    ...(sizes.length > 0
      ? {
          resources: {
            ...resources,
            requests: {
              ...(resources.requests ?? {}),
              'ephemeral-storage': ephemeralStorage(resources.requests?.['ephemeral-storage'], sizes),
            },
          },
        }
      : {}),
  };
}

/** A pod with the volumes of its workload's file-system KV cache tiers, mounted into `main`. */
export function withKVCacheTiers(pod: PodSpec, kv: KVCacheOffloadingSpec | undefined): PodSpec {
  const tiers = kv?.secondary ?? [];
  if (!kv || tiers.length === 0) return pod;
  return {
    ...pod,
    volumes: [...(pod.volumes ?? []), ...tiers.map(tierVolume)],
    containers: (pod.containers ?? []).map((c) => (c.name === 'main' ? withTierMounts(c, kv) : c)),
  };
}
