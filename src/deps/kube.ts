/**
 * @module deps/kube
 * The little of the Kubernetes API that `deps` and `doctor` use, over raw JSON. @kubernetes/client-node provides the
 * kubeconfig handling (every auth method it understands works), but its typed object API serializes known kinds
 * through generated models that drop fields they do not know — fatal for CRD manifests (CEL rules,
 * `x-kubernetes-*`) — so requests and bodies go out and come back exactly as JSON.
 */
import { request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
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

export interface Response {
  status: number;
  body: unknown;
}

interface ApiResource {
  name: string;
  kind: string;
  namespaced: boolean;
}

/** The field manager of everything `llmisvc deps install` applies. */
export const DEPS_FIELD_MANAGER = 'llmisvc-deps';

export class KubeClient {
  private readonly resources = new Map<string, ApiResource[] | null>();

  private constructor(
    readonly server: URL,
    private readonly base: RequestOptions,
    /** Where the configuration came from, for messages. */
    readonly source: string,
  ) {}

  /** From a kubeconfig file, or the default one (KUBECONFIG, ~/.kube/config, in-cluster) when no path is given. */
  static async load(kubeconfigPath?: string, context?: string): Promise<KubeClient> {
    const config = new KubeConfig();
    try {
      if (kubeconfigPath) config.loadFromFile(kubeconfigPath);
      else config.loadFromDefault();
    } catch (error) {
      throw new LlmisvcError(
        'LLMISVC_ERR_CONFIG',
        `cannot read the kubeconfig: ${(error as Error).message}`,
        {
          hint: 'pass --kubeconfig FILE or set KUBECONFIG',
        },
      );
    }
    if (context) config.setCurrentContext(context);
    const cluster = config.getCurrentCluster();
    if (!cluster) {
      throw new LlmisvcError('LLMISVC_ERR_CONFIG', 'the kubeconfig names no current cluster', {
        hint: 'pass --kubeconfig FILE or --context NAME, or run `kubectl config use-context NAME`',
      });
    }
    const options: RequestOptions = {};
    await config.applyToHTTPSOptions(options);
    return new KubeClient(new URL(cluster.server), options, kubeconfigPath ?? 'the default kubeconfig');
  }

  /** One request; JSON in and out. Connection failures become an error that names the server. */
  async request(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<Response> {
    const url = new URL(path, this.server);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
    try {
      return await new Promise<Response>((resolve, reject) => {
        const req = send(
          url,
          {
            ...this.base,
            method,
            headers: {
              ...(this.base.headers as Record<string, string> | undefined),
              accept: 'application/json',
              ...(payload ? { 'content-type': contentType, 'content-length': String(payload.length) } : {}),
            },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString('utf8');
              let parsed: unknown = text;
              try {
                parsed = text ? JSON.parse(text) : undefined;
              } catch {
                // not JSON (a proxied plain-text answer, say): keep the text
              }
              resolve({ status: res.statusCode ?? 0, body: parsed });
            });
            res.on('error', reject);
          },
        );
        req.setTimeout(30_000, () =>
          req.destroy(new Error(`${method} ${url.pathname} timed out after 30 s`)),
        );
        req.on('error', reject);
        req.end(payload);
      });
    } catch (error) {
      throw new LlmisvcError(
        'LLMISVC_ERR_KUBE',
        `cannot reach the API server ${this.server.origin}: ${(error as Error).message}`,
        { hint: `check that the cluster of ${this.source} is running (kubectl cluster-info)`, cause: error },
      );
    }
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
    const apiVersion = object.apiVersion ?? '';
    const kind = object.kind ?? '';
    const resource = await this.resourceFor(apiVersion, kind);
    const prefix = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    const namespace = resource.namespaced
      ? `/namespaces/${object.metadata?.namespace || defaultNamespace}`
      : '';
    const name = withName ? `/${encodeURIComponent(object.metadata?.name ?? '')}` : '';
    return `${prefix}${namespace}/${resource.name}${name}`;
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

  private async resourceFor(apiVersion: string, kind: string): Promise<ApiResource> {
    const find = (list: ApiResource[] | null | undefined) =>
      list?.find((r) => r.kind === kind && !r.name.includes('/'));
    const known = find(this.resources.get(apiVersion));
    if (known) return known;
    const path = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    const response = await this.request('GET', path);
    const list =
      response.status === 200 ? ((response.body as { resources?: ApiResource[] }).resources ?? []) : null;
    this.resources.set(apiVersion, list);
    const found = find(list);
    if (found) return found;
    throw new LlmisvcError('LLMISVC_ERR_KUBE', `the API server does not serve ${kind} in ${apiVersion}`, {
      hint: 'the CRD that defines it must be installed first: run `llmisvc deps plan` to see the order',
    });
  }
}

/** `Kind namespace/name` of an object. */
export function describe(object: KubeObject): string {
  const ns = object.metadata?.namespace ? `${object.metadata.namespace}/` : '';
  return `${object.kind ?? 'object'} ${ns}${object.metadata?.name ?? '(no name)'}`;
}

export function apiError(verb: string, what: string, response: Response): LlmisvcError {
  const body = response.body as { message?: string } | string | undefined;
  const message = typeof body === 'object' && body?.message ? body.message : String(body ?? '').slice(0, 300);
  const hint =
    response.status === 401 || response.status === 403
      ? 'the kubeconfig user lacks the permission: use a cluster-admin context for dependency installs'
      : undefined;
  return new LlmisvcError('LLMISVC_ERR_KUBE', `${verb} ${what}: HTTP ${response.status}: ${message}`, {
    ...(hint ? { hint } : {}),
  });
}

export function conditionOf(object: unknown, type: string): Condition | undefined {
  const conditions = ((object as { status?: { conditions?: Condition[] } } | undefined)?.status?.conditions ??
    []) as Condition[];
  return conditions.find((c) => c.type === type);
}

export function isTrue(object: unknown, type: string): boolean {
  return conditionOf(object, type)?.status === 'True';
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
