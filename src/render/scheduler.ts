/**
 * @module render/scheduler
 * The Gateway API Inference Extension side of a service: the InferencePool (GIE v1 and/or v1alpha2, whichever the
 * cluster serves), the v1alpha2 InferenceModel, and the Endpoint Picker that the pool points at — its Deployment
 * (running `llmisvc epp`), Service, ServiceAccount and a least-privilege Role. With `replicas` > 1 the pickers run
 * active-active: no leader election (every replica serves; the gateway balances ext_proc streams over the Service's
 * endpoints), spread over nodes, and a PodDisruptionBudget of one. On a cluster with Istio, a DestinationRule lets its
 * gateways reach the picker's TLS (render/istio-epp-tls.ts).
 */
import { stringify } from 'yaml';
import {
  childNames,
  poolSpecToV1alpha2,
  CRITICALITY_ANNOTATION,
  type LLMInferenceService,
  type LLMInferenceServiceSpec,
  type PodSpec,
} from '../api/index.js';
import { INFERENCE_POOL_V1, INFERENCE_X_V1ALPHA2 } from './dependencies.js';
// The one narrow import of epp/ past its index: the default configs are a leaf module of data (see its header).
import { defaultEndpointPickerConfig, prefillDecodeEndpointPickerConfig } from '../epp/default-configs.js';
import { eppServesTls, ISTIO_NETWORKING_V1, istioEppTlsRule } from './istio-epp-tls.js';
import { childMetadata, componentSelector, poolSelector } from './labels.js';
import type { KubeObject } from './workload.js';

type Json = Record<string, unknown>;

const EPP_CONFIG_MOUNT = '/etc/llmisvc/epp';

/**
 * The pool spec for a v1alpha2 cluster: the conversion the API itself uses, with the fields v1alpha2 requires
 * present even when the merged spec lacks them.
 */
function poolSpecV1alpha2(spec: Json): Json {
  const converted = poolSpecToV1alpha2(spec).spec;
  return {
    ...converted,
    selector: converted['selector'] ?? {},
    targetPortNumber: converted['targetPortNumber'] ?? 8000,
    extensionRef: converted['extensionRef'] ?? {},
  };
}

/** The port of the Endpoint Picker's ext_proc gRPC service (the scheduler Service's `grpc` port). */
const EPP_GRPC_PORT = 9002;
/** The ConfigMap key of a scheduler config ref that names none, as KServe defaults it. */
const DEFAULT_CONFIG_KEY = 'epp';

/**
 * The merged pool spec with KServe's two defaults (config_merge.go), for scheduler configs that predate them — KServe
 * v0.15's preset has `selector: {}` and no Endpoint Picker port: an empty selector becomes the service's serving
 * pods, and a Service reference without a port gets the picker's 9002, which GIE v1 requires.
 */
export function poolSpecWithDefaults(service: LLMInferenceService, poolSpec: Json): Json {
  const out: Json = { ...poolSpec };
  const selector = out['selector'] as { matchLabels?: Record<string, string> } | undefined;
  if (Object.keys(selector?.matchLabels ?? {}).length === 0) {
    out['selector'] = { ...selector, matchLabels: poolSelector(service) };
  }
  const ref = out['endpointPickerRef'] as { kind?: string; port?: { number?: number } } | undefined;
  // An unset kind defaults to Service in GIE (a server-side default that the merged spec has not seen yet).
  if (ref && !ref.port?.number && (!ref.kind || ref.kind === 'Service')) {
    out['endpointPickerRef'] = { ...ref, port: { ...ref.port, number: EPP_GRPC_PORT } };
  }
  return out;
}

function inferencePools(
  service: LLMInferenceService,
  spec: LLMInferenceServiceSpec,
  served: ReadonlySet<string>,
): KubeObject[] {
  const poolSpec = poolSpecWithDefaults(service, spec.router?.scheduler?.pool?.spec ?? {});
  const name = childNames(service.metadata.name).inferencePool;
  const pools: KubeObject[] = [];
  if (served.has(INFERENCE_POOL_V1)) {
    pools.push({
      apiVersion: INFERENCE_POOL_V1,
      kind: 'InferencePool',
      metadata: childMetadata(service, name),
      spec: poolSpec,
    });
  }
  if (served.has(INFERENCE_X_V1ALPHA2)) {
    pools.push({
      apiVersion: INFERENCE_X_V1ALPHA2,
      kind: 'InferencePool',
      metadata: childMetadata(service, name),
      spec: poolSpecV1alpha2(poolSpec),
    });
  }
  return pools;
}

function inferenceModel(service: LLMInferenceService, spec: LLMInferenceServiceSpec): KubeObject {
  const names = childNames(service.metadata.name);
  const pool = spec.router?.scheduler?.pool?.ref?.name ?? names.inferencePool;
  return {
    apiVersion: INFERENCE_X_V1ALPHA2,
    kind: 'InferenceModel',
    metadata: childMetadata(service, names.inferenceModel),
    spec: {
      modelName: spec.model?.name ?? service.metadata.name,
      criticality: service.metadata.annotations?.[CRITICALITY_ANNOTATION] ?? 'Critical',
      poolRef: { group: 'inference.networking.x-k8s.io', kind: 'InferencePool', name: pool },
    },
  };
}

/** The EndpointPickerConfig flags: inline (or the default) as text, a ConfigMap ref as a mounted file. */
function configWiring(spec: LLMInferenceServiceSpec): { args: string[]; volumes: Json[]; mounts: Json[] } {
  const config = spec.router?.scheduler?.config;
  if (config?.ref) {
    return {
      args: ['--config-file', `${EPP_CONFIG_MOUNT}/${config.ref.key || DEFAULT_CONFIG_KEY}`],
      volumes: [{ name: 'epp-config', configMap: { name: config.ref.name } }],
      mounts: [{ name: 'epp-config', mountPath: EPP_CONFIG_MOUNT, readOnly: true }],
    };
  }
  const text = config?.inline
    ? stringify(config.inline, { aliasDuplicateObjects: false })
    : spec.prefill
      ? prefillDecodeEndpointPickerConfig
      : defaultEndpointPickerConfig;
  return { args: ['--config-text', text], volumes: [], mounts: [] };
}

/** KServe's annotation asking for an `x-served-by` response header naming the serving pod. */
export const SERVED_BY_ANNOTATION = 'serving.kserve.io/enable-served-by-header';

/** Whether the service asks for `x-served-by` (the annotation set to "true", as KServe reads it). */
export function servedByHeader(service: LLMInferenceService): boolean {
  return service.metadata.annotations?.[SERVED_BY_ANNOTATION]?.toLowerCase() === 'true';
}

function schedulerDeployment(service: LLMInferenceService, spec: LLMInferenceServiceSpec): KubeObject {
  const names = childNames(service.metadata.name);
  const scheduler = spec.router?.scheduler ?? {};
  const template: PodSpec = scheduler.template ?? { containers: [] };
  const wiring = configWiring(spec);
  const selector = componentSelector(service, 'llminferenceservice-router-scheduler');
  const tokenizer = scheduler.tokenizer?.template;
  const replicas = scheduler.replicas ?? 1;
  const pod: PodSpec = {
    ...template,
    serviceAccountName: names.eppServiceAccount,
    // Active-active replicas are for availability: spread over nodes when the cluster can (never blocking a
    // schedule), unless the template places them itself.
    ...(replicas > 1 &&
    !template.topologySpreadConstraints &&
    !(template.affinity as { podAntiAffinity?: unknown } | undefined)?.podAntiAffinity
      ? {
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: 'kubernetes.io/hostname',
              whenUnsatisfiable: 'ScheduleAnyway',
              labelSelector: { matchLabels: selector },
            },
          ],
        }
      : {}),
    containers: [
      ...(template.containers ?? []).map((c) =>
        c.name === 'main'
          ? {
              ...c,
              args: [
                ...(c.args ?? []),
                ...wiring.args,
                ...(servedByHeader(service) ? ['--served-by-header'] : []),
              ],
              volumeMounts: [...(c.volumeMounts ?? []), ...(wiring.mounts as never[])],
            }
          : c,
      ),
      // The tokenizer sidecar as written, under the name the picker's tokenizer plugins expect.
      ...(tokenizer ? [{ ...tokenizer, name: 'tokenizer' }] : []),
    ],
    ...(wiring.volumes.length
      ? { volumes: [...(template.volumes ?? []), ...(wiring.volumes as never[])] }
      : {}),
  };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: childMetadata(service, names.scheduler, {
      'app.kubernetes.io/component': 'llminferenceservice-router-scheduler',
    }),
    spec: {
      replicas,
      selector: { matchLabels: selector },
      template: {
        metadata: {
          labels: { ...(scheduler.labels ?? {}), ...selector },
          ...(scheduler.annotations ? { annotations: scheduler.annotations } : {}),
        },
        spec: pod,
      },
    },
  };
}

function schedulerAccess(service: LLMInferenceService): KubeObject[] {
  const names = childNames(service.metadata.name);
  const component = { 'app.kubernetes.io/component': 'llminferenceservice-router-scheduler' };
  const read = ['get', 'list', 'watch'];
  return [
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: childMetadata(service, names.eppServiceAccount, component),
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: childMetadata(service, names.eppRole, component),
      // Read-only, namespaced: the picker watches its pool, the pool's pods and the models that map onto it.
      rules: [
        { apiGroups: [''], resources: ['pods'], verbs: read },
        { apiGroups: ['inference.networking.k8s.io'], resources: ['inferencepools'], verbs: read },
        {
          apiGroups: ['inference.networking.x-k8s.io'],
          resources: ['inferencepools', 'inferencemodels', 'inferenceobjectives', 'inferencemodelrewrites'],
          verbs: read,
        },
        // llm-d-router's own InferenceObjective.
        { apiGroups: ['llm-d.ai'], resources: ['inferenceobjectives'], verbs: read },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: childMetadata(service, names.eppRoleBinding, component),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: names.eppRole },
      subjects: [
        {
          kind: 'ServiceAccount',
          name: names.eppServiceAccount,
          namespace: service.metadata.namespace ?? 'default',
        },
      ],
    },
  ];
}

/**
 * With active-active replicas, a voluntary disruption (node drain, upgrade) takes at most one at a time: the others
 * keep routing while it drains its streams.
 */
function schedulerDisruptionBudget(service: LLMInferenceService): KubeObject {
  const names = childNames(service.metadata.name);
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: childMetadata(service, names.scheduler, {
      'app.kubernetes.io/component': 'llminferenceservice-router-scheduler',
    }),
    spec: {
      maxUnavailable: 1,
      selector: { matchLabels: componentSelector(service, 'llminferenceservice-router-scheduler') },
    },
  };
}

/** The picker's ports the Service exposes, by container port name, with what `llmisvc epp` listens on by default. */
const SCHEDULER_SERVICE_PORTS: readonly { name: string; port?: number }[] = [
  { name: 'grpc', port: EPP_GRPC_PORT },
  { name: 'grpc-health', port: 9003 },
  { name: 'metrics', port: 9090 },
  // The central KV-events socket model servers publish to (precise prefix routing): only where the template has it.
  { name: 'zmq' },
];

/**
 * The Service in front of the picker. As KServe builds it, each port is the scheduler template's container port of
 * that name (`grpc`, `grpc-health`, `metrics`, `zmq`), so a template that moves a port or adds the KV-events socket
 * is reachable through the Service; a port the template does not name keeps `llmisvc epp`'s default.
 */
function schedulerService(service: LLMInferenceService, spec: LLMInferenceServiceSpec): KubeObject {
  const names = childNames(service.metadata.name);
  const scheduler = spec.router?.scheduler ?? {};
  const replicas = scheduler.replicas ?? 1;
  const declared = new Map<string, { containerPort?: number; protocol?: string }>();
  for (const container of scheduler.template?.containers ?? [])
    for (const port of (container.ports ?? []) as {
      name?: string;
      containerPort?: number;
      protocol?: string;
    }[])
      // The last of a name wins, as in KServe: the user's port merges in after the preset's.
      if (port.name !== undefined) declared.set(port.name, port);
  const ports = SCHEDULER_SERVICE_PORTS.flatMap(({ name, port }) => {
    const template = declared.get(name);
    const number = template?.containerPort ?? port;
    if (number === undefined) return [];
    return [
      {
        name,
        port: number,
        targetPort: number,
        protocol: template?.protocol ?? 'TCP',
        ...(name === 'grpc' ? { appProtocol: 'http2' } : {}),
      },
    ];
  });
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: childMetadata(service, names.eppService, {
      'app.kubernetes.io/component': 'llminferenceservice-router-scheduler',
    }),
    spec: {
      type: 'ClusterIP',
      // Replicas are peers that share nothing: any replica may serve any ext_proc stream, so no stickiness
      // (stated, since a cluster default or a later patch must not pin a gateway to one replica).
      ...(replicas > 1 ? { sessionAffinity: 'None' } : {}),
      selector: componentSelector(service, 'llminferenceservice-router-scheduler'),
      ports,
    },
  };
}

/**
 * Everything `router.scheduler` creates. With `pool.ref` the pool and its picker exist already: only the
 * InferenceModel (on v1alpha2 clusters) is made, pointing at that pool.
 */
export function renderScheduler(
  service: LLMInferenceService,
  spec: LLMInferenceServiceSpec,
  served: ReadonlySet<string>,
): KubeObject[] {
  if (!spec.router?.scheduler) return [];
  const model = served.has(INFERENCE_X_V1ALPHA2) ? [inferenceModel(service, spec)] : [];
  if (spec.router.scheduler.pool?.ref) return model;
  const replicas = spec.router.scheduler.replicas ?? 1;
  const deployment = schedulerDeployment(service, spec);
  return [
    ...schedulerAccess(service),
    schedulerService(service, spec),
    ...istioEppTls(service, spec, deployment, served),
    deployment,
    ...(replicas > 1 ? [schedulerDisruptionBudget(service)] : []),
    ...inferencePools(service, spec, served),
    ...model,
  ];
}

/** The DestinationRule an Istio gateway needs to reach a TLS picker (render/istio-epp-tls.ts), when it applies. */
function istioEppTls(
  service: LLMInferenceService,
  spec: LLMInferenceServiceSpec,
  deployment: KubeObject,
  served: ReadonlySet<string>,
): KubeObject[] {
  if (!served.has(ISTIO_NETWORKING_V1)) return [];
  const pod = (deployment['spec'] as { template: { spec: PodSpec } }).template.spec;
  const main = (pod.containers ?? []).find((c) => c.name === 'main');
  if (!main || !eppServesTls(main.args ?? [])) return [];
  // Name and kind as written: the pool's defaults only add a port and a selector.
  const ref = spec.router?.scheduler?.pool?.spec?.['endpointPickerRef'] as
    { kind?: string; name?: string } | undefined;
  const ours = childNames(service.metadata.name).eppService;
  // Only for the picker Service this service owns. The rule's host would otherwise be whatever the manifest names —
  // another namespace's service by its full name, say — and its author could set the TLS of traffic that is not theirs.
  if (ref?.name !== ours || (ref.kind ?? 'Service') !== 'Service') return [];
  return [istioEppTlsRule(service, ours, EPP_GRPC_PORT)];
}
