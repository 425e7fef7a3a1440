/**
 * @module api/crd
 * The CustomResourceDefinitions, generated from the zod schemas in schema.ts (`npm run generate` writes them to
 * deploy/crds/). zod emits OpenAPI 3.0 JSON Schema; Kubernetes wants a *structural* schema, so `toStructural`
 * drops what the API server rejects (`additionalProperties: false`, `propertyNames`) and states int32 formats.
 * The cross-field rules that CEL can express run in the API server itself (`x-kubernetes-validations`); the rest
 * are the validating webhook's job.
 */
import { z } from 'zod';
import {
  ConfigStatusSchema,
  GROUP,
  SERVED_VERSIONS,
  STORAGE_VERSION,
  StatusSchema,
  specSchema,
} from './schema.js';
import { workloadV020CelRules } from './workload-v020.js';

type Schema = Record<string, unknown>;

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/** Rewrites zod's OpenAPI output into a Kubernetes structural schema (recursively). */
export function toStructural(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toStructural);
  if (node === null || typeof node !== 'object') return node;
  const out: Schema = {};
  for (const [key, value] of Object.entries(node as Schema)) {
    if (key === '$schema' || key === 'propertyNames' || key === 'id') continue;
    if (key === 'additionalProperties' && value === false) continue;
    // A loose object (zod's `additionalProperties: {}`) keeps fields it does not list: without this the API
    // server would prune, say, `resources` from the containers of a pod spec.
    if (key === 'additionalProperties' && isEmptyObject(value)) {
      out['x-kubernetes-preserve-unknown-fields'] = true;
      continue;
    }
    out[key] = toStructural(value);
  }
  if (out['type'] === 'integer') {
    const min = out['minimum'];
    const max = out['maximum'];
    if (typeof min === 'number' && typeof max === 'number' && min >= INT32_MIN && max <= INT32_MAX) {
      out['format'] = 'int32';
    }
    if (max === INT32_MAX || max === Number.MAX_SAFE_INTEGER) delete out['maximum'];
    if (min === INT32_MIN || min === Number.MIN_SAFE_INTEGER) delete out['minimum'];
  }
  if (out['x-kubernetes-int-or-string'] === true && Array.isArray(out['anyOf'])) {
    // Structural schemas allow exactly `anyOf: [{type: integer}, {type: string}]` here; the checks of each branch
    // move up, where each applies to its own type only (pattern to strings, minimum to numbers).
    for (const branch of out['anyOf'] as Schema[]) {
      for (const key of ['pattern', 'minimum', 'maximum']) if (key in branch) out[key] = branch[key];
    }
    out['anyOf'] = [{ type: 'integer' }, { type: 'string' }];
  }
  return out;
}

function isEmptyObject(value: unknown): boolean {
  return value !== null && typeof value === 'object' && Object.keys(value).length === 0;
}

function jsonSchema(schema: z.ZodType): Schema {
  return toStructural(z.toJSONSchema(schema, { target: 'openapi-3.0', unrepresentable: 'any' })) as Schema;
}

/** Adds a CEL rule at a path of property names inside a schema. */
function addRule(schema: Schema, path: string[], rule: string, message: string): void {
  let node = schema;
  for (const key of path) node = (node['properties'] as Record<string, Schema>)[key]!;
  const rules = (node['x-kubernetes-validations'] as unknown[] | undefined) ?? [];
  node['x-kubernetes-validations'] = [...rules, { rule, message }];
}

const WORKER_RULE =
  '!has(self.worker) || (has(self.parallelism) && (has(self.parallelism.data) || has(self.parallelism.pipeline)))';
const WORKER_MESSAGE =
  'worker needs data or pipeline parallelism: set parallelism.data and parallelism.dataLocal, or parallelism.pipeline';

/** CEL versions of the webhook's rules, on the service's own spec (configs may hold partial specs). */
function addServiceRules(spec: Schema): void {
  for (const base of [[], ['prefill']]) {
    addRule(spec, base, WORKER_RULE, WORKER_MESSAGE);
    addRule(
      spec,
      [...base, 'parallelism'],
      '!(has(self.pipeline) && (has(self.data) || has(self.dataLocal)))',
      'pipeline cannot be combined with data or dataLocal; choose pipeline or data parallelism',
    );
    addRule(
      spec,
      [...base, 'parallelism'],
      'has(self.data) == has(self.dataLocal)',
      'data and dataLocal must be set together',
    );
    for (const { path, rule, message } of workloadV020CelRules(base)) addRule(spec, path, rule, message);
  }
  addRule(
    spec,
    ['router', 'route', 'http'],
    '!(has(self.refs) && size(self.refs) > 0 && has(self.spec))',
    'refs and spec cannot both be set: use refs for existing HTTPRoutes or spec for a managed one',
  );
  addRule(
    spec,
    ['router', 'route'],
    'has(self.group) == has(self.weight)',
    'group and weight must be set together: a routing group member needs its weight, and a weight needs its group',
  );
  addRule(
    spec,
    ['router', 'route'],
    '!has(self.group) || !has(self.http) || !has(self.http.refs) || size(self.http.refs) == 0',
    'group cannot be used with http.refs: a routing group needs the managed HTTPRoute',
  );
  addRule(
    spec,
    ['router'],
    '!has(self.ingress) || (!has(self.route) && !has(self.gateway))',
    'ingress cannot be set together with route or gateway: expose the service through an Ingress or the Gateway API',
  );
  addRule(
    spec,
    ['router', 'scheduler', 'config'],
    'has(self.inline) != has(self.ref)',
    'set exactly one of inline (an EndpointPickerConfig) or ref (a ConfigMap key)',
  );
}

function versionSchema(
  kind: 'LLMInferenceService' | 'LLMInferenceServiceConfig',
  version: (typeof SERVED_VERSIONS)[number],
) {
  const spec = jsonSchema(specSchema(version));
  if (kind === 'LLMInferenceService') addServiceRules(spec);
  return {
    type: 'object',
    description:
      kind === 'LLMInferenceService'
        ? 'An LLM served on Kubernetes: model servers, routing and the Endpoint Picker, made from one spec.'
        : 'A reusable, partial LLMInferenceService spec, merged into services through baseRefs or as a preset.',
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
      spec,
      status: jsonSchema(kind === 'LLMInferenceService' ? StatusSchema : ConfigStatusSchema),
    },
  };
}

const SERVICE_COLUMNS = [
  { name: 'URL', type: 'string', jsonPath: '.status.url' },
  { name: 'Ready', type: 'string', jsonPath: ".status.conditions[?(@.type=='Ready')].status" },
  { name: 'Reason', type: 'string', jsonPath: ".status.conditions[?(@.type=='Ready')].reason" },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
];
const CONFIG_COLUMNS = [
  { name: 'InUse', type: 'string', jsonPath: ".status.conditions[?(@.type=='ConfigInUse')].status" },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
];

export interface CrdOptions {
  /** Namespace and name of the controller's webhook Service, which serves conversion. */
  webhookService: { namespace: string; name: string };
}

export const DEFAULT_CRD_OPTIONS: CrdOptions = {
  webhookService: { namespace: 'llmisvc-system', name: 'llmisvc-webhook' },
};

/** The CRD for one of the two kinds, with both served versions and webhook conversion. */
export function customResourceDefinition(
  kind: 'LLMInferenceService' | 'LLMInferenceServiceConfig',
  options: CrdOptions = DEFAULT_CRD_OPTIONS,
): Schema {
  const plural = kind.toLowerCase() + 's';
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${plural}.${GROUP}`,
      labels: { 'app.kubernetes.io/part-of': 'llmisvc' },
    },
    spec: {
      group: GROUP,
      names: {
        kind,
        listKind: `${kind}List`,
        plural,
        singular: kind.toLowerCase(),
        ...(kind === 'LLMInferenceService' ? { shortNames: ['llmisvc'] } : { shortNames: ['llmisvcconfig'] }),
        // Not 'llmisvc': a category equal to the short name makes kubectl expand `get llmisvc NAME` to both kinds.
        categories: ['kserve'],
      },
      scope: 'Namespaced',
      conversion: {
        strategy: 'Webhook',
        webhook: {
          conversionReviewVersions: ['v1'],
          clientConfig: {
            service: { ...options.webhookService, path: '/convert', port: 443 },
          },
        },
      },
      versions: SERVED_VERSIONS.map((version) => ({
        name: version,
        served: true,
        storage: version === STORAGE_VERSION,
        subresources: { status: {} },
        additionalPrinterColumns: kind === 'LLMInferenceService' ? SERVICE_COLUMNS : CONFIG_COLUMNS,
        schema: { openAPIV3Schema: versionSchema(kind, version) },
      })),
    },
  };
}

/** Both CRDs, keyed by the file name they are written to under deploy/crds/. */
export function customResourceDefinitions(options: CrdOptions = DEFAULT_CRD_OPTIONS): Record<string, Schema> {
  return {
    'serving.kserve.io_llminferenceservices.yaml': customResourceDefinition('LLMInferenceService', options),
    'serving.kserve.io_llminferenceserviceconfigs.yaml': customResourceDefinition(
      'LLMInferenceServiceConfig',
      options,
    ),
  };
}
