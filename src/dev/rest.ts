/**
 * @module dev/rest
 * A minimal REST client for applying raw manifests. @kubernetes/client-node's `KubernetesObjectApi` serializes known
 * kinds through its generated models, which silently drops keys the models spell differently — CRD schemas lose
 * `x-kubernetes-int-or-string`, `x-kubernetes-validations` (CEL rules) and the like. Manifests must reach the API
 * server byte-for-byte, so this client sends JSON as parsed from the file. Authentication and TLS still come from the
 * kubeconfig through client-node, so every kubeconfig it understands works here.
 */
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { LlmisvcError } from '../errors/index.js';

export interface ObjectHeader {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string };
}

export interface RestResponse {
  status: number;
  body: unknown;
}

interface ApiResource {
  name: string;
  kind: string;
  namespaced: boolean;
}

export class RestClient {
  private readonly discovery = new Map<string, ApiResource[]>();

  private constructor(
    private readonly server: URL,
    private readonly base: RequestOptions,
  ) {}

  static async fromKubeconfig(path: string): Promise<RestClient> {
    const config = new KubeConfig();
    config.loadFromFile(path);
    const cluster = config.getCurrentCluster();
    if (!cluster) throw new LlmisvcError('LLMISVC_ERR_CONFIG', `${path} has no current cluster`);
    const options: RequestOptions = {};
    await config.applyToHTTPSOptions(options);
    return new RestClient(new URL(cluster.server), options);
  }

  /** One request; the body is sent as JSON (or as the given content type) and the answer parsed as JSON. */
  request(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<RestResponse> {
    const url = new URL(path, this.server);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
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
              // not JSON (an HTML proxy error page, say): keep the text
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
          res.on('error', reject);
        },
      );
      req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${url.pathname} timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** The URL path of an object (`/apis/g/v/namespaces/ns/plural/name`), found through discovery. */
  async objectPath(object: ObjectHeader, options: { withName?: boolean } = {}): Promise<string> {
    const apiVersion = object.apiVersion ?? '';
    const kind = object.kind ?? '';
    const resource = await this.resourceFor(apiVersion, kind);
    const prefix = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    const namespace = resource.namespaced ? `/namespaces/${object.metadata?.namespace || 'default'}` : '';
    const name = options.withName === false ? '' : `/${encodeURIComponent(object.metadata?.name ?? '')}`;
    return `${prefix}${namespace}/${resource.name}${name}`;
  }

  private async resourceFor(apiVersion: string, kind: string): Promise<ApiResource> {
    const known = this.discovery.get(apiVersion)?.find((r) => r.kind === kind && !r.name.includes('/'));
    if (known) return known;
    // Unknown here yet (a CRD installed a moment ago): ask the server again.
    const path = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    const response = await this.request('GET', path);
    if (response.status === 200) {
      const list = response.body as { resources?: ApiResource[] };
      this.discovery.set(apiVersion, list.resources ?? []);
      const found = list.resources?.find((r) => r.kind === kind && !r.name.includes('/'));
      if (found) return found;
    }
    throw new LlmisvcError('LLMISVC_ERR_KUBE', `the API server does not serve ${kind} in ${apiVersion}`, {
      hint: 'install the CRD that defines it first',
    });
  }
}

/** The message of a Kubernetes Status answer, or the raw body. */
export function statusMessage(response: RestResponse): string {
  const body = response.body as { message?: string } | string | undefined;
  if (typeof body === 'object' && body?.message) return body.message;
  return typeof body === 'string' ? body.slice(0, 500) : JSON.stringify(body ?? '').slice(0, 500);
}
