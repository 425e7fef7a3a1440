/**
 * @module test/harness/memory-kube-api
 * A Kubernetes API in memory for unit tests of code that runs informers and writes objects (the controller): a
 * `KubeTransport` that serves discovery for the resources it is given, list, watch (events on every change), get,
 * create, update (resourceVersion checked), server-side apply (a shallow merge, status subresource included) and delete, equality label
 * selectors, and a log of every write. Not a conformant API server: enough to test decisions in milliseconds; the
 * integration tests run the real one.
 */
import { PassThrough } from 'node:stream';
import type { KubeObject, KubeResponse, KubeTransport, ResourceRef } from '../../src/kube/index.js';

export interface Write {
  method: string;
  /** `kind namespace/name`, with `/status` for the status subresource. */
  target: string;
  body: KubeObject | undefined;
}

interface Watcher {
  apiVersion: string;
  plural: string;
  namespace: string | undefined;
  selector: string;
  stream: PassThrough;
}

function answer(status: number, body: unknown): KubeResponse {
  const stream = new PassThrough() as PassThrough & { statusCode: number };
  stream.statusCode = status;
  stream.end(JSON.stringify(body));
  return stream;
}

function status(code: number, reason: string, message: string): KubeResponse {
  return answer(code, { kind: 'Status', apiVersion: 'v1', code, reason, message });
}

function matches(object: KubeObject, selector: string): boolean {
  if (!selector) return true;
  return selector.split(',').every((term) => {
    const [key, value] = term.split('=');
    const labels = object.metadata.labels ?? {};
    return value === undefined ? key! in labels : labels[key!] === value;
  });
}

export class MemoryKubeApi {
  private readonly objects = new Map<string, KubeObject>();
  private readonly watchers = new Set<Watcher>();
  private revision = 1;
  private uids = 0;
  readonly writes: Write[] = [];
  /** Answers a write with this instead of performing it, when it returns something (a refused apply, say). */
  refuse: ((write: Write) => { code: number; reason: string; message: string } | undefined) | undefined;
  /**
   * Changes an applied (PATCH) object before it is stored, as a real API server may (a field of a disabled feature
   * gate dropped, say); what it returns is stored and answered.
   */
  alter: ((object: KubeObject) => KubeObject) | undefined;

  constructor(private readonly resources: readonly ResourceRef[]) {}

  /** Puts an object in place as if someone else had created it (events go to the watches). */
  put(object: KubeObject): KubeObject {
    const ref = this.refOf(object.apiVersion, object.kind);
    if (!ref) throw new Error(`${object.apiVersion} ${object.kind} is not served by this fake`);
    return this.store(ref, object);
  }

  get(ref: ResourceRef, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.objects.get(this.key(apiVersionOf(ref), ref.plural, namespace, name));
  }

  /** The fake answers synchronously; a throw becomes a rejection, as from a real transport. */
  readonly transport: KubeTransport = (request) => Promise.resolve().then(() => this.respond(request));

  private respond(request: Parameters<KubeTransport>[0]): KubeResponse {
    const url = request.url;
    const path = url.pathname;
    if (path === '/api')
      return answer(200, { versions: this.groupVersions().filter((v) => !v.includes('/')) });
    if (path === '/apis') {
      const groups = new Map<string, string[]>();
      for (const gv of this.groupVersions().filter((v) => v.includes('/'))) {
        const [group, version] = gv.split('/') as [string, string];
        groups.set(group, [...(groups.get(group) ?? []), version]);
      }
      return answer(200, {
        groups: [...groups].map(([name, versions]) => ({
          name,
          versions: versions.map((version) => ({ groupVersion: `${name}/${version}`, version })),
        })),
      });
    }
    const match =
      /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))(?:\/namespaces\/([^/]+))?(?:\/([^/]+)(?:\/([^/]+)(?:\/([^/]+))?)?)?$/.exec(
        path,
      );
    if (!match) return status(404, 'NotFound', `no route ${path}`);
    const apiVersion = match[1] ?? `${match[2]}/${match[3]}`;
    const [, , , , namespace, plural, name, subresource] = match;
    if (!plural) {
      const resources = this.resources.filter((r) => apiVersionOf(r) === apiVersion);
      if (resources.length === 0) return status(404, 'NotFound', `${apiVersion} is not served`);
      return answer(200, {
        resources: resources.map((r) => ({ name: r.plural, kind: r.kind, namespaced: r.namespaced })),
      });
    }
    const ref = this.resources.find((r) => apiVersionOf(r) === apiVersion && r.plural === plural);
    if (!ref) return status(404, 'NotFound', `${apiVersion} ${plural} is not served`);
    const body = request.body ? (JSON.parse(request.body) as KubeObject) : undefined;
    const selector = url.searchParams.get('labelSelector') ?? '';
    if (request.method === 'GET' && !name) {
      if (url.searchParams.get('watch') === 'true')
        return this.watch(apiVersion, plural, namespace, selector, request.signal);
      const items = [...this.objects.values()].filter(
        (o) =>
          o.apiVersion === apiVersion &&
          o.kind === ref.kind &&
          (namespace === undefined || o.metadata.namespace === namespace) &&
          matches(o, selector),
      );
      return answer(200, {
        kind: `${ref.kind}List`,
        metadata: { resourceVersion: String(this.revision) },
        items,
      });
    }
    const target = `${ref.kind} ${namespace ? `${namespace}/` : ''}${name ?? body?.metadata.name ?? ''}${subresource ? `/${subresource}` : ''}`;
    if (request.method === 'GET') {
      const found = this.objects.get(this.key(apiVersion, plural, namespace, name!));
      return found ? answer(200, found) : status(404, 'NotFound', `${target} not found`);
    }
    const write: Write = { method: request.method, target, body };
    this.writes.push(write);
    const refused = this.refuse?.(write);
    if (refused) return status(refused.code, refused.reason, refused.message);
    const key = this.key(apiVersion, plural, namespace, name ?? body?.metadata.name ?? '');
    const existing = this.objects.get(key);
    switch (request.method) {
      case 'POST': {
        if (!body) return status(400, 'BadRequest', 'no body');
        const generateName = body.metadata['generateName'];
        if (!body.metadata.name && typeof generateName === 'string')
          body.metadata.name = `${generateName}${++this.uids}`;
        if (this.objects.has(this.key(apiVersion, plural, namespace, body.metadata.name))) {
          return status(409, 'AlreadyExists', `${target} already exists`);
        }
        return answer(201, this.store(ref, { ...body, metadata: { ...body.metadata, namespace } }));
      }
      case 'PATCH': {
        if (!body) return status(400, 'BadRequest', 'no body');
        if (subresource === 'status') {
          if (!existing) return status(404, 'NotFound', `${target} not found`);
          return answer(200, this.store(ref, { ...existing, status: body['status'] }, false));
        }
        const merged = {
          ...existing,
          ...body,
          metadata: { ...existing?.metadata, ...body.metadata, namespace },
        } as KubeObject;
        return answer(existing ? 200 : 201, this.store(ref, this.alter?.(merged) ?? merged));
      }
      case 'PUT': {
        // An update carries the resourceVersion it read: a stale one is a conflict, as optimistic concurrency wants.
        if (!body) return status(400, 'BadRequest', 'no body');
        if (!existing) return status(404, 'NotFound', `${target} not found`);
        if (body.metadata.resourceVersion !== existing.metadata.resourceVersion) {
          return status(409, 'Conflict', `${target}: the object has been modified`);
        }
        return answer(200, this.store(ref, { ...body, metadata: { ...body.metadata, namespace } }));
      }
      case 'DELETE': {
        if (!existing) return status(404, 'NotFound', `${target} not found`);
        this.objects.delete(key);
        this.notify('DELETED', existing);
        return answer(200, existing);
      }
      default:
        return status(405, 'MethodNotAllowed', request.method);
    }
  }

  private store(ref: ResourceRef, object: KubeObject, specChanged = true): KubeObject {
    const apiVersion = apiVersionOf(ref);
    const key = this.key(apiVersion, ref.plural, object.metadata.namespace, object.metadata.name);
    const existing = this.objects.get(key);
    const stored = {
      ...object,
      apiVersion,
      kind: ref.kind,
      metadata: {
        ...object.metadata,
        uid: existing?.metadata.uid ?? object.metadata.uid ?? `uid-${++this.uids}`,
        resourceVersion: String(++this.revision),
        generation: (existing?.metadata.generation ?? 0) + (specChanged || !existing ? 1 : 0),
      },
    } as KubeObject;
    this.objects.set(key, stored);
    this.notify(existing ? 'MODIFIED' : 'ADDED', stored);
    return stored;
  }

  private notify(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: KubeObject): void {
    const plural = this.refOf(object.apiVersion, object.kind)?.plural;
    for (const w of this.watchers) {
      if (w.apiVersion !== object.apiVersion || w.plural !== plural) continue;
      if (w.namespace !== undefined && w.namespace !== object.metadata.namespace) continue;
      if (!matches(object, w.selector)) continue;
      w.stream.write(JSON.stringify({ type, object }) + '\n');
    }
  }

  private watch(
    apiVersion: string,
    plural: string,
    namespace: string | undefined,
    selector: string,
    signal: AbortSignal | undefined,
  ): KubeResponse {
    const stream = new PassThrough() as PassThrough & { statusCode: number };
    stream.statusCode = 200;
    const watcher: Watcher = { apiVersion, plural, namespace, selector, stream };
    this.watchers.add(watcher);
    const close = () => {
      this.watchers.delete(watcher);
      stream.destroy(Object.assign(new Error('The operation was aborted'), { name: 'AbortError' }));
    };
    if (signal?.aborted) close();
    else signal?.addEventListener('abort', close, { once: true });
    return stream;
  }

  private groupVersions(): string[] {
    return [...new Set(this.resources.map(apiVersionOf))];
  }

  private refOf(apiVersion: string, kind: string): ResourceRef | undefined {
    return this.resources.find((r) => apiVersionOf(r) === apiVersion && r.kind === kind);
  }

  private key(apiVersion: string, plural: string, namespace: string | undefined, name: string): string {
    return `${apiVersion}/${plural}/${namespace ?? ''}/${name}`;
  }
}

function apiVersionOf(ref: ResourceRef): string {
  return ref.group ? `${ref.group}/${ref.version}` : ref.version;
}
