/**
 * @module presets
 * Turns a service into its effective spec: chooses the well-known presets (as KServe does), merges presets, then
 * `baseRefs` in list order, then the service's own spec (later wins, strategic-merge semantics), and renders the
 * template expressions in the result.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  childNames,
  type LLMInferenceService,
  type LLMInferenceServiceConfig,
  type LLMInferenceServiceSpec,
  parseDocuments,
  SpecV1alpha2,
  toTypedObject,
} from '../api/index.js';
import { LlmisvcError } from '../errors/index.js';
import { strategicMerge } from './strategic-merge.js';
import { renderTemplates, TemplateError, type TemplateScope } from './template.js';

export { strategicMerge } from './strategic-merge.js';
export { renderString, renderTemplates, TemplateError, type TemplateScope } from './template.js';
export {
  commandWords,
  lastFlagValues,
  runsVllmServer,
  servedModelPath,
  shellCommands,
} from './vllm-flags.js';

/** The folder of the shipped preset files (also applied to clusters by `kubectl apply -k deploy/`). */
export const PRESET_DIR = fileURLToPath(new URL('../../../deploy/presets/', import.meta.url));

export const PRESET_NAMES = [
  'config-llm-template',
  'config-llm-worker-data-parallel',
  'config-llm-worker-pipeline-parallel',
  'config-llm-decode-template',
  'config-llm-decode-worker-data-parallel',
  'config-llm-prefill-template',
  'config-llm-prefill-worker-data-parallel',
  'config-llm-scheduler',
  'config-llm-router-route',
] as const;

/**
 * The prefix KServe gives its well-known configs (`kserve-config-llm-template`; config_merge.go's configPrefix,
 * "kserve-" by default). Manifests written for KServe name them that way in `baseRefs` and in overrides.
 */
export const KSERVE_PRESET_PREFIX = 'kserve-';

/**
 * The names a config may have to be found for `name`, in order of preference within one namespace. Both spellings of
 * a well-known preset name the same role: the KServe spelling first, since the llmisvc spelling is also what
 * `deploy/presets` installs in the system namespace, so only a config named the KServe way is surely an override.
 * @example configNames('config-llm-template') // ['kserve-config-llm-template', 'config-llm-template']
 */
export function configNames(name: string): string[] {
  const preset = name.startsWith(KSERVE_PRESET_PREFIX) ? name.slice(KSERVE_PRESET_PREFIX.length) : name;
  if (!(PRESET_NAMES as readonly string[]).includes(preset)) return [name];
  return [KSERVE_PRESET_PREFIX + preset, preset];
}

/**
 * Values the templates see under `.GlobalConfig`: cluster-wide settings of the controller. The keys of KServe's
 * templateGlobalConfig are all here, so that configs written for KServe render; `InferencePoolNamespacedName`, which
 * depends on the service, is added per service (see `TemplateGlobalConfig`).
 */
export interface GlobalConfig {
  /** The controller's namespace, where shared configs live. */
  SystemNamespace: string;
  IngressGatewayName: string;
  IngressGatewayNamespace: string;
  /** Whether model servers serve TLS; false here (plain HTTP), so KServe's `{{ if .GlobalConfig.EnableTLS }}` is off. */
  EnableTLS: boolean;
  /** KServe's TLS profile for the servers it runs with TLS: empty here, where they serve plain HTTP. */
  TLSMinVersion: string;
  TLSCipherSuites: string;
  TLSCipherSuitesOpenSSL: string;
  /** The header that carries the model name in shared-gateway routing (KServe's default X-Gateway-Model-Name). */
  ModelBasedRoutingHeaderName: string;
  SchedulerImage: string;
  /** The API group of the InferencePool the route points at (v1 preferred when the cluster serves it). */
  InferencePoolGroup: string;
}

/** `.GlobalConfig` as one service's templates see it. */
export interface TemplateGlobalConfig extends GlobalConfig {
  /** `<namespace>/<pool>`: the service's InferencePool (its `pool.ref`, or the managed `<name>-inference-pool`). */
  InferencePoolNamespacedName: string;
}

/** KServe's InferencePoolNamespacedName: the pool a service routes to, from its merged spec. */
function inferencePoolNamespacedName(service: LLMInferenceService, spec: LLMInferenceServiceSpec): string {
  const pool = spec.router?.scheduler?.pool?.ref?.name ?? childNames(service.metadata.name).inferencePool;
  return `${service.metadata.namespace ?? 'default'}/${pool}`;
}

let shipped: LLMInferenceServiceConfig[] | undefined;

/** Reads the preset files that ship with llmisvc (once). */
export function shippedPresets(): LLMInferenceServiceConfig[] {
  shipped ??= loadConfigDir(PRESET_DIR);
  return shipped;
}

/** Reads every LLMInferenceServiceConfig in the YAML files of a folder. */
export function loadConfigDir(dir: string): LLMInferenceServiceConfig[] {
  let files: string[];
  try {
    files = readdirSync(dir)
      .filter((f) => /\.(ya?ml|json)$/.test(f))
      .sort();
  } catch (error) {
    throw new LlmisvcError(
      'LLMISVC_ERR_INPUT',
      `cannot read the config folder ${dir}: ${(error as Error).message}`,
    );
  }
  return files.flatMap((file) =>
    parseDocuments(readFileSync(join(dir, file), 'utf8'), join(dir, file))
      .filter(({ object }) => object['kind'] === 'LLMInferenceServiceConfig')
      .map((sourced) => toTypedObject(sourced) as LLMInferenceServiceConfig),
  );
}

/**
 * The presets a spec needs, in merge order, by KServe's rules: the workload template by topology (prefill?
 * worker? data or pipeline parallel?), the scheduler when it has no pool ref, the route when it has no refs.
 */
export function presetsFor(spec: LLMInferenceServiceSpec): string[] {
  const names: string[] = [];
  const isPipeline = (p?: LLMInferenceServiceSpec['parallelism']) => p?.pipeline !== undefined;
  if (spec.prefill) {
    names.push(
      spec.prefill.worker ? 'config-llm-prefill-worker-data-parallel' : 'config-llm-prefill-template',
    );
    names.push(spec.worker ? 'config-llm-decode-worker-data-parallel' : 'config-llm-decode-template');
  } else if (spec.worker) {
    names.push(
      isPipeline(spec.parallelism)
        ? 'config-llm-worker-pipeline-parallel'
        : 'config-llm-worker-data-parallel',
    );
  } else {
    names.push('config-llm-template');
  }
  const scheduler = spec.router?.scheduler;
  if (scheduler && !scheduler.pool?.ref) names.push('config-llm-scheduler');
  const route = spec.router?.route;
  if (route && !(route.http?.refs && route.http.refs.length > 0)) names.push('config-llm-router-route');
  return names;
}

/** Which keys a template may use at a path of `.Spec`, from the schema; undefined where any key is allowed. */
function specKeysAt(path: readonly string[]): readonly string[] | undefined {
  // zod internals: optional wraps its inner type; objects list their shape; loose objects accept any key.
  type Node = { def: { type: string; innerType?: Node; catchall?: Node }; shape?: Record<string, Node> };
  let node = SpecV1alpha2 as unknown as Node;
  const unwrap = (n: Node) => (n.def.type === 'optional' && n.def.innerType ? n.def.innerType : n);
  for (const key of path) {
    node = unwrap(node);
    const child = node.shape?.[key];
    if (!child) return undefined;
    node = child;
  }
  node = unwrap(node);
  if (node.def.type !== 'object' || !node.shape || node.def.catchall?.def.type === 'unknown')
    return undefined;
  return Object.keys(node.shape);
}

function templateScope(
  service: LLMInferenceService,
  spec: LLMInferenceServiceSpec,
  global: GlobalConfig,
): TemplateScope {
  const meta = service.metadata;
  const globalConfig: TemplateGlobalConfig = {
    ...global,
    InferencePoolNamespacedName: inferencePoolNamespacedName(service, spec),
  };
  return {
    data: {
      ObjectMeta: {
        Name: meta.name,
        Namespace: meta.namespace ?? 'default',
        Labels: meta.labels ?? {},
        Annotations: meta.annotations ?? {},
        UID: meta.uid ?? '',
      },
      Spec: spec,
      GlobalConfig: globalConfig,
    },
    known: (path) => {
      if (path.length === 0) return ['ObjectMeta', 'Spec', 'GlobalConfig'];
      if (path[0] === 'ObjectMeta')
        return path.length === 1 ? ['Name', 'Namespace', 'Labels', 'Annotations', 'UID'] : undefined;
      if (path[0] === 'GlobalConfig') return path.length === 1 ? Object.keys(globalConfig) : undefined;
      return specKeysAt(path.slice(1));
    },
  };
}

export interface ComposeInput {
  service: LLMInferenceService;
  /** LLMInferenceServiceConfigs visible to the service; one named like a preset replaces the shipped preset. */
  configs: readonly LLMInferenceServiceConfig[];
  global: GlobalConfig;
  /** Where to look for configs, in order of preference (the service's namespace, then the system namespace). */
  namespaces: readonly string[];
}

export interface ComposedSpec {
  spec: LLMInferenceServiceSpec;
  /** The configs merged under the service's own spec, in order (presets then baseRefs). */
  applied: string[];
  /** The same configs with the namespace each was resolved from and why it was merged (KServe's appliedConfigs). */
  appliedConfigs: AppliedConfig[];
}

/**
 * A config merged into a service. A shipped preset that the cluster does not hold counts as resolved from the
 * last namespace searched (the system namespace), where KServe keeps its well-known configs.
 */
export interface AppliedConfig {
  name: string;
  namespace: string;
  source: 'Preset' | 'UserRef';
}

/**
 * A config by name, as KServe resolves it: the service's namespace before the system namespace, then (for a preset)
 * the shipped file. A well-known preset answers to both spellings, `config-llm-X` and KServe's `kserve-config-llm-X`
 * (see `configNames` for which wins within one namespace).
 */
function findConfig(name: string, input: ComposeInput): LLMInferenceServiceConfig | undefined {
  const names = configNames(name);
  for (const namespace of input.namespaces) {
    for (const candidate of names) {
      const found = input.configs.find(
        (c) => c.metadata.name === candidate && (c.metadata.namespace ?? namespace) === namespace,
      );
      if (found) return { ...found, metadata: { ...found.metadata, namespace } };
    }
  }
  const shipped = shippedPresets().find((c) => names.includes(c.metadata.name));
  return shipped && { ...shipped, metadata: { ...shipped.metadata, namespace: input.namespaces.at(-1) } };
}

/**
 * The effective spec of a service: presets → baseRefs → own spec, merged, defaulted (`model.name` from
 * metadata.name) and with every template rendered.
 */
export function composeSpec(input: ComposeInput): ComposedSpec {
  const { service } = input;
  const baseRefs = service.spec.baseRefs ?? [];
  const bases = baseRefs.map((ref, index) => {
    const config = findConfig(ref.name, input);
    if (!config) {
      throw new LlmisvcError(
        'LLMISVC_ERR_NOT_FOUND',
        `spec.baseRefs[${index}]: LLMInferenceServiceConfig "${ref.name}" was not found in namespace ${input.namespaces.join(' or ')}`,
        {
          hint:
            'create that LLMInferenceServiceConfig, or pass the folder holding it with --config-dir; shared configs ' +
            "are found in the system namespace (--system-namespace, as the controller's; KServe's is kserve)",
        },
      );
    }
    return config;
  });
  const { baseRefs: _ignored, ...ownSpec } = service.spec;
  const withBases = [...bases.map((b) => b.spec), ownSpec].reduce<LLMInferenceServiceSpec>(
    (merged, next) => strategicMerge(merged, next as Record<string, unknown>),
    {},
  );
  const presets = presetsFor(withBases).map((name) => {
    const preset = findConfig(name, input);
    if (!preset) {
      throw new LlmisvcError(
        'LLMISVC_ERR_NOT_FOUND',
        `the preset LLMInferenceServiceConfig "${name}" is missing`,
        {
          hint: 'reinstall llmisvc (deploy/presets), or create that config in the system namespace',
        },
      );
    }
    return preset;
  });
  let spec = [...presets, ...bases]
    .map((c) => c.spec)
    .concat(ownSpec)
    .reduce<LLMInferenceServiceSpec>(
      (merged, next) => strategicMerge(merged, next as Record<string, unknown>),
      {},
    );
  spec = { ...spec, model: { ...spec.model, name: spec.model?.name ?? service.metadata.name } };
  try {
    spec = renderTemplates(spec, templateScope(service, spec, input.global), 'spec');
  } catch (error) {
    if (!(error instanceof TemplateError)) throw error;
    const sources = [
      ...presets.map((c) => ({
        what: `the preset LLMInferenceServiceConfig "${c.metadata.name}"`,
        spec: c.spec,
      })),
      ...bases.map((c, i) => ({
        what: `LLMInferenceServiceConfig "${c.metadata.name}" (spec.baseRefs[${i}])`,
        spec: c.spec,
      })),
      { what: 'the service', spec: ownSpec },
    ];
    throw templateOrigin(error, sources);
  }
  const resolved = (source: AppliedConfig['source']) => (c: LLMInferenceServiceConfig) => ({
    name: c.metadata.name,
    namespace: c.metadata.namespace ?? '',
    source,
  });
  return {
    spec,
    applied: [...presets, ...bases].map((c) => c.metadata.name),
    appliedConfigs: [...presets.map(resolved('Preset')), ...bases.map(resolved('UserRef'))],
  };
}

/** The path (`spec.a.b[0]`) of the first string under `value` that contains `needle`. */
function pathOf(value: unknown, needle: string, path: string): string | undefined {
  if (typeof value === 'string') return value.includes(needle) ? path : undefined;
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const found = pathOf(item, needle, `${path}[${i}]`);
      if (found) return found;
    }
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      const found = pathOf(item, needle, `${path}.${key}`);
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * Names the config a broken template came from. Templates are rendered on the merged spec, which has lost where each
 * string came from; the last source in merge order that holds the template is the one whose value won.
 */
function templateOrigin(error: TemplateError, sources: { what: string; spec: unknown }[]): TemplateError {
  for (const source of [...sources].reverse()) {
    const field = pathOf(source.spec, error.action, 'spec');
    if (field) return new TemplateError(error.action, `${source.what}, ${field}`, error.problem);
  }
  return error;
}
