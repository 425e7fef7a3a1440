/**
 * @module kube/informer
 * A list-watch cache of one resource, in the manner of client-go's reflector + informer: list (paged), then watch
 * from the list's resourceVersion with bookmarks; on 410 Gone relist; on a dropped connection or an API-server
 * restart retry with capped exponential back-off and resume from the last resourceVersion seen. Handlers get
 * add/update/delete with the cached object; a relist turns into the right adds, updates and deletes so that nothing
 * is missed while the watch was down.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { KubeClient, WatchEvent } from './client.js';
import { isGone, KubeApiError } from './client.js';
import type { KubeObject, ResourceRef } from './resources.js';
import { objectKey, resourcePath } from './resources.js';

export interface InformerHandlers<T extends KubeObject> {
  add?(object: T): void;
  update?(object: T, old: T): void;
  delete?(object: T): void;
}

export interface InformerOptions<T extends KubeObject = KubeObject> {
  namespace?: string;
  labelSelector?: string;
  /** Server-side watch timeout, randomised per connection like client-go (default 5–10 minutes). */
  watchTimeoutSeconds?: number;
  /** Calls every handler's `update` with unchanged objects this often (0 = never), as informer resync does. */
  resyncMs?: number;
  logger?: Logger;
  /** Back-off bounds after errors. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * Which objects the cache holds; the others are treated as absent (one that stops qualifying is a delete). A label
   * selector is all a watch can filter on, and anyone who may create objects may set labels.
   */
  keep?: (object: T) => boolean;
  /**
   * What the cache holds of each object it keeps, when its users read a few fields: whoever writes the objects
   * decides their size (annotations up to 256 KiB each, managed fields), and the cache would hold all of it.
   */
  slim?: (object: T) => T;
}

export interface InformerStats {
  lists: number;
  watches: number;
  relistsAfterGone: number;
  errors: number;
}

export class Informer<T extends KubeObject = KubeObject> {
  private readonly store = new Map<string, T>();
  private readonly handlers: InformerHandlers<T>[] = [];
  private readonly abort = new AbortController();
  private synced = false;
  private syncWaiters: (() => void)[] = [];
  private resourceVersion: string | undefined;
  private running: Promise<void> | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  /** The last list was answered 404 (see noteNotServed). */
  private notServed = false;
  readonly stats: InformerStats = { lists: 0, watches: 0, relistsAfterGone: 0, errors: 0 };

  constructor(
    private readonly client: KubeClient,
    readonly resource: ResourceRef,
    private readonly options: InformerOptions<T> = {},
  ) {}

  addHandlers(handlers: InformerHandlers<T>): void {
    this.handlers.push(handlers);
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves after the first complete list has been delivered to the handlers. */
  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.store.get(namespace ? `${namespace}/${name}` : name);
  }

  list(filter?: (object: T) => boolean): T[] {
    const all = [...this.store.values()];
    return filter ? all.filter(filter) : all;
  }

  get size(): number {
    return this.store.size;
  }

  start(): void {
    if (this.running) return;
    this.running = this.run();
    if (this.options.resyncMs) {
      this.resyncTimer = setInterval(() => {
        for (const object of this.store.values()) for (const h of this.handlers) h.update?.(object, object);
      }, this.options.resyncMs);
      this.resyncTimer.unref();
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    await this.running;
  }

  private get log(): Logger | undefined {
    return this.options.logger;
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    let backoff = this.options.minBackoffMs ?? 200;
    const maxBackoff = this.options.maxBackoffMs ?? 30_000;
    let needList = true;
    while (!signal.aborted) {
      try {
        if (needList) {
          await this.relist();
          needList = false;
        }
        await this.watchOnce(signal);
        backoff = this.options.minBackoffMs ?? 200;
      } catch (error) {
        if (signal.aborted) break;
        if (isGone(error)) {
          // Our resourceVersion is older than etcd's compaction window: only a fresh list is consistent.
          this.stats.relistsAfterGone += 1;
          this.log?.info({ resource: this.resource.plural }, 'watch expired (410 Gone), relisting');
          needList = true;
          continue;
        }
        this.stats.errors += 1;
        const notFound = error instanceof KubeApiError && error.status === 404;
        if (notFound && needList) this.noteNotServed(backoff, maxBackoff);
        else
          this.log?.warn(
            { resource: this.resource.plural, err: (error as Error).message, retryInMs: backoff },
            'list/watch failed, retrying',
          );
        // A failed list leaves nothing to resume from; a failed watch may resume from the last resourceVersion.
        if (notFound) needList = true;
        await pause(backoff * (0.8 + Math.random() * 0.4), signal);
        backoff = Math.min(backoff * 2, maxBackoff);
      }
    }
  }

  /**
   * A list answered 404: the API server does not serve the resource (its CRD is not installed — on most clusters
   * some optional kind, such as InferenceModel beside GIE v1). That is a state, not a failure: said once at info,
   * then only at debug while the informer keeps checking at its back-off pace, and said again once it is served.
   */
  private noteNotServed(backoff: number, maxBackoff: number): void {
    const fields = { resource: this.resource.plural, apiVersion: apiVersionString(this.resource) };
    if (this.notServed) {
      this.log?.debug({ ...fields, retryInMs: backoff }, 'still not served');
      return;
    }
    this.notServed = true;
    this.log?.info(
      { ...fields, checkEveryMs: maxBackoff },
      'not served by the API server (no CRD installs this version): watching for it',
    );
  }

  private collectionPath(): string {
    return resourcePath(this.resource, this.options.namespace);
  }

  private async relist(): Promise<void> {
    const fresh = new Map<string, T>();
    let cont: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const page = await this.client.list<T>(this.resource, this.options.namespace, {
        labelSelector: this.options.labelSelector,
        limit: 500,
        continue: cont,
      });
      for (const item of page.items) {
        // List items come without apiVersion/kind; restore them so cached objects look like watched ones.
        item.apiVersion = item.apiVersion ?? apiVersionString(this.resource);
        item.kind = item.kind ?? this.resource.kind;
        if (this.options.keep?.(item) === false) continue;
        fresh.set(objectKey(item), this.options.slim?.(item) ?? item);
      }
      cont = page.metadata.continue || undefined;
      resourceVersion = page.metadata.resourceVersion;
    } while (cont);
    this.stats.lists += 1;
    this.resourceVersion = resourceVersion;
    if (this.notServed) {
      this.notServed = false;
      this.log?.info(
        { resource: this.resource.plural, apiVersion: apiVersionString(this.resource) },
        'now served',
      );
    }
    for (const [key, old] of this.store) {
      if (!fresh.has(key)) {
        this.store.delete(key);
        for (const h of this.handlers) h.delete?.(old);
      }
    }
    for (const [key, object] of fresh) {
      const old = this.store.get(key);
      this.store.set(key, object);
      if (!old) for (const h of this.handlers) h.add?.(object);
      else if (old.metadata.resourceVersion !== object.metadata.resourceVersion)
        for (const h of this.handlers) h.update?.(object, old);
    }
    if (!this.synced) {
      this.synced = true;
      for (const resolve of this.syncWaiters.splice(0)) resolve();
    }
  }

  private async watchOnce(signal: AbortSignal): Promise<void> {
    const timeout = this.options.watchTimeoutSeconds ?? Math.floor(300 + Math.random() * 300);
    this.stats.watches += 1;
    await this.client.watch(
      this.collectionPath(),
      {
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
        labelSelector: this.options.labelSelector,
        timeoutSeconds: timeout,
      },
      (event) => this.apply(event),
      // Without bytes for this long the connection is presumed dead (bookmarks arrive about once a minute).
      { signal, idleTimeoutMs: (timeout + 90) * 1000 },
    );
  }

  private apply(event: WatchEvent): void {
    const watched = event.object as T;
    if (watched.metadata?.resourceVersion) this.resourceVersion = watched.metadata.resourceVersion;
    if (event.type === 'BOOKMARK') return;
    const key = objectKey(watched);
    const old = this.store.get(key);
    if (event.type === 'DELETED' || this.options.keep?.(watched) === false) {
      if (event.type !== 'DELETED' && !old) return;
      this.store.delete(key);
      for (const h of this.handlers) h.delete?.(old ?? watched);
      return;
    }
    const object = this.options.slim?.(watched) ?? watched;
    this.store.set(key, object);
    if (old) for (const h of this.handlers) h.update?.(object, old);
    else for (const h of this.handlers) h.add?.(object);
  }
}

function apiVersionString(ref: ResourceRef): string {
  return ref.group ? `${ref.group}/${ref.version}` : ref.version;
}

/** Waits `ms`, or less when `signal` aborts: resolves either way, since the callers check the signal next. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return sleep(ms, undefined, { signal }).catch(() => undefined);
}
