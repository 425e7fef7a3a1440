/**
 * @module render/model-storage
 * How the model (and LoRA adapters) reach the model server: downloaded by the storage-initializer init container
 * for remote URIs (hf://, s3://, gs://, https://), mounted from a PersistentVolumeClaim for pvc://, or from an
 * image volume for oci:// and oci+native:// (Kubernetes image volumes, beta since 1.33). The model lands at /mnt/models, each
 * adapter at /mnt/lora/<name>.
 */
import type { Container, LLMInferenceServiceSpec, PodSpec } from '../api/index.js';
import type { FieldProblem } from '../errors/index.js';

export const MODEL_PATH = '/mnt/models';
export const LORA_PATH = '/mnt/lora';
export const STORAGE_INITIALIZER_IMAGE = 'kserve/storage-initializer:v0.15.2';

const DOWNLOADED = ['hf', 's3', 'gs', 'https', 'http'];
// KServe's oci:// runs a modelcar sidecar and oci+native:// a Kubernetes image volume; both become image volumes
// here (no sidecar to keep in step with the server), so the two schemes serve the same model the same way.
const IMAGE_SCHEMES = ['oci', 'oci+native'];
const SCHEMES = [...DOWNLOADED, 'pvc', ...IMAGE_SCHEMES];

function schemeOf(uri: string): string | undefined {
  return /^([a-z][a-z0-9+.-]*):\/\//.exec(uri)?.[1];
}

/** Problems with model and adapter URIs (an unknown scheme would silently serve nothing). */
export function storageProblems(spec: LLMInferenceServiceSpec): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const check = (uri: string | undefined, path: string) => {
    if (uri === undefined || uri === '') return;
    const scheme = schemeOf(uri);
    if (!scheme || !SCHEMES.includes(scheme)) {
      problems.push({
        path,
        message: `"${uri}" has no supported scheme; use one of ${SCHEMES.map((s) => s + '://').join(', ')}`,
      });
    } else if (scheme === 'pvc' && !/^pvc:\/\/[a-z0-9][-a-z0-9.]*(\/.*)?$/.test(uri)) {
      problems.push({ path, message: `"${uri}" must be pvc://<claim-name>[/<path>]` });
    }
  };
  check(spec.model?.uri, 'spec.model.uri');
  (spec.model?.lora?.adapters ?? []).forEach((a, i) => check(a.uri, `spec.model.lora.adapters[${i}].uri`));
  return problems;
}

interface Mount {
  volume: { name: string; [field: string]: unknown };
  mount: { name: string; mountPath: string; readOnly?: boolean; subPath?: string };
  initContainer?: Container;
}

/** The volume, mount and (for downloads) init container that put `uri` at `path`. */
function mountFor(uri: string, path: string, volumeName: string, downloads: boolean): Mount | undefined {
  const scheme = schemeOf(uri);
  if (scheme === 'pvc') {
    const [claim, ...rest] = uri.slice('pvc://'.length).split('/');
    const subPath = rest.join('/');
    return {
      volume: { name: volumeName, persistentVolumeClaim: { claimName: claim, readOnly: true } },
      mount: { name: volumeName, mountPath: path, readOnly: true, ...(subPath ? { subPath } : {}) },
    };
  }
  if (scheme !== undefined && IMAGE_SCHEMES.includes(scheme)) {
    return {
      volume: {
        name: volumeName,
        image: { reference: uri.slice(scheme.length + '://'.length), pullPolicy: 'IfNotPresent' },
      },
      mount: { name: volumeName, mountPath: path, readOnly: true },
    };
  }
  if (!downloads) return undefined;
  return {
    volume: { name: volumeName, emptyDir: {} },
    mount: { name: volumeName, mountPath: path },
    initContainer: {
      name: `storage-initializer${volumeName === 'model-storage' ? '' : '-' + volumeName}`,
      image: STORAGE_INITIALIZER_IMAGE,
      args: [uri, path],
      volumeMounts: [{ name: volumeName, mountPath: path }],
      resources: { requests: { cpu: '100m', memory: '100Mi' }, limits: { cpu: '1', memory: '1Gi' } },
      terminationMessagePolicy: 'FallbackToLogsOnError',
    },
  };
}

/** The mounts a pod needs for the model and its adapters. */
export function modelMounts(spec: LLMInferenceServiceSpec): Mount[] {
  const downloads = spec.storageInitializer?.enabled !== false;
  const mounts: Mount[] = [];
  const uri = spec.model?.uri;
  if (uri) {
    const m = mountFor(uri, MODEL_PATH, 'model-storage', downloads);
    if (m) mounts.push(m);
  }
  (spec.model?.lora?.adapters ?? []).forEach((adapter, i) => {
    if (!adapter.uri || !adapter.name) return;
    const m = mountFor(adapter.uri, `${LORA_PATH}/${adapter.name}`, `lora-${i}`, downloads);
    if (m) mounts.push(m);
  });
  return mounts;
}

/** Adds the model mounts to a pod: volumes, init containers, and a read-only mount in the `main` container. */
export function withModelStorage(pod: PodSpec, mounts: readonly Mount[]): PodSpec {
  if (mounts.length === 0) return pod;
  const names = new Set(mounts.map((m) => m.volume.name));
  const initContainers = mounts.flatMap((m) => (m.initContainer ? [m.initContainer] : []));
  return {
    ...pod,
    volumes: [...(pod.volumes ?? []).filter((v) => !names.has(v.name)), ...mounts.map((m) => m.volume)],
    ...(initContainers.length ? { initContainers: [...initContainers, ...(pod.initContainers ?? [])] } : {}),
    containers: (pod.containers ?? []).map((c) =>
      c.name === 'main'
        ? {
            ...c,
            volumeMounts: [
              ...(c.volumeMounts ?? []).filter((v) => !names.has(v.name)),
              ...mounts.map((m) => ({ ...m.mount, readOnly: true })),
            ],
          }
        : c,
    ),
  };
}
