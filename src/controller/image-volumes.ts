/**
 * @module controller/image-volumes
 * Whether the API server kept the image volumes the controller wrote. An `oci://` or `oci+native://` model is a
 * Kubernetes image volume (render/model-storage.ts); a kube-apiserver with the `ImageVolume` feature gate off (its
 * default in 1.33 and 1.34) accepts the workload but silently drops that volume and its mount, so the model server
 * would start without its model. Only the object the API server returns shows it: compare what was sent with what
 * was stored. Pure: the controller passes both in.
 */
import type { KubeObject } from '../kube/index.js';

interface Volume {
  name?: string;
  image?: unknown;
}
type PodTemplate = { spec?: { volumes?: Volume[] } } | undefined;

/** The pod templates of a workload, by where they are (Deployment, LeaderWorkerSet leader and workers). */
function podTemplates(object: KubeObject): Map<string, PodTemplate> {
  const spec = object['spec'] as
    | {
        template?: PodTemplate;
        leaderWorkerTemplate?: { leaderTemplate?: PodTemplate; workerTemplate?: PodTemplate };
      }
    | undefined;
  return new Map([
    ['spec.template', spec?.template],
    ['spec.leaderWorkerTemplate.leaderTemplate', spec?.leaderWorkerTemplate?.leaderTemplate],
    ['spec.leaderWorkerTemplate.workerTemplate', spec?.leaderWorkerTemplate?.workerTemplate],
  ]);
}

/** Names of the image volumes `object` asks for in any of its pod templates. */
export function imageVolumeNames(object: KubeObject): string[] {
  const names = new Set<string>();
  for (const template of podTemplates(object).values())
    for (const v of template?.spec?.volumes ?? []) if (v.image !== undefined && v.name) names.add(v.name);
  return [...names];
}

/**
 * The image volumes of `sent` that `stored` lost: gone from the pod template, or left there without its `image`
 * source. Empty when the API server kept them all.
 * @example droppedImageVolumes(deploymentWithImageVolume('model'), sameWithoutVolumes) // → ['model']
 */
export function droppedImageVolumes(sent: KubeObject, stored: KubeObject): string[] {
  const kept = podTemplates(stored);
  const dropped = new Set<string>();
  for (const [where, template] of podTemplates(sent)) {
    const storedVolumes = kept.get(where)?.spec?.volumes ?? [];
    for (const volume of template?.spec?.volumes ?? []) {
      if (volume.image === undefined || !volume.name) continue;
      const counterpart = storedVolumes.find((v) => v.name === volume.name);
      if (counterpart?.image === undefined) dropped.add(volume.name);
    }
  }
  return [...dropped];
}

/** DependenciesReady's reason when the API server dropped an image volume. */
export const IMAGE_VOLUME_UNSUPPORTED = 'ImageVolumeUnsupported';

/** What DependenciesReady says when the API server dropped image volumes of `workload`: what and what to do. */
export function imageVolumeProblem(
  service: { namespace: string; name: string },
  workload: string,
  volumes: readonly string[],
): { reason: string; message: string } {
  const list = volumes.map((v) => `"${v}"`).join(', ');
  return {
    reason: IMAGE_VOLUME_UNSUPPORTED,
    message:
      `the API server dropped the image volume ${list} from ${workload} of LLMInferenceService ` +
      `${service.namespace}/${service.name}: its oci:// or oci+native:// model would not be mounted. The ` +
      'ImageVolume feature gate is off on kube-apiserver; turn it on there and on the kubelets ' +
      '(--feature-gates=ImageVolume=true; beta and off by default in Kubernetes 1.33 and 1.34, on by default ' +
      `from 1.35), then restart the llmisvc controller or change the service so that ${workload} is written ` +
      'again; or serve the model from hf://, pvc:// or s3://',
  };
}
