/**
 * @module dev/manifests
 * Installs and removes manifest files (CRDs and whatever ships beside them, such as Gateway API's admission policy)
 * on an API server, and waits until the CRDs are really served — or really gone — so a test that runs next does not
 * race the API server's own CRD controllers. Objects go out raw, byte-for-byte as parsed (see kube/client for why
 * the typed client-node API cannot be used for manifests).
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { LlmisvcError } from '../errors/index.js';
import { Discovery, KubeClient, statusMessage } from '../kube/index.js';

/** The field manager of everything the development server applies. */
export const DEV_FIELD_MANAGER = 'llmisvc-dev';

export interface ManifestOptions {
  /** Path of a kubeconfig for the target server. */
  kubeconfigPath: string;
  log?: (message: string) => void;
  /** How long to wait for CRDs to become Established (or to disappear); default 60 s. */
  timeoutMs?: number;
}

interface CrdLike extends KubernetesObject {
  spec?: {
    group?: string;
    names?: { kind?: string; plural?: string };
    versions?: { name: string; served?: boolean; storage?: boolean }[];
  };
  status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] };
}

/** Reads every object of the given YAML files, in file order, skipping empty documents. */
export async function readManifestObjects(files: readonly string[]): Promise<KubernetesObject[]> {
  const objects: KubernetesObject[] = [];
  for (const file of files) {
    const text = await readFile(file, 'utf8');
    for (const doc of parseAllDocuments(text)) {
      if (doc.errors.length) {
        throw new LlmisvcError('LLMISVC_ERR_INPUT', `${file}: ${doc.errors[0]!.message}`);
      }
      const value = doc.toJS() as KubernetesObject | null;
      if (value && typeof value === 'object' && value.kind) objects.push(value);
    }
  }
  return objects;
}

const isCrd = (o: KubernetesObject): o is CrdLike =>
  o.kind === 'CustomResourceDefinition' && (o.apiVersion ?? '').startsWith('apiextensions.k8s.io/');

/**
 * Server-side applies every object in the files (field manager `llmisvc-dev`, forced, so re-installing over an
 * older copy works) and waits until each CRD is Established and its served versions answer a list request.
 *
 * @example
 * await installManifests(['deploy/crds/serving.kserve.io_llminferenceservices.yaml'], { kubeconfigPath });
 */
export async function installManifests(files: readonly string[], options: ManifestOptions): Promise<void> {
  const objects = await readManifestObjects(files);
  const client = await manifestClient(options.kubeconfigPath);
  try {
    const discovery = new Discovery(client);
    for (const object of objects) {
      const path = await discovery.objectPath(object);
      const response = await client.send(
        'PATCH',
        `${path}?fieldManager=${DEV_FIELD_MANAGER}&force=true`,
        object,
        'application/apply-patch+yaml',
      );
      if (response.status >= 300) {
        throw new LlmisvcError(
          'LLMISVC_ERR_KUBE',
          `applying ${describe(object)} failed: HTTP ${response.status}: ${statusMessage(response)}`,
        );
      }
    }
    const crds = objects.filter(isCrd);
    const deadline = Date.now() + (options.timeoutMs ?? 60_000);
    for (const crd of crds) await waitEstablished(client, crd, deadline);
    options.log?.(`installed ${objects.length} objects (${crds.length} CRDs established)`);
  } finally {
    client.close();
  }
}

/** Deletes every object in the files (missing ones are fine) and waits until the CRDs are gone. */
export async function removeManifests(files: readonly string[], options: ManifestOptions): Promise<void> {
  const objects = await readManifestObjects(files);
  const client = await manifestClient(options.kubeconfigPath);
  try {
    const discovery = new Discovery(client);
    for (const object of [...objects].reverse()) {
      const response = await client.send('DELETE', await discovery.objectPath(object));
      if (response.status >= 300 && response.status !== 404) {
        throw new LlmisvcError(
          'LLMISVC_ERR_KUBE',
          `deleting ${describe(object)} failed: HTTP ${response.status}: ${statusMessage(response)}`,
        );
      }
    }
    const deadline = Date.now() + (options.timeoutMs ?? 60_000);
    for (const crd of objects.filter(isCrd)) {
      while ((await client.send('GET', crdPath(crd))).status !== 404) {
        if (Date.now() > deadline) {
          throw new LlmisvcError('LLMISVC_ERR_KUBE', `${describe(crd)} was deleted but is still there`, {
            hint: 'objects of that CRD may still be finalizing; delete them first',
          });
        }
        await sleep(200);
      }
    }
    options.log?.(`removed ${objects.length} objects`);
  } finally {
    client.close();
  }
}

/** One-shot work against a development server: a silent connection fails after 30 s instead of hanging. */
function manifestClient(kubeconfig: string): Promise<KubeClient> {
  return KubeClient.create({ kubeconfig, requestTimeoutMs: 30_000 });
}

async function waitEstablished(client: KubeClient, crd: CrdLike, deadline: number): Promise<void> {
  for (;;) {
    const response = await client.send('GET', crdPath(crd)).catch(() => undefined);
    const live = response?.status === 200 ? (response.body as CrdLike) : undefined;
    const established = live?.status?.conditions?.some(
      (c) => c.type === 'Established' && c.status === 'True',
    );
    if (established && (await servesStorageVersion(client, live!))) return;
    if (Date.now() > deadline) {
      const problem = live?.status?.conditions
        ?.filter((c) => c.status !== 'True')
        .map((c) => `${c.type}: ${c.reason ?? ''} ${c.message ?? ''}`.trim())
        .join('; ');
      throw new LlmisvcError('LLMISVC_ERR_KUBE', `${describe(crd)} did not become Established`, {
        hint: problem || 'check the API server log (logs/kube-apiserver.log in the server folder)',
      });
    }
    await sleep(100);
  }
}

/**
 * Established is set a moment before the REST handler answers; a list request proves it. Only the storage version is
 * asked: all versions are served by one handler, and listing another version of existing objects would call the
 * CRD's conversion webhook, which may not be running yet.
 */
async function servesStorageVersion(client: KubeClient, crd: CrdLike): Promise<boolean> {
  const group = crd.spec?.group;
  const plural = crd.spec?.names?.plural;
  const version = crd.spec?.versions?.find((v) => v.storage)?.name;
  if (!group || !plural || !version) return true;
  const response = await client.send('GET', `/apis/${group}/${version}/${plural}?limit=1`);
  return response.status === 200;
}

function crdPath(crd: CrdLike): string {
  return `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${encodeURIComponent(crd.metadata?.name ?? '')}`;
}

function describe(object: KubernetesObject): string {
  const ns = object.metadata?.namespace ? `${object.metadata.namespace}/` : '';
  return `${object.kind} ${ns}${object.metadata?.name ?? '(no name)'}`;
}
