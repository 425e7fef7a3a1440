/**
 * @module controller/controller
 * The LLMInferenceService controller: informers feed a work queue of service keys; workers reconcile one key at a
 * time — observe (caches), compute desired (the renderer), apply what changed or drifted (SSA, field manager
 * `llmisvc`), prune owned children that are no longer desired, report status. Level-triggered and idempotent: the
 * reconcile reads everything it needs from the caches each time and keeps no state between passes beyond caches and
 * the applier's write-saving memo.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { ControllerMetrics } from './metrics.js';
import { createMetrics } from './metrics.js';
import type { Informer, KubeClient, KubeObject, ResourceRef } from '../kube/index.js';
import {
  Applier,
  Discovery,
  Informer as KubeInformer,
  WorkQueue,
  apiVersionOf,
  groupKind,
  isConflict,
  isNotFound,
  objectKey,
  splitApiVersion,
  splitKey,
  watchCrds,
  type CrdChange,
} from '../kube/index.js';
import { isLlmisvcError, LlmisvcError } from '../errors/index.js';
import type {
  Condition,
  LiveObject,
  MissingDependency,
  ObservedChild,
  SourcedAddress,
} from './conditions.js';
import { deriveStatus, mergeConditionTimes, transitions } from './conditions.js';
import type { AppliedConfigRef, RouterStatus, RoutingGroupStatus, WorkloadStatus } from './status.js';
import { collisionMessage, groupConditions } from '../render/index.js';
import {
  appliedConfigKeys,
  configStatus,
  configUsers,
  groupOf,
  routerStatus,
  workloadStatus,
} from './status.js';
import { EventRecorder, type EventType } from './events.js';
import type { Problem } from './failures.js';
import { describeFailure, failedConditions, foreignChildProblem, retryNote } from './failures.js';
import { droppedImageVolumes, imageVolumeNames, imageVolumeProblem } from './image-volumes.js';
import { admitsRoutesFrom } from './gateway-admission.js';
import {
  CHILD_SELECTOR,
  COMPONENT_LABEL,
  MANAGED_BY_LABEL,
  childId,
  childRole,
  isOwnedBy,
  ownerKey,
  planPrune,
} from './children.js';

export const SERVICE_RESOURCE: ResourceRef = {
  group: 'serving.kserve.io',
  version: 'v1alpha2',
  kind: 'LLMInferenceService',
  plural: 'llminferenceservices',
  namespaced: true,
};
export const CONFIG_RESOURCE: ResourceRef = {
  group: 'serving.kserve.io',
  version: 'v1alpha2',
  kind: 'LLMInferenceServiceConfig',
  plural: 'llminferenceserviceconfigs',
  namespaced: true,
};
/**
 * The finalizer earlier versions put on every service. None is needed: every child is in the service's namespace
 * and carries a controller owner reference, so the garbage collector deletes them, and the one object the controller
 * creates outside (the default Gateway) is shared and outlives any one service. A finalizer would only make
 * deletion hang whenever the controller is down or uninstalled (and with it namespace and CRD deletion). The
 * controller removes it from services that still carry it (upgrades), whether they are being deleted or not.
 */
export const LEGACY_FINALIZER = 'serving.kserve.io/llmisvc-cleanup';
export const STOP_ANNOTATION = 'serving.kserve.io/stop';

/** Kinds a service may own; watched from the start (when served) so that prune works after a restart too. */
export const CANDIDATE_CHILD_KINDS: readonly { apiVersion: string; kind: string }[] = [
  { apiVersion: 'apps/v1', kind: 'Deployment' },
  { apiVersion: 'v1', kind: 'Service' },
  { apiVersion: 'v1', kind: 'ServiceAccount' },
  { apiVersion: 'v1', kind: 'ConfigMap' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding' },
  { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget' },
  { apiVersion: 'leaderworkerset.x-k8s.io/v1', kind: 'LeaderWorkerSet' },
  { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler' },
  { apiVersion: 'keda.sh/v1alpha1', kind: 'ScaledObject' },
  { apiVersion: 'llmd.ai/v1alpha1', kind: 'VariantAutoscaling' },
  { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute' },
  { apiVersion: 'inference.networking.k8s.io/v1', kind: 'InferencePool' },
  { apiVersion: 'inference.networking.x-k8s.io/v1alpha2', kind: 'InferencePool' },
  { apiVersion: 'inference.networking.x-k8s.io/v1alpha2', kind: 'InferenceModel' },
  { apiVersion: 'inference.networking.x-k8s.io/v1alpha2', kind: 'InferenceObjective' },
  { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule' },
];
const GATEWAY = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway' };
export const INGRESS_RESOURCE: ResourceRef = {
  group: 'networking.k8s.io',
  version: 'v1',
  kind: 'Ingress',
  plural: 'ingresses',
  namespaced: true,
};

export interface RenderOutcome {
  /** Owned children in apply order (children of missing APIs left out). */
  children: KubeObject[];
  /** Objects used but not owned (the default Gateway). */
  shared: KubeObject[];
  /** APIs the service needs that the cluster does not serve. */
  missing: MissingDependency[];
  /** The LLMInferenceServiceConfigs merged into the service, in merge order (for `status.appliedConfigs`). */
  appliedConfigs?: AppliedConfigRef[];
  /**
   * What renders but will not work as its author may expect (an HTTPS probe against the presets' plain-HTTP vLLM),
   * as `<field path>: <what to do>`; recorded as Warning Events once per generation.
   */
  warnings?: string[];
  /** `spec.router.ingress.refs` of the merged spec: Ingresses the user runs in front of the workload Service. */
  ingressRefs?: { name: string; namespace?: string }[];
  /** Model-name routing as decided over the namespace: a lost model name, and the routing group's state. */
  modelRouting?: {
    collision?: { model: string; keptBy: string[] } | undefined;
    group?: RoutingGroupStatus | undefined;
  };
}

/** The pure parts the controller needs from api/ and render/, injected so the controller can be tested alone. */
export interface ServiceEngine {
  /**
   * Renders a service; throws an LlmisvcError (validation, missing config, template) for bad input. `peers`: the
   * other services of its namespace that may share its model name or routing group (their spec and status decide
   * the weights and who keeps a contested model name).
   */
  render(
    service: KubeObject,
    configs: KubeObject[],
    apiVersions: ReadonlySet<string>,
    peers?: readonly KubeObject[],
  ): RenderOutcome;
}

export interface ControllerOptions {
  client: KubeClient;
  engine: ServiceEngine;
  logger: Logger;
  /** Watch only this namespace (default: all). */
  namespace?: string;
  /** Where the well-known presets (LLMInferenceServiceConfig) live. */
  systemNamespace: string;
  workers?: number;
  /** Re-reconcile every service this often even without events (default 10 minutes). */
  resyncMs?: number;
  /** Identity used in events. */
  identity?: string;
  metrics?: ControllerMetrics;
}

type Service = KubeObject & {
  spec?: Record<string, unknown> & { baseRefs?: { name: string }[] };
  status?: ServiceStatus;
};

/** The status fields this controller writes; the whole set is applied each time (SSA drops what is left out). */
interface ServiceStatus {
  conditions?: Condition[];
  observedGeneration?: number;
  url?: string;
  addresses?: SourcedAddress[];
  router?: RouterStatus;
  workloads?: WorkloadStatus;
  appliedConfigs?: AppliedConfigRef[];
}

/** What a pass knows beyond the conditions; a field left undefined is removed from the status. */
type StatusFields = Pick<ServiceStatus, 'url' | 'addresses' | 'router' | 'workloads' | 'appliedConfigs'>;

type Config = KubeObject & { status?: { conditions?: Condition[]; referencedBy?: unknown[] } };

export class Controller {
  readonly queue = new WorkQueue<string>({ baseDelayMs: 100, maxDelayMs: 5 * 60_000 });
  /** Keys of LLMInferenceServiceConfigs whose `status.referencedBy` may be out of date. */
  readonly configQueue = new WorkQueue<string>({ baseDelayMs: 100, maxDelayMs: 5 * 60_000 });
  readonly discovery: Discovery;
  readonly metrics: ControllerMetrics;
  private readonly applier: Applier;
  private readonly services: Informer<Service>;
  /** Configs of the watched namespace and, when that is one namespace, of the system namespace (presets). */
  private readonly configs: Informer[];
  private readonly children = new Map<string, Informer>();
  private gateways: Informer | undefined;
  private crds: Informer | undefined;
  /** Which services route through which Gateway (derived on each reconcile; used to map Gateway events). */
  private readonly gatewayUsers = new Map<string, Set<string>>();
  /** Ingresses (of the watched namespace), watched from the first service with `router.ingress.refs` on. */
  private ingresses: Promise<Informer> | undefined;
  /** Which services are exposed through which Ingress, like gatewayUsers. */
  private readonly ingressUsers = new Map<string, Set<string>>();
  private readonly abort = new AbortController();
  private workers: Promise<void>[] = [];
  private started = false;
  private resyncTimer: NodeJS.Timeout | undefined;
  private informerSync = new Map<string, Promise<Informer | undefined>>();
  private readonly recorder: EventRecorder;
  /**
   * The spec (`uid/generation`) each service's render warnings were last recorded for, by key: one Warning Event per
   * spec change, however many passes it takes before the status shows the generation.
   */
  private readonly warnedSpec = new Map<string, string>();

  constructor(private readonly options: ControllerOptions) {
    this.discovery = new Discovery(options.client);
    this.applier = new Applier(options.client);
    this.metrics = options.metrics ?? createMetrics({ queueDepth: () => this.queue.length });
    const log = options.logger;
    this.services = new KubeInformer<Service>(options.client, SERVICE_RESOURCE, {
      namespace: options.namespace,
      logger: log,
    });
    const configNamespaces =
      options.namespace === undefined
        ? [undefined]
        : [...new Set([options.namespace, options.systemNamespace])];
    this.configs = configNamespaces.map(
      (namespace) => new KubeInformer(options.client, CONFIG_RESOURCE, { namespace, logger: log }),
    );
    this.services.addHandlers({
      add: (s) => {
        this.queue.add(objectKey(s));
        this.enqueueRoutingPeers(s);
      },
      // Status-only updates are (almost always) the controller's own writes: reacting to them would turn every
      // failure report into an immediate retry and defeat the back-off.
      update: (s, old) => {
        if (needsReconcile(old, s)) this.queue.add(objectKey(s));
        this.enqueueConfigsOf(old, s);
        // A member's readiness sets the weights its group routes with: its peers re-render on a change.
        // Its own route carries the same weighted rules (for itself too), so a group member re-renders as well.
        if (needsReconcile(old, s) || readyOf(old) !== readyOf(s)) {
          this.enqueueRoutingPeers(old, s);
          if (routingKeys(s).group !== undefined) this.queue.add(objectKey(s));
        }
      },
      delete: (s) => {
        this.queue.add(objectKey(s));
        this.enqueueConfigsOf(s);
        this.enqueueRoutingPeers(s);
      },
    });
    this.recorder = new EventRecorder({
      client: options.client,
      logger: log,
      component: 'llmisvc-controller',
      instance: options.identity ?? 'llmisvc-controller',
    });
    // Our own writes of a config's status change nothing a service depends on: only spec and metadata count.
    const allServices = (): void => this.enqueueAll();
    for (const informer of this.configs)
      informer.addHandlers({
        add: (c) => {
          allServices();
          this.enqueueConfig(objectKey(c));
        },
        update: (c, old) => {
          if (needsReconcile(old, c)) allServices();
        },
        delete: allServices,
      });
  }

  /** Services that may share a model name or routing group with any of `versions` (itself left out). */
  private routingPeers(...versions: Service[]): Service[] {
    const keys = versions.map(routingKeys);
    const self = new Set(versions.map((v) => objectKey(v)));
    return this.services.list(
      (peer) =>
        !self.has(objectKey(peer)) &&
        versions.some(
          (v, i) =>
            peer.metadata.namespace === v.metadata.namespace && sharesRoutingKey(keys[i]!, routingKeys(peer)),
        ),
    );
  }

  private enqueueRoutingPeers(...versions: Service[]): void {
    for (const peer of this.routingPeers(...versions)) this.queue.add(objectKey(peer));
  }

  /**
   * Re-checks the referencedBy of every config a service names (before and after a change): its
   * `status.appliedConfigs` and its `spec.baseRefs`, which resolve in its own namespace or the system namespace.
   */
  private enqueueConfigsOf(...versions: Service[]): void {
    for (const s of versions) {
      for (const key of appliedConfigKeys(s)) this.enqueueConfig(key);
      for (const ref of s.spec?.baseRefs ?? [])
        for (const ns of [s.metadata.namespace, this.options.systemNamespace])
          this.enqueueConfig(`${ns}/${ref.name}`);
    }
  }

  /**
   * Only configs this controller keeps the status of: all of them when it watches every namespace; when it watches
   * one namespace, only that namespace's, since it cannot see the other services that may use a system config
   * (two such controllers would otherwise overwrite each other's partial view).
   */
  private enqueueConfig(key: string): void {
    const { namespace } = splitKey(key);
    if (this.options.namespace !== undefined && namespace !== this.options.namespace) return;
    this.configQueue.add(key);
  }

  private get log(): Logger {
    return this.options.logger;
  }

  /** Keys of every cached service (and, for their referencedBy, every cached config). */
  enqueueAll(): void {
    for (const s of this.services.list()) this.queue.add(objectKey(s));
    for (const informer of this.configs) for (const c of informer.list()) this.enqueueConfig(objectKey(c));
  }

  /** True once the service and config caches hold a complete list. */
  get hasSynced(): boolean {
    return this.services.hasSynced && this.configs.every((c) => c.hasSynced);
  }

  /** Starts informers and workers; resolves once the primary caches synced. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.options.client.onRequest((r) =>
      this.metrics.apiRequests.inc({ verb: r.verb, code: String(r.status) }),
    );
    this.crds = watchCrds(
      this.options.client,
      this.discovery,
      (change) => {
        this.log.info(change, 'CustomResourceDefinition changed; re-checking dependencies');
        void this.pickUpCrdChange(change);
      },
      this.log,
    );
    this.services.start();
    for (const informer of this.configs) informer.start();
    await this.startServedInformers();
    await Promise.all([
      this.services.waitForSync(),
      ...this.configs.map((c) => c.waitForSync()),
      this.crds.waitForSync(),
    ]);
    const workers = this.options.workers ?? 4;
    for (let i = 0; i < workers; i++) this.workers.push(this.work());
    this.workers.push(this.workConfigs());
    const resync = this.options.resyncMs ?? 10 * 60_000;
    if (resync > 0) {
      this.resyncTimer = setInterval(() => this.enqueueAll(), resync);
      this.resyncTimer.unref();
    }
    this.log.info({ workers }, 'controller started');
  }

  /** Stops workers (after their current key) and informers. */
  async stop(): Promise<void> {
    this.abort.abort();
    this.queue.shutdown();
    this.configQueue.shutdown();
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    await Promise.all(this.workers);
    const informers = [this.services, ...this.configs, ...this.children.values()];
    if (this.gateways) informers.push(this.gateways);
    if (this.ingresses) informers.push(await this.ingresses);
    if (this.crds) informers.push(this.crds);
    await Promise.all(informers.map((i) => i.stop()));
  }

  /**
   * Starts watching what a CRD change made available and re-checks every service. Discovery and the CRD's status do
   * not change together: for a new group, `/apis` lists it ~0.4 s before the CRD is Established, and the
   * group/version's resource list gains the kind at about the moment it is (the watch event can come first). So the
   * group being served proves nothing; until discovery lists the CRD's kind in every served version, ask again with
   * back-off (seen as a LeaderWorkerSet that was only created at the next resync, minutes later).
   */
  private async pickUpCrdChange(change: CrdChange): Promise<void> {
    const apiVersions = change.servedVersions.map((v) => (change.group ? `${change.group}/${v}` : v));
    const discovered = async (apiVersion: string): Promise<boolean> =>
      (await this.discovery.resourceFor(apiVersion, change.kind).catch(() => undefined)) !== undefined;
    for (let attempt = 0; !this.abort.signal.aborted; attempt++) {
      await this.startServedInformers();
      this.enqueueAll();
      const found = await Promise.all(apiVersions.map(discovered));
      if (found.every(Boolean) || attempt >= 10) return;
      await sleep(Math.min(100 * 2 ** attempt, 5_000), undefined, { ref: false });
      this.discovery.invalidate();
    }
  }

  /** Starts informers for every candidate child kind and the Gateway kind that the API server now serves. */
  private async startServedInformers(): Promise<void> {
    try {
      await Promise.all(CANDIDATE_CHILD_KINDS.map((c) => this.childInformer(c.apiVersion, c.kind)));
      const gw = await this.discovery.resourceFor(GATEWAY.apiVersion, GATEWAY.kind);
      if (gw && !this.gateways) {
        this.gateways = new KubeInformer(this.options.client, gw, { logger: this.log });
        const onGateway = (g: KubeObject): void => {
          for (const key of this.gatewayUsers.get(objectKey(g)) ?? []) this.queue.add(key);
        };
        this.gateways.addHandlers({ add: onGateway, update: onGateway, delete: onGateway });
        this.gateways.start();
      }
      if (this.gateways) await this.gateways.waitForSync();
    } catch (error) {
      this.log.warn({ err: (error as Error).message }, 'discovery failed; will retry on the next change');
    }
  }

  /** The (synced) informer for a child kind, started on first use; undefined when the API is not served. */
  private childInformer(apiVersion: string, kind: string): Promise<Informer | undefined> {
    const id = `${apiVersion}/${kind}`;
    const existing = this.children.get(id);
    if (existing) return existing.waitForSync().then(() => existing);
    const pending = this.informerSync.get(id);
    if (pending) return pending;
    const promise = (async () => {
      const ref = await this.discovery.resourceFor(apiVersion, kind);
      if (!ref) return undefined;
      const informer = new KubeInformer(this.options.client, ref, {
        namespace: this.options.namespace,
        labelSelector: CHILD_SELECTOR,
        // The label only narrows the watch (anyone may set it): the cache holds what a service owns, so labelled
        // strangers neither fill the controller's memory nor pass for children.
        keep: (o) => ownerKey(o) !== undefined,
        logger: this.log,
      });
      const onChild = (o: KubeObject): void => {
        const key = ownerKey(o);
        if (key) this.queue.add(key);
      };
      informer.addHandlers({
        add: onChild,
        update: onChild,
        delete: (o) => {
          this.applier.forget(ref, o.metadata.namespace, o.metadata.name);
          onChild(o);
        },
      });
      this.children.set(id, informer);
      informer.start();
      await informer.waitForSync();
      return informer;
    })();
    this.informerSync.set(id, promise);
    promise.finally(() => this.informerSync.delete(id)).catch(() => undefined);
    return promise;
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const end = this.metrics.reconcileDuration.startTimer();
      try {
        await this.reconcile(key);
        this.queue.forget(key);
        this.metrics.reconciles.inc({ result: 'success' });
      } catch (error) {
        const conflict = isConflict(error);
        this.metrics.reconciles.inc({ result: conflict ? 'conflict' : 'error' });
        this.metrics.reconcileErrors.inc({
          reason: conflict ? 'conflict' : isLlmisvcError(error) ? error.code : 'internal',
        });
        const delay = this.queue.addRateLimited(key);
        // A conflict means our cache was behind a write; the next pass sees the new version, so it is not an error.
        const level = conflict ? 'debug' : 'error';
        this.log[level]({ key, err: (error as Error).message, retryInMs: delay }, 'reconcile failed');
      } finally {
        end();
        this.queue.done(key);
      }
    }
  }

  /** One worker for config status: these writes are rare, small and independent of the services' passes. */
  private async workConfigs(): Promise<void> {
    for (;;) {
      const key = await this.configQueue.get();
      if (key === undefined) return;
      try {
        await this.reconcileConfig(key);
        this.configQueue.forget(key);
      } catch (error) {
        const delay = this.configQueue.addRateLimited(key);
        const level = isConflict(error) || isNotFound(error) ? 'debug' : 'warn';
        this.log[level](
          { key, err: (error as Error).message, retryInMs: delay },
          'cannot write the status of LLMInferenceServiceConfig',
        );
      } finally {
        this.configQueue.done(key);
      }
    }
  }

  /**
   * Writes `status.referencedBy` and the ConfigInUse condition of one config from the cached services (what the
   * services' passes recorded in their `status.appliedConfigs`); nothing when they are unchanged.
   */
  async reconcileConfig(key: string): Promise<void> {
    const { namespace, name } = splitKey(key);
    if (!namespace) return;
    const config: Config | undefined = this.configs
      .map((informer) => informer.get(namespace, name))
      .find(Boolean);
    if (!config || config.metadata.deletionTimestamp) return;
    const users = configUsers({ namespace, name }, this.services.list(), this.options.systemNamespace);
    const next = configStatus(users);
    const previous = config.status?.conditions ?? [];
    const conditions = mergeConditionTimes(next.conditions, previous, timestamp());
    const live = config.status ?? {};
    if (
      stableJson(live.referencedBy ?? null) === stableJson(next.referencedBy ?? null) &&
      stableJson(sortConditions(previous)) === stableJson(sortConditions(conditions))
    )
      return;
    await this.options.client.apply(
      CONFIG_RESOURCE,
      {
        apiVersion: `${CONFIG_RESOURCE.group}/${CONFIG_RESOURCE.version}`,
        kind: CONFIG_RESOURCE.kind,
        metadata: { name, namespace },
        status: { conditions, ...(next.referencedBy ? { referencedBy: next.referencedBy } : {}) },
      },
      { fieldManager: 'llmisvc', force: true, subresource: 'status' },
    );
  }

  /** Every cached child of any kind owned by `uid` in `namespace`. */
  private ownedChildren(namespace: string, uid: string): KubeObject[] {
    const owned: KubeObject[] = [];
    for (const informer of this.children.values())
      owned.push(...informer.list((o) => o.metadata.namespace === namespace && isOwnedBy(o, uid)));
    return owned;
  }

  private async resource(object: KubeObject): Promise<ResourceRef | undefined> {
    return this.discovery.resourceFor(object.apiVersion, object.kind);
  }

  /**
   * One reconcile of the service at `key`. Throws to retry with back-off; whatever stops or cuts short a pass is
   * first written to the service (Ready False with a reason, what to do and when the retry comes) and recorded as a
   * Warning Event, so that no failure is only in the controller's log.
   */
  async reconcile(key: string): Promise<void> {
    const { namespace, name } = splitKey(key);
    const service = this.services.get(namespace, name);
    if (!service || !namespace) {
      this.warnedSpec.delete(key);
      return; // Deleted: the garbage collector deletes the children (owner references).
    }
    try {
      await this.reconcileService(key, service, namespace);
    } catch (error) {
      if (isConflict(error) || error instanceof IncompletePass) throw error;
      const problem = describeFailure(error, { systemNamespace: this.options.systemNamespace });
      await this.reportFailure(key, this.services.get(namespace, name) ?? service, problem);
      throw error;
    }
  }

  /** When the next attempt comes, for messages: the delay the queue is about to use for this key. */
  private retryNote(key: string): string {
    return retryNote(this.queue.failureCount(key) + 1, this.queue.nextDelay(key), this.queue.maxDelay);
  }

  /** Ready False (other conditions kept) and a Warning Event; never throws, the caller retries anyway. */
  private async reportFailure(key: string, service: Service, problem: Problem): Promise<void> {
    try {
      await this.writeConditions(
        service,
        failedConditions(service.status?.conditions ?? [], problem, this.retryNote(key)),
        keptFields(service),
      );
    } catch (error) {
      this.log.warn({ key, err: (error as Error).message }, 'cannot write the failure into the status');
    }
    // The Event leaves out the retry note: the same failure again then bumps one Event's count.
    await this.event(service, 'Warning', problem.reason, problem.message);
  }

  private async reconcileService(key: string, original: Service, namespace: string): Promise<void> {
    let service = original;
    const uid = service.metadata.uid!;
    const finalizers = service.metadata.finalizers ?? [];
    if (finalizers.includes(LEGACY_FINALIZER)) service = await this.removeLegacyFinalizer(service);
    if (service.metadata.deletionTimestamp) return;

    const stopped = service.metadata.annotations?.[STOP_ANNOTATION] === 'true';
    const configs = this.configs.flatMap((informer) =>
      informer.list(
        (c) => c.metadata.namespace === namespace || c.metadata.namespace === this.options.systemNamespace,
      ),
    );
    const served = await this.discovery.servedGroupVersions();
    let outcome: RenderOutcome;
    try {
      outcome = this.options.engine.render(service, configs, served, this.routingPeers(service));
    } catch (error) {
      // Retrying cannot fix bad input: the service or a config has to change, and either change enqueues it again.
      // Children stay as they are: a typo in a preset must not take a running model down.
      // What the last good pass recorded (router, workloads, configs) still describes the children; url too is
      // left out, as before, since the spec that would route to it is broken.
      const { router, workloads, appliedConfigs } = keptFields(service);
      await this.writeStatus(
        service,
        deriveStatus({
          generation: service.metadata.generation,
          renderProblem: renderProblem(error),
          stopped,
          missing: [],
          children: [],
          gateways: new Map(),
        }),
        { router, workloads, appliedConfigs },
      );
      return;
    }

    // Once per spec change, not every pass: an Event is an API write, and the warning stays true until the spec changes.
    const spec = `${uid}/${service.metadata.generation}`;
    if (this.warnedSpec.get(key) !== spec) {
      this.warnedSpec.set(key, spec);
      for (const warning of outcome.warnings ?? [])
        await this.event(service, 'Warning', 'SpecWarning', warning);
    }

    const missing = outcome.missing;
    const desired = stopped ? [] : outcome.children;
    const observed: ObservedChild[] = [];
    const appliedIds = new Set<string>();
    // One event per pass for everything created, not one per object: events are API writes too.
    const created: string[] = [];
    const problems: Problem[] = [];
    // What the API server dropped from what we wrote: features this cluster lacks (DependenciesReady).
    const unsupported: Problem[] = [];
    for (const child of desired) {
      const informer = await this.childInformer(child.apiVersion, child.kind);
      const ref = informer?.resource ?? (await this.resource(child));
      if (!ref) continue; // Its API is missing; DependenciesReady says so.
      child.metadata.namespace ??= namespace;
      // A synced informer is the truth (absence included); only kinds we do not watch are read directly.
      const live = informer
        ? informer.get(namespace, child.metadata.name)
        : await this.getLive(ref, namespace, child.metadata.name);
      let result: { reason: string | undefined; object: KubeObject | undefined };
      try {
        const foreign = await this.foreignObject(ref, child, live, uid, informer !== undefined);
        if (foreign) {
          problems.push(foreignChildProblem(child, foreign));
          appliedIds.add(childId(child));
          observed.push({
            role: childRole(child),
            apiVersion: child.apiVersion,
            kind: child.kind,
            name: child.metadata.name,
            live: undefined,
          });
          continue;
        }
        result = await this.applier.ensure(ref, child, live, {
          force: true,
          cacheAuthoritative: informer !== undefined,
        });
      } catch (error) {
        // One refused child must not hide the others or the status: go on, report, and retry the pass later.
        if (isConflict(error)) throw error;
        problems.push(
          describeFailure(error, {
            systemNamespace: this.options.systemNamespace,
            object: `${child.kind} ${child.metadata.name}`,
          }),
        );
        appliedIds.add(childId(child)); // Still desired: never pruned because one apply failed.
        observed.push({
          role: childRole(child),
          apiVersion: child.apiVersion,
          kind: child.kind,
          name: child.metadata.name,
          live,
        });
        continue;
      }
      const { reason, object } = result;
      appliedIds.add(childId(child));
      const dropped = await this.droppedImageVolumes(ref, child, object);
      if (dropped.length)
        unsupported.push(
          imageVolumeProblem(
            { namespace, name: service.metadata.name },
            `${child.kind} ${child.metadata.name}`,
            dropped,
          ),
        );
      if (reason) {
        this.metrics.applies.inc({ kind: child.kind, reason: reason.split(' ')[0]! });
        if (reason === 'missing') created.push(`${child.kind} ${child.metadata.name}`);
        else if (reason.startsWith('drifted'))
          await this.event(
            service,
            'Normal',
            'DriftCorrected',
            `${child.kind} ${child.metadata.name} ${reason}; re-applied`,
          );
      }
      observed.push({
        role: childRole(child),
        apiVersion: child.apiVersion,
        kind: child.kind,
        name: child.metadata.name,
        live: object,
      });
    }

    if (created.length) await this.event(service, 'Normal', 'Created', `created ${created.join(', ')}`);

    // Shared objects (the default Gateway) are created when missing and otherwise left to whoever manages them.
    if (!stopped)
      for (const shared of outcome.shared) {
        const problem = await this.ensureShared(service, shared);
        if (problem) problems.push(problem);
      }

    const toPrune = planPrune(
      desired.filter((c) => appliedIds.has(childId(c))),
      this.ownedChildren(namespace, uid),
      uid,
    );
    for (const object of toPrune) await this.deleteChild(service, object);

    const gateways = this.routeGateways(key, desired, observed, namespace);
    const mainService = desired.find(
      (c) => c.kind === 'Service' && c.metadata.labels?.[COMPONENT_LABEL] === 'llminferenceservice-workload',
    );
    const route = desired.find((c) => c.kind === 'HTTPRoute');
    // An Ingress sends traffic only to Services of its own namespace, so one elsewhere cannot serve this service;
    // and reading it would show a tenant another namespace's hosts and addresses through this status.
    const ingressRefs = stopped ? [] : (outcome.ingressRefs ?? []);
    ingressRefs.forEach((ref, i) => {
      if (ref.namespace && ref.namespace !== namespace)
        problems.push({
          reason: 'IngressInOtherNamespace',
          message:
            `spec.router.ingress.refs[${i}] names Ingress ${ref.namespace}/${ref.name}, in another namespace: an ` +
            `Ingress routes only to Services of its own namespace; refer to one in namespace ${namespace}`,
        });
    });
    const ingresses = await this.refIngresses(
      key,
      ingressRefs.filter((ref) => !ref.namespace || ref.namespace === namespace),
      namespace,
    );
    const servicePort = (mainService?.['spec'] as { ports?: { port?: number }[] } | undefined)?.ports?.[0]
      ?.port;
    const status = deriveStatus({
      generation: service.metadata.generation,
      stopped,
      missing,
      unsupported,
      children: observed,
      gateways,
      ingresses,
      ...(mainService && servicePort
        ? { ingressBackend: { name: mainService.metadata.name, port: servicePort } }
        : {}),
      ...(mainService
        ? {
            serviceUrl: `http://${mainService.metadata.name}.${namespace}.svc.cluster.local`,
            serviceOrigin: {
              group: groupOf(mainService.apiVersion),
              kind: 'Service',
              name: mainService.metadata.name,
              namespace,
            },
          }
        : {}),
      ...(route ? { routePath: routePathOf(route) } : {}),
      problems,
      ...(problems.length ? { retry: this.retryNote(key) } : {}),
    });
    const existing = desired.map((object) => ({
      object,
      exists: observed.some(
        (o) => o.kind === object.kind && o.name === object.metadata.name && o.live !== undefined,
      ),
    }));
    const routing = outcome.modelRouting;
    if (routing?.group) status.conditions.push(...groupConditionsOf(routing.group));
    if (routing?.collision) {
      const message = collisionMessage(routing.collision);
      status.conditions.push({
        type: 'ModelNameRouted',
        status: 'False',
        reason: 'ModelNameCollision',
        message,
      });
      await this.event(service, 'Warning', 'ModelNameCollision', message);
    }
    // A transition of DependenciesReady to False makes its own Warning Event (writeConditions); one that was False
    // already for another reason gets this one, once: the next passes find the message in the status.
    const dependencies = service.status?.conditions?.find((c) => c.type === 'DependenciesReady');
    for (const problem of unsupported)
      if (dependencies?.status === 'False' && !dependencies.message?.includes(problem.message))
        await this.event(service, 'Warning', problem.reason, problem.message);
    const router = routerStatus({ namespace, children: existing, gateways });
    await this.writeStatus(service, status, {
      router: routing?.group ? { ...router, group: routing.group } : router,
      workloads: workloadStatus(existing, childRole),
      appliedConfigs: outcome.appliedConfigs?.length ? outcome.appliedConfigs : undefined,
    });
    if (problems.length) {
      const message = problems.map((p) => p.message).join('; ');
      await this.event(service, 'Warning', problems[0]!.reason, message);
      throw new IncompletePass(message);
    }
  }

  /**
   * The image volumes of `sent` that the API server did not store (see image-volumes.ts). `stored` is what the apply
   * returned or the cached object it matched; while our own create is still on its way to the cache there is
   * neither, and the object is read once, so that the verdict does not come and go with the cache. The applier's
   * memo keeps a dropped volume from being applied again and again (no idle writes); so a gate turned on later is
   * seen at the controller's next start or the service's next change, as the message says.
   */
  private async droppedImageVolumes(
    ref: ResourceRef,
    sent: KubeObject,
    stored: KubeObject | undefined,
  ): Promise<string[]> {
    if (imageVolumeNames(sent).length === 0) return [];
    const object = stored ?? (await this.getLive(ref, sent.metadata.namespace ?? '', sent.metadata.name));
    return object ? droppedImageVolumes(sent, object) : [];
  }

  /**
   * The object already at a child's name that this service does not control, if there is one: it is never applied
   * over. The child caches hold only objects labelled as ours, so where the cache has nothing the API server is
   * asked — an unlabelled object made by someone else (a Role an admin bound to a group, say) is exactly what the
   * cache cannot see, and a forced apply would take it over and, with the service, delete it.
   */
  private async foreignObject(
    ref: ResourceRef,
    child: KubeObject,
    live: KubeObject | undefined,
    uid: string,
    cached: boolean,
  ): Promise<KubeObject | undefined> {
    const existing =
      live ??
      (cached ? await this.getLive(ref, child.metadata.namespace ?? '', child.metadata.name) : undefined);
    return existing && !isOwnedBy(existing, uid) ? existing : undefined;
  }

  private async getLive(ref: ResourceRef, namespace: string, name: string): Promise<KubeObject | undefined> {
    try {
      return await this.options.client.get(ref, namespace, name);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** The Ingress informer, started on first use (most clusters with llmisvc never use one). */
  private ingressInformer(): Promise<Informer> {
    this.ingresses ??= (async () => {
      const informer = new KubeInformer(this.options.client, INGRESS_RESOURCE, {
        namespace: this.options.namespace,
        logger: this.log,
      });
      const onIngress = (i: KubeObject): void => {
        for (const key of this.ingressUsers.get(objectKey(i)) ?? []) this.queue.add(key);
      };
      informer.addHandlers({ add: onIngress, update: onIngress, delete: onIngress });
      informer.start();
      await informer.waitForSync();
      return informer;
    })();
    return this.ingresses;
  }

  /**
   * The Ingresses of `spec.router.ingress.refs` (all in the service's namespace, which this controller watches), live
   * from the cache (undefined when not found), by `namespace/name`; remembered for Ingress events.
   */
  private async refIngresses(
    key: string,
    refs: readonly { name: string }[],
    namespace: string,
  ): Promise<Map<string, LiveObject | undefined>> {
    for (const [ingress, users] of this.ingressUsers) {
      users.delete(key);
      if (users.size === 0) this.ingressUsers.delete(ingress);
    }
    const result = new Map<string, LiveObject | undefined>();
    if (refs.length === 0) return result;
    const informer = await this.ingressInformer();
    for (const ref of refs) {
      const ingressKey = `${namespace}/${ref.name}`;
      result.set(ingressKey, informer.get(namespace, ref.name));
      if (!this.ingressUsers.has(ingressKey)) this.ingressUsers.set(ingressKey, new Set());
      this.ingressUsers.get(ingressKey)!.add(key);
    }
    return result;
  }

  /**
   * Gateways referenced by the rendered HTTPRoute, live from the cache; remembered for Gateway events. One that does
   * not take routes from the service's namespace counts as not found (see gateway-admission.ts).
   */
  private routeGateways(
    key: string,
    desired: readonly KubeObject[],
    observed: readonly ObservedChild[],
    namespace: string,
  ): Map<string, LiveObject | undefined> {
    const result = new Map<string, LiveObject | undefined>();
    for (const [gw, users] of this.gatewayUsers) {
      users.delete(key);
      if (users.size === 0) this.gatewayUsers.delete(gw);
    }
    for (const route of desired.filter((c) => c.kind === 'HTTPRoute')) {
      const parents =
        (
          route['spec'] as
            | { parentRefs?: { name: string; namespace?: string; kind?: string; sectionName?: string }[] }
            | undefined
        )?.parentRefs ?? [];
      const liveRoute = observed.find((o) => o.kind === 'HTTPRoute' && o.name === route.metadata.name)?.live;
      for (const p of parents) {
        if (p.kind && p.kind !== 'Gateway') continue;
        const gwKey = `${p.namespace ?? namespace}/${p.name}`;
        const gateway = this.gateways?.get(p.namespace ?? namespace, p.name);
        result.set(
          gwKey,
          gateway && admitsRoutesFrom(gateway, namespace, p.sectionName, liveRoute) ? gateway : undefined,
        );
        if (!this.gatewayUsers.has(gwKey)) this.gatewayUsers.set(gwKey, new Set());
        this.gatewayUsers.get(gwKey)!.add(key);
      }
    }
    return result;
  }

  /** Creates a shared object (the default Gateway) when missing; a problem when that fails, for the status. */
  private async ensureShared(service: Service, shared: KubeObject): Promise<Problem | undefined> {
    const ns = shared.metadata.namespace;
    const what = `the default ${shared.kind} ${ns}/${shared.metadata.name}`;
    try {
      const ref = await this.resource(shared);
      if (!ref) return undefined;
      const live =
        (shared.kind === 'Gateway' ? this.gateways?.get(ns, shared.metadata.name) : undefined) ??
        (await this.getLive(ref, ns ?? '', shared.metadata.name));
      if (live && live.metadata.labels?.[MANAGED_BY_LABEL] !== 'llmisvc') return undefined; // User-managed.
      const { reason } = await this.applier.ensure(ref, shared, live, { force: false });
      if (reason === 'missing') await this.event(service, 'Normal', 'Created', `created ${what}`);
      return undefined;
    } catch (error) {
      if (isConflict(error)) {
        // Someone else owns fields we would set: report, do not fight.
        await this.event(service, 'Warning', 'SharedConflict', `${what}: ${(error as Error).message}`);
        return undefined;
      }
      return describeFailure(error, { systemNamespace: this.options.systemNamespace, object: what });
    }
  }

  private async deleteChild(service: Service, object: KubeObject): Promise<void> {
    const ref = await this.resource(object);
    if (!ref) return;
    try {
      await this.options.client.delete(ref, object.metadata.namespace, object.metadata.name, {
        uid: object.metadata.uid,
      });
      this.applier.forget(ref, object.metadata.namespace, object.metadata.name);
      await this.event(
        service,
        'Normal',
        'Deleted',
        `deleted ${object.kind} ${object.metadata.name}, no longer desired`,
      );
    } catch (error) {
      if (!isNotFound(error) && !isConflict(error)) throw error;
    }
  }

  /**
   * Removes the finalizer of earlier versions (see LEGACY_FINALIZER). A JSON patch that tests the entry first, so a
   * concurrent change of the list fails the patch (and the pass is retried) instead of being overwritten.
   */
  private async removeLegacyFinalizer(service: Service): Promise<Service> {
    const index = service.metadata.finalizers!.indexOf(LEGACY_FINALIZER);
    const path = `/metadata/finalizers/${index}`;
    const patched = await this.options.client.jsonPatch<Service>(
      SERVICE_RESOURCE,
      service.metadata.namespace,
      service.metadata.name,
      [
        { op: 'test', path, value: LEGACY_FINALIZER },
        { op: 'remove', path },
      ],
    );
    this.log.info(
      { key: objectKey(service) },
      `removed the finalizer ${LEGACY_FINALIZER} of earlier versions`,
    );
    return patched;
  }

  /** Writes status with SSA on the status subresource, only when it differs from the live status. */
  private async writeStatus(
    service: Service,
    derived: ReturnType<typeof deriveStatus>,
    fields: Omit<StatusFields, 'url' | 'addresses'> = {},
  ): Promise<void> {
    await this.writeConditions(service, derived.conditions, {
      ...fields,
      url: derived.url,
      addresses: derived.addresses,
    });
  }

  private async writeConditions(
    service: Service,
    next: readonly Condition[],
    fields: StatusFields,
  ): Promise<void> {
    const previous = service.status?.conditions ?? [];
    const conditions = mergeConditionTimes(next, previous, timestamp());
    const status: ServiceStatus = { observedGeneration: service.metadata.generation, conditions };
    for (const field of STATUS_FIELDS)
      if (fields[field] !== undefined) Object.assign(status, { [field]: fields[field] });
    const live = service.status ?? {};
    // The API server returns objects with their keys sorted: compare key order-independently.
    const same =
      live.observedGeneration === status.observedGeneration &&
      STATUS_FIELDS.every((f) => stableJson(live[f] ?? null) === stableJson(status[f] ?? null)) &&
      stableJson(sortConditions(previous)) === stableJson(sortConditions(conditions));
    if (same) return;
    const { group, version } = splitApiVersion(service.apiVersion);
    await this.options.client.apply(
      SERVICE_RESOURCE,
      {
        apiVersion: `${group}/${version}`,
        kind: service.kind,
        metadata: { name: service.metadata.name, namespace: service.metadata.namespace },
        status,
      },
      { fieldManager: 'llmisvc', force: true, subresource: 'status' },
    );
    for (const c of eventWorthy(transitions(conditions, previous), previous)) {
      await this.event(
        service,
        c.status === 'True' ? 'Normal' : 'Warning',
        c.status === 'True' ? c.type : (c.reason ?? `Not${c.type}`),
        c.status === 'True' ? `${c.type} is True` : `${c.type} is ${c.status}: ${c.message ?? ''}`,
      );
    }
  }

  /** Records an event on the service (aggregated and rate limited, see events.ts); never throws. */
  private async event(service: Service, type: EventType, reason: string, message: string): Promise<void> {
    await this.recorder.record({ subject: service, type, reason, message });
  }

  /** Informers by id, for tests and diagnostics. */
  informers(): Informer[] {
    return [
      this.services,
      ...this.configs,
      ...this.children.values(),
      ...(this.gateways ? [this.gateways] : []),
    ];
  }

  /** True when `groupKind` has a running child informer. */
  watches(apiVersion: string, kind: string): boolean {
    return [...this.children.values()].some(
      (i) => groupKind(apiVersionOf(i.resource), i.resource.kind) === groupKind(apiVersion, kind),
    );
  }
}

/**
 * The transitions users want as events (events are API writes, so not every one): any change of a condition that
 * existed before among Ready, DependenciesReady, PresetsCombined, WorkloadsReady and RouterReady, and the first
 * appearance of a False PresetsCombined or DependenciesReady (something for the user to fix). A new service that
 * simply is not ready yet gets no event beyond its Created one.
 */
export function eventWorthy(changed: readonly Condition[], previous: readonly Condition[]): Condition[] {
  const watched = ['Ready', 'DependenciesReady', 'PresetsCombined', 'WorkloadsReady', 'RouterReady'];
  return changed.filter((c) => {
    if (!watched.includes(c.type)) return false;
    if (previous.some((p) => p.type === c.type)) return true;
    return c.status === 'False' && (c.type === 'PresetsCombined' || c.type === 'DependenciesReady');
  });
}

const STATUS_FIELDS = ['url', 'addresses', 'router', 'workloads', 'appliedConfigs'] as const;

/** The status fields a pass that cannot derive them keeps as they are. */
function keptFields(service: Service): StatusFields {
  const s = service.status ?? {};
  return {
    url: s.url,
    addresses: s.addresses,
    router: s.router,
    workloads: s.workloads,
    appliedConfigs: s.appliedConfigs,
  };
}

function timestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** JSON with object keys sorted, for comparing objects regardless of key order. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value !== null && typeof value === 'object')
    return `{${Object.keys(value)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

function sortConditions(conditions: readonly Condition[]): Condition[] {
  return [...conditions]
    .sort((a, b) => (a.type < b.type ? -1 : 1))
    .map((c) => ({
      type: c.type,
      status: c.status,
      reason: c.reason,
      message: c.message,
      lastTransitionTime: c.lastTransitionTime,
    }));
}

function routePathOf(route: KubeObject): string | undefined {
  const rules =
    (route['spec'] as { rules?: { matches?: { path?: { value?: string } }[] }[] } | undefined)?.rules ?? [];
  return rules[0]?.matches?.[0]?.path?.value;
}

/** A pass that wrote its status but could not write every object; thrown only to retry with back-off. */
class IncompletePass extends LlmisvcError {
  constructor(message: string) {
    super('LLMISVC_ERR_KUBE', message);
    this.name = 'IncompletePass';
  }
}

/** PresetsCombined's reason and message for an error of the renderer. */
export function renderProblem(error: unknown): Problem {
  if (!isLlmisvcError(error))
    return {
      reason: 'InternalError',
      message: `rendering failed: ${(error as Error)?.message ?? String(error)}; this is a bug in llmisvc, please report it with the service's YAML`,
    };
  const reason =
    error.code === 'LLMISVC_ERR_NOT_FOUND'
      ? 'ConfigNotFound'
      : error.code === 'LLMISVC_ERR_INVALID'
        ? 'InvalidSpec'
        : error.code === 'LLMISVC_ERR_TEMPLATE'
          ? 'InvalidTemplate'
          : 'CombineFailed';
  return { reason, message: error.hint ? `${error.message} (${error.hint})` : error.message };
}

/**
 * Whether an update of a service needs a pass: anything but its status (and bookkeeping) changed. Status-only
 * updates are the controller's own writes, or someone else's that the next resync overwrites.
 */
export function needsReconcile(old: KubeObject, next: KubeObject): boolean {
  const meta = (o: KubeObject) => {
    const m = o.metadata;
    return JSON.stringify([
      m.generation,
      m.deletionTimestamp ?? null,
      m.labels ?? {},
      m.annotations ?? {},
      m.finalizers ?? [],
      m.ownerReferences ?? [],
      m.uid,
    ]);
  };
  return meta(old) !== meta(next) || JSON.stringify(old['spec']) !== JSON.stringify(next['spec']);
}

/** Whether a service's model servers are ready (WorkloadsReady: what its routing group weighs it by). */
function readyOf(service: Service): boolean {
  return (service.status?.conditions ?? []).some((c) => c.type === 'WorkloadsReady' && c.status === 'True');
}

/** The group and model name a service's own spec names (presets rarely set either). */
function routingKeys(service: Service): { group: string | undefined; model: string } {
  const spec = service.spec as
    { model?: { name?: string }; router?: { route?: { group?: string } } } | undefined;
  return { group: spec?.router?.route?.group, model: spec?.model?.name ?? service.metadata.name };
}

function sharesRoutingKey(a: ReturnType<typeof routingKeys>, b: ReturnType<typeof routingKeys>): boolean {
  return a.model === b.model || (a.group !== undefined && a.group === b.group);
}

/** GroupReady and GroupDegraded as conditions (see render/routing-plan.ts for their meaning). */
function groupConditionsOf(group: RoutingGroupStatus): Condition[] {
  const { ready, degraded } = groupConditions(group);
  return [
    {
      type: 'GroupReady',
      status: ready.status ? 'True' : 'False',
      reason: ready.reason,
      message: ready.message,
    },
    {
      type: 'GroupDegraded',
      status: degraded.status ? 'True' : 'False',
      reason: degraded.reason,
      message: degraded.message,
    },
  ];
}
