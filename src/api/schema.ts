/**
 * @module api/schema
 * The LLMInferenceService API, defined once. These zod schemas are the single source of truth for the TypeScript
 * types (`z.infer`), for structural validation (unknown fields, types, minimums) and for the CRD manifests
 * (`crd.ts` turns them into OpenAPI v3 structural schemas). Field names and shapes follow KServe's
 * `serving.kserve.io` API so existing manifests work unchanged.
 *
 * Pod specs are not spelled out here: the CRD keeps them as `x-kubernetes-preserve-unknown-fields` objects (the
 * full PodSpec schema five times over, in two versions, would push the CRD past etcd's object size limit), and
 * `pod-spec.ts` checks their field names against Kubernetes' own PodSpec model instead.
 */
import { z } from 'zod';
import { TracingSchema, workloadV020Fields } from './workload-v020.js';

export const GROUP = 'serving.kserve.io';
export const STORAGE_VERSION = 'v1alpha2';
export const SERVED_VERSIONS = ['v1alpha1', 'v1alpha2'] as const;
export type ApiVersionName = (typeof SERVED_VERSIONS)[number];

const PRESERVE = { 'x-kubernetes-preserve-unknown-fields': true } as const;

/** A DNS label (RFC 1123), as KServe's route group pattern. */
export const DNS_LABEL = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
/** Gateway API's largest backendRef weight, and KServe's bound for `route.weight`. */
export const MAX_ROUTE_WEIGHT = 1_000_000;

const count = (what: string) =>
  z.int32({ error: `must be a whole number (${what})` }).min(1, { error: `must be at least 1 (${what})` });

const stringMap = z.record(z.string(), z.string());

/** A Kubernetes PodSpec; its fields are checked against the Kubernetes model in `pod-spec.ts`. */
export const PodSpecSchema = z
  .looseObject({
    containers: z.array(z.looseObject({ name: z.string() })).optional(),
    initContainers: z.array(z.looseObject({ name: z.string() })).optional(),
    volumes: z.array(z.looseObject({ name: z.string() })).optional(),
  })
  .meta({ ...PRESERVE, description: 'A Kubernetes PodSpec (core/v1).' });

const LocalObjectReference = z.strictObject({ name: z.string().min(1, { error: 'must not be empty' }) });

export const LoRAAdapterSchema = z
  .looseObject({
    uri: z.string().optional(),
    name: z.string().optional(),
  })
  .meta({
    ...PRESERVE,
    description: 'A LoRA adapter: its uri (hf://, s3://, pvc://) and the model name it serves.',
  });

export const LoRASpecSchema = z.strictObject({
  adapters: z
    .array(LoRAAdapterSchema)
    .optional()
    .meta({ description: 'LoRA adapters loaded with the base model.' }),
  maxRank: count('maxRank').optional().meta({ description: 'vLLM --max-lora-rank.' }),
  maxAdapters: count('maxAdapters').optional().meta({ description: 'vLLM --max-loras.' }),
  maxCpuAdapters: count('maxCpuAdapters').optional().meta({ description: 'vLLM --max-cpu-loras.' }),
});

const Criticality = z.enum(['Critical', 'Standard', 'Sheddable'], {
  error: 'must be one of Critical, Standard, Sheddable',
});

function modelSchema(version: ApiVersionName) {
  return z.strictObject({
    uri: z.string().optional().meta({
      description: 'Where the model comes from: hf://, s3://, gs://, pvc://, oci://, oci+native://.',
    }),
    name: z
      .string()
      .optional()
      .meta({ description: 'The model name clients send; defaults to metadata.name.' }),
    ...(version === 'v1alpha1'
      ? { criticality: Criticality.optional().meta({ description: 'How important serving this model is.' }) }
      : {}),
    lora: LoRASpecSchema.optional(),
  });
}

export const ParallelismSchema = z.strictObject({
  tensor: count('tensor').optional().meta({ description: 'Tensor parallel size (GPUs per node).' }),
  pipeline: count('pipeline').optional().meta({ description: 'Pipeline parallel size (nodes per group).' }),
  data: count('data').optional().meta({ description: 'Data parallel size (ranks in all).' }),
  dataLocal: count('dataLocal').optional().meta({ description: 'Data parallel ranks per node.' }),
  dataRPCPort: z
    .int32({ error: 'must be a port number' })
    .min(1, { error: 'must be a port number from 1 to 65535' })
    .max(65535, { error: 'must be a port number from 1 to 65535' })
    .optional()
    .meta({ description: 'Data parallel RPC port (default 5555).' }),
  expert: z.boolean().optional().meta({ description: 'Enable expert parallelism.' }),
});

const workloadFields = {
  replicas: z
    .int32({ error: 'must be a whole number' })
    .min(0, { error: 'must be 0 or more' })
    .optional()
    .meta({
      description: 'Replicas (groups, for multi-node); unset keeps the live value (for autoscalers).',
    }),
  parallelism: ParallelismSchema.optional(),
  labels: stringMap.optional().meta({ description: 'Labels added to the workload pods.' }),
  annotations: stringMap.optional().meta({ description: 'Annotations added to the workload pods.' }),
  template: PodSpecSchema.optional(),
  worker: PodSpecSchema.optional(),
  ...workloadV020Fields,
};

export const WorkloadSpecSchema = z.strictObject(workloadFields);

/** InferencePool spec in the GIE v1 shape (stored in v1alpha2). */
const PoolSpecV1 = z
  .looseObject({
    selector: z.looseObject({ matchLabels: stringMap.optional() }).optional(),
    targetPorts: z.array(z.looseObject({ number: z.int32() })).optional(),
    endpointPickerRef: z
      .looseObject({
        name: z.string().optional(),
        kind: z.string().optional(),
        group: z.string().optional(),
        port: z.looseObject({ number: z.int32() }).optional(),
        failureMode: z.string().optional(),
      })
      .optional(),
  })
  .meta({ ...PRESERVE, description: 'An InferencePool spec (inference.networking.k8s.io/v1).' });

/** InferencePool spec in the older GIE v1alpha2 shape (v1alpha1 of this API). */
const PoolSpecV1alpha2 = z
  .looseObject({
    selector: stringMap.optional(),
    targetPortNumber: z.int32().optional(),
    extensionRef: z
      .looseObject({
        name: z.string().optional(),
        kind: z.string().optional(),
        group: z.string().optional(),
        portNumber: z.int32().optional(),
        failureMode: z.string().optional(),
      })
      .optional(),
  })
  .meta({ ...PRESERVE, description: 'An InferencePool spec (inference.networking.x-k8s.io/v1alpha2).' });

function routerSchema(version: ApiVersionName) {
  return z.strictObject({
    route: z
      .strictObject({
        group: z
          .string()
          .max(63, { error: 'must be at most 63 characters (a DNS label)' })
          .regex(DNS_LABEL, {
            error:
              'must be a DNS label: lowercase letters, digits and "-", starting and ending with a letter or digit',
          })
          .optional()
          .meta({
            description:
              'The routing group: services of one group in a namespace split the traffic for their shared model name by weight.',
          }),
        weight: z
          .int32({ error: 'must be a whole number' })
          .min(0, { error: 'must be 0 or more' })
          .max(MAX_ROUTE_WEIGHT, { error: `must be at most ${MAX_ROUTE_WEIGHT}` })
          .optional()
          .meta({
            description:
              "This member's share of the group's traffic, proportional to the other members' (Gateway API backendRef weight).",
          }),
        http: z
          .strictObject({
            refs: z
              .array(LocalObjectReference)
              .optional()
              .meta({ description: 'Existing HTTPRoutes to use.' }),
            spec: z
              .looseObject({})
              .optional()
              .meta({ ...PRESERVE, description: 'An HTTPRoute spec for the managed route.' }),
          })
          .optional(),
      })
      .optional()
      .meta({ description: 'Gateway API route; `{}` means a managed HTTPRoute.' }),
    gateway: z
      .strictObject({
        refs: z
          .array(
            z.strictObject({
              name: z.string().min(1, { error: 'must not be empty' }),
              namespace: z.string().optional(),
              sectionName: z.string().optional(),
            }),
          )
          .optional()
          .meta({ description: 'Existing Gateways the route attaches to.' }),
      })
      .optional()
      .meta({ description: 'Gateway API gateway; `{}` means the default Gateway.' }),
    ingress: z
      .strictObject({
        refs: z
          .array(
            z.strictObject({
              name: z.string().min(1, { error: 'must not be empty' }),
              namespace: z.string().optional(),
            }),
          )
          .optional()
          .meta({ description: 'Existing Ingresses that expose the workload Service (bring your own).' }),
      })
      .optional()
      .meta({
        description: 'A Kubernetes Ingress instead of the Gateway API; exclusive with route and gateway.',
      }),
    scheduler: z
      .strictObject({
        pool: z
          .strictObject({
            spec: (version === 'v1alpha1' ? PoolSpecV1alpha2 : PoolSpecV1).optional(),
            ref: LocalObjectReference.optional().meta({ description: 'An existing InferencePool to use.' }),
          })
          .optional(),
        labels: stringMap.optional(),
        annotations: stringMap.optional(),
        template: PodSpecSchema.optional(),
        tokenizer: z
          .strictObject({
            template: z
              .looseObject({})
              .optional()
              .meta({
                ...PRESERVE,
                description:
                  'A container run beside the Endpoint Picker as its tokenizer sidecar (name: tokenizer).',
              }),
          })
          .optional()
          .meta({ description: 'The tokenizer sidecar of the Endpoint Picker pod.' }),
        config: z
          .strictObject({
            inline: z
              .looseObject({})
              .optional()
              .meta({ ...PRESERVE, description: 'An inline EndpointPickerConfig.' }),
            ref: z
              .strictObject({
                name: z.string().min(1),
                // Empty or unset means `epp`, as KServe reads it; the format is checked with the other rules.
                key: z.string().optional(),
                optional: z.boolean().optional(),
              })
              .optional()
              .meta({ description: 'A ConfigMap key holding an EndpointPickerConfig.' }),
          })
          .optional(),
        replicas: z
          .int32({ error: 'must be a whole number' })
          .min(0, { error: 'must be 0 or more' })
          .optional()
          .meta({ description: 'Endpoint Picker replicas.' }),
      })
      .optional()
      .meta({ description: 'The Endpoint Picker (GIE scheduler); `{}` means a managed pool and picker.' }),
  });
}

export function specSchema(version: ApiVersionName) {
  return z.strictObject({
    model: modelSchema(version).optional(),
    ...workloadFields,
    prefill: WorkloadSpecSchema.optional().meta({ description: 'A separate prefill workload (P/D).' }),
    router: routerSchema(version).optional(),
    tracing: TracingSchema.optional(),
    baseRefs: z
      .array(LocalObjectReference)
      .optional()
      .meta({ description: 'LLMInferenceServiceConfigs merged under this spec, later wins.' }),
    storageInitializer: z
      .strictObject({ enabled: z.boolean().optional() })
      .optional()
      .meta({ description: 'The model download init container; enabled by default.' }),
  });
}

const Condition = z.looseObject({
  type: z.string(),
  status: z.enum(['True', 'False', 'Unknown']),
  reason: z.string().optional(),
  message: z.string().optional(),
  lastTransitionTime: z.string().optional(),
  severity: z.string().optional(),
  observedGeneration: z.int().optional(),
});

/** Gateway API's ObjectReference: group (`` for core), kind, name and namespace. */
const ObjectReference = z.looseObject({
  group: z.string(),
  kind: z.string(),
  name: z.string(),
  namespace: z.string().optional(),
});

/** Kubernetes' TypedLocalObjectReference: an object in the service's namespace; no apiGroup means core. */
const TypedLocalObjectReference = z.looseObject({
  apiGroup: z.string().optional(),
  kind: z.string(),
  name: z.string(),
});

const ServiceReference = z.looseObject({ name: z.string(), namespace: z.string().optional() });

/** The status KServe v0.20 writes; loose, so fields a newer controller adds survive a round trip. */
export const StatusSchema = z.looseObject({
  url: z.string().optional(),
  addresses: z
    .array(
      z.looseObject({
        url: z.string().optional(),
        name: z.string().optional(),
        origin: ObjectReference.optional().meta({
          description: 'The networking object that gives this address (a Gateway, Ingress or Service).',
        }),
      }),
    )
    .optional(),
  conditions: z.array(Condition).optional(),
  observedGeneration: z.int().optional(),
  router: z
    .looseObject({
      gateways: z
        .array(
          ObjectReference.extend({
            listeners: z.array(z.string()).optional(),
            httpRoutes: z.array(ObjectReference).optional(),
          }),
        )
        .optional(),
      scheduler: z
        .looseObject({
          inferencePool: ObjectReference.optional(),
          service: ObjectReference.optional(),
        })
        .optional(),
      group: z
        .looseObject({
          name: z.string(),
          members: z
            .array(
              z.looseObject({
                name: z.string(),
                weight: z.int().optional(),
                effectiveWeight: z.int().optional(),
                ready: z.boolean().optional(),
                stopped: z.boolean().optional(),
              }),
            )
            .max(100)
            .optional(),
        })
        .optional()
        .meta({
          description:
            'The routing group this service is in: every member with its configured and effective (routed) weight.',
        }),
    })
    .optional()
    .meta({ description: 'The networking objects observed for this service; absent while it is stopped.' }),
  workloads: z
    .looseObject({
      primary: TypedLocalObjectReference.optional(),
      prefill: TypedLocalObjectReference.optional(),
      service: TypedLocalObjectReference.optional(),
      scheduler: TypedLocalObjectReference.optional(),
    })
    .optional()
    .meta({ description: 'The workload objects observed for this service.' }),
  appliedConfigs: z
    .array(
      z.looseObject({
        name: z.string(),
        namespace: z.string(),
        source: z.enum(['Preset', 'UserRef']),
      }),
    )
    .optional()
    .meta({
      description:
        'The LLMInferenceServiceConfigs merged into the spec, lowest precedence first (presets, then baseRefs).',
    }),
});

/** A LLMInferenceServiceConfig's status: ConfigInUse and the services that use it. */
export const ConfigStatusSchema = z.looseObject({
  conditions: z.array(Condition).optional(),
  // The controller lists at most 100 (controller/status.ts REFERENCED_BY_LIMIT); the API server holds it to that.
  referencedBy: z.array(ServiceReference).max(100).optional().meta({
    description:
      'LLMInferenceServices that use this config (baseRefs or preset), sorted by namespace/name; at most 100 (the ConfigInUse condition gives the count).',
  }),
});

export const ObjectMetaSchema = z.looseObject({
  name: z.string().optional(),
  namespace: z.string().optional(),
  uid: z.string().optional(),
  generation: z.int().optional(),
  labels: stringMap.optional(),
  annotations: stringMap.optional(),
});

export const SpecV1alpha2 = specSchema('v1alpha2');
export const SpecV1alpha1 = specSchema('v1alpha1');

export type LLMInferenceServiceSpec = z.infer<typeof SpecV1alpha2>;
export type LLMInferenceServiceSpecV1alpha1 = z.infer<typeof SpecV1alpha1>;
export type WorkloadSpec = z.infer<typeof WorkloadSpecSchema>;
export type ParallelismSpec = z.infer<typeof ParallelismSchema>;
export type LoRAAdapter = z.infer<typeof LoRAAdapterSchema>;
export type LLMInferenceServiceStatus = z.infer<typeof StatusSchema>;
export type ObjectMeta = z.infer<typeof ObjectMetaSchema>;
export type Criticality = z.infer<typeof Criticality>;

export const KINDS = ['LLMInferenceService', 'LLMInferenceServiceConfig'] as const;
export type Kind = (typeof KINDS)[number];

export interface LLMInferenceService {
  apiVersion: `${typeof GROUP}/v1alpha2`;
  kind: 'LLMInferenceService';
  metadata: ObjectMeta & { name: string };
  spec: LLMInferenceServiceSpec;
  status?: LLMInferenceServiceStatus;
}

export interface LLMInferenceServiceConfig {
  apiVersion: `${typeof GROUP}/v1alpha2`;
  kind: 'LLMInferenceServiceConfig';
  metadata: ObjectMeta & { name: string };
  spec: LLMInferenceServiceSpec;
}

/** A pod spec as the renderer handles it: the fields it touches are typed, the rest passes through. */
export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  ports?: { containerPort: number; name?: string; protocol?: string }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  [field: string]: unknown;
}

export interface PodSpec {
  containers?: Container[];
  initContainers?: Container[];
  volumes?: { name: string; [field: string]: unknown }[];
  [field: string]: unknown;
}
