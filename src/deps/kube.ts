/**
 * @module deps/kube
 * The little of the Kubernetes API that `deps` and `doctor` use, as a thin view over kube/'s client (which does all
 * the talking: kubeconfig, TLS, keep-alive, raw JSON bodies so CRD manifests keep their CEL rules and
 * `x-kubernetes-*` fields). What stays here is the tooling's way of asking: paths rather than resource references,
 * a missing object as `undefined` rather than an error, forced apply under the tooling's own field manager, and
 * messages that point at the kubeconfig the user passed.
 */
import { Discovery, KubeApiError, KubeClient as ApiClient, type RawResponse } from '../kube/index.js';
import { LlmisvcError } from '../errors/index.js';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    creationTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    uid?: string;
    generation?: number;
  };
  [key: string]: unknown;
}

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  observedGeneration?: number;
}

export type Response = RawResponse;

/** The field manager of everything `llmisvc deps install` applies. */
export const DEPS_FIELD_MANAGER = 'llmisvc-deps';

export class KubeClient {
  private readonly discovery: Discovery;

  private constructor(
    private readonly api: ApiClient,
    /** Where the configuration came from, for messages. */
    readonly source: string,
  ) {
    this.discovery = new Discovery(api);
  }

  get server(): URL {
    return this.api.server;
  }

  /** From a kubeconfig file, or the default one (KUBECONFIG, ~/.kube/config, in-cluster) when no path is given. */
  static async load(kubeconfigPath?: string, context?: string): Promise<KubeClient> {
    let api: ApiClient;
    try {
      // A one-shot command: a silent connection fails after 30 s instead of hanging.
      api = await ApiClient.create({ kubeconfig: kubeconfigPath, context, requestTimeoutMs: 30_000 });
    } catch (error) {
      // kube/ words these for the controller's operator; the user here passed --kubeconfig/--context.
      const noCluster = /no current cluster/.test((error as Error).message);
      throw new LlmisvcError(
        'LLMISVC_ERR_CONFIG',
        noCluster
          ? 'the kubeconfig names no current cluster'
          : `cannot read the kubeconfig: ${((error as Error).cause as Error | undefined)?.message ?? (error as Error).message}`,
        {
          hint: noCluster
            ? 'pass --kubeconfig FILE or --context NAME, or run `kubectl config use-context NAME`'
            : 'pass --kubeconfig FILE or set KUBECONFIG',
        },
      );
    }
    return new KubeClient(api, kubeconfigPath ?? 'the default kubeconfig');
  }

  /** One request; JSON in and out. Connection failures become an error that names the server. */
  async request(method: string, path: string, body?: unknown, contentType?: string): Promise<Response> {
    try {
      return await this.api.send(method, path, body, contentType);
    } catch (error) {
      throw this.unreachable(error);
    }
  }

  /** A connection failure, worded for the user of this tool: which server, and which kubeconfig named it. */
  private unreachable(error: unknown): LlmisvcError {
    const reason = ((error as Error).cause as Error | undefined)?.message ?? (error as Error).message;
    return new LlmisvcError(
      'LLMISVC_ERR_KUBE',
      `cannot reach the API server ${this.server.origin}: ${reason}`,
      {
        hint: `check that the cluster of ${this.source} is running (kubectl cluster-info)`,
        cause: error,
      },
    );
  }

  /** GET that answers undefined for 404 and throws for other errors. */
  async get<T = KubeObject>(path: string): Promise<T | undefined> {
    const response = await this.request('GET', path);
    if (response.status === 404) return undefined;
    if (response.status >= 300) throw apiError('GET', path, response);
    return response.body as T;
  }

  async list<T = KubeObject>(path: string): Promise<T[]> {
    const list = await this.get<{ items?: T[] }>(path);
    return list?.items ?? [];
  }

  /** The group/versions the server serves (built-in `v1` included). */
  async servedGroupVersions(): Promise<Map<string, string[]>> {
    const served = new Map<string, string[]>([['', ['v1']]]);
    const groups = await this.get<{ groups?: { name: string; versions: { version: string }[] }[] }>('/apis');
    for (const group of groups?.groups ?? []) {
      served.set(
        group.name,
        group.versions.map((v) => v.version),
      );
    }
    return served;
  }

  /** The URL path of an object, found through discovery (CRDs installed a moment ago included). */
  async objectPath(object: KubeObject, withName = true, defaultNamespace = 'default'): Promise<string> {
    try {
      return await this.discovery.objectPath(object, {
        withName,
        defaultNamespace,
        hint: 'the CRD that defines it must be installed first: run `llmisvc deps plan` to see the order',
      });
    } catch (error) {
      // An answer of the server (or "not served") stands; only a connection failure gets this tool's wording.
      if (
        error instanceof KubeApiError ||
        (error instanceof LlmisvcError &&
          error.code === 'LLMISVC_ERR_KUBE' &&
          /does not serve/.test(error.message))
      )
        throw error;
      throw this.unreachable(error);
    }
  }

  /** Server-side apply of one object, forced (this tool owns what it installs). */
  async apply(object: KubeObject, defaultNamespace = 'default'): Promise<void> {
    const path = await this.objectPath(object, true, defaultNamespace);
    if (!object.metadata?.namespace && path.includes('/namespaces/')) {
      object = { ...object, metadata: { ...object.metadata, namespace: defaultNamespace } };
    }
    const response = await this.request(
      'PATCH',
      `${path}?fieldManager=${DEPS_FIELD_MANAGER}&force=true`,
      object,
      'application/apply-patch+yaml',
    );
    if (response.status >= 300) throw apiError('apply', describe(object), response);
  }
}

/** `Kind namespace/name` of an object. */
export function describe(object: KubeObject): string {
  const ns = object.metadata?.namespace ? `${object.metadata.namespace}/` : '';
  return `${object.kind ?? 'object'} ${ns}${object.metadata?.name ?? '(no name)'}`;
}

export function apiError(verb: string, what: string, response: Response): LlmisvcError {
  const body = response.body as { message?: string } | string | undefined;
  const message =
    typeof body === 'object' && body?.message
      ? body.message
      : (typeof body === 'string' ? body : (JSON.stringify(body) ?? '')).slice(0, 300);
  const hint =
    response.status === 401 || response.status === 403
      ? 'the kubeconfig user lacks the permission: use a cluster-admin context for dependency installs'
      : undefined;
  return new LlmisvcError('LLMISVC_ERR_KUBE', `${verb} ${what}: HTTP ${response.status}: ${message}`, {
    ...(hint ? { hint } : {}),
  });
}

export function conditionOf(object: unknown, type: string): Condition | undefined {
  const conditions =
    (object as { status?: { conditions?: Condition[] } } | undefined)?.status?.conditions ?? [];
  return conditions.find((c) => c.type === type);
}

export function isTrue(object: unknown, type: string): boolean {
  return conditionOf(object, type)?.status === 'True';
}
