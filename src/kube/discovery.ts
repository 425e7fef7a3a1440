/**
 * @module kube/discovery
 * Which group/versions and kinds the API server serves. The controller asks before it renders (the renderer picks
 * API versions from this set) and before it watches a kind. Answers are cached until `invalidate()`, which the CRD
 * watcher calls whenever a CustomResourceDefinition changes, so a dependency installed later shows up without a
 * restart. `objectPath` finds where an arbitrary manifest goes (dev/ and deps/ apply whole files of them).
 */
import { LlmisvcError } from '../errors/index.js';
import type { KubeClient } from './client.js';
import { isNotFound } from './client.js';
import type { ResourceRef } from './resources.js';
import { resourcePath, splitApiVersion } from './resources.js';

/** The part of a manifest that says where it goes; everything else is left alone. */
export interface ManifestHeader {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string };
}

export interface ObjectPathOptions {
  /** Include the object's name (default) or stop at the collection, for a create. */
  withName?: boolean;
  /** Namespace of a namespaced object that names none; default `default`. */
  defaultNamespace?: string;
  /** What to tell the user when the kind is not served. */
  hint?: string;
}

interface ApiVersions {
  versions: string[];
}
interface ApiGroupList {
  groups: { name: string; versions: { groupVersion: string; version: string }[] }[];
}
interface ApiResourceList {
  resources: { name: string; kind: string; namespaced: boolean; verbs?: string[] }[];
}

export class Discovery {
  private served: Promise<Set<string>> | undefined;
  private readonly resources = new Map<string, Promise<ResourceRef[]>>();
  private generationValue = 0;

  constructor(private readonly client: KubeClient) {}

  /** Bumped on every invalidate; lets callers notice that the served set may have changed. */
  get generation(): number {
    return this.generationValue;
  }

  /** Forgets everything cached; the next question asks the API server again. */
  invalidate(): void {
    this.served = undefined;
    this.resources.clear();
    this.generationValue += 1;
  }

  /** Every served group/version, spelled as apiVersion (`v1`, `apps/v1`, `gateway.networking.k8s.io/v1`). */
  servedGroupVersions(): Promise<Set<string>> {
    if (!this.served) {
      const load = async (): Promise<Set<string>> => {
        const core = await this.client.request<ApiVersions>('GET', '/api', { verb: 'get' });
        const groups = await this.client.request<ApiGroupList>('GET', '/apis', { verb: 'get' });
        const set = new Set<string>(core.versions);
        for (const group of groups.groups) for (const v of group.versions) set.add(v.groupVersion);
        return set;
      };
      this.served = load();
      this.served.catch(() => (this.served = undefined));
    }
    return this.served;
  }

  /** The resources of one group/version, or [] when it is not served. */
  resourcesOf(apiVersion: string): Promise<ResourceRef[]> {
    let cached = this.resources.get(apiVersion);
    if (!cached) {
      const { group, version } = splitApiVersion(apiVersion);
      const path = group ? `/apis/${group}/${version}` : `/api/${version}`;
      cached = this.client.request<ApiResourceList>('GET', path, { verb: 'get' }).then(
        (list) =>
          list.resources
            .filter((r) => !r.name.includes('/'))
            .map((r) => ({ group, version, kind: r.kind, plural: r.name, namespaced: r.namespaced })),
        (error: unknown) => {
          if (isNotFound(error)) return [];
          throw error;
        },
      );
      this.resources.set(apiVersion, cached);
      cached.catch(() => this.resources.delete(apiVersion));
    }
    return cached;
  }

  /**
   * The URL path of a manifest (`/apis/g/v/namespaces/ns/plural/name`), found through discovery. A kind not in the
   * cached answer is asked for once more, since its CRD may have been installed a moment ago.
   *
   * @example
   * await discovery.objectPath({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' } })
   * // '/apis/apps/v1/namespaces/default/deployments/web'
   */
  async objectPath(object: ManifestHeader, options: ObjectPathOptions = {}): Promise<string> {
    const apiVersion = object.apiVersion ?? '';
    const kind = object.kind ?? '';
    const find = async () => (await this.resourcesOf(apiVersion)).find((r) => r.kind === kind);
    const wasCached = this.resources.has(apiVersion);
    let ref = await find();
    if (!ref && wasCached) {
      this.resources.delete(apiVersion);
      ref = await find();
    }
    if (!ref) {
      throw new LlmisvcError('LLMISVC_ERR_KUBE', `the API server does not serve ${kind} in ${apiVersion}`, {
        hint: options.hint ?? 'install the CRD that defines it first',
      });
    }
    const namespace = ref.namespaced
      ? object.metadata?.namespace || (options.defaultNamespace ?? 'default')
      : undefined;
    return resourcePath(
      ref,
      namespace,
      options.withName === false ? undefined : (object.metadata?.name ?? ''),
    );
  }

  /** Where `kind` of `apiVersion` lives, or undefined when the server does not serve it. */
  async resourceFor(apiVersion: string, kind: string): Promise<ResourceRef | undefined> {
    const served = await this.servedGroupVersions();
    if (!served.has(apiVersion)) return undefined;
    return (await this.resourcesOf(apiVersion)).find((r) => r.kind === kind);
  }
}
