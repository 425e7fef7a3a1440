/**
 * @module api/validate
 * Checks an LLMInferenceService spec and reports every problem at once as `<field path>: <message>`, in words that
 * say what to change. Structural checks (types, unknown fields, minimums) come from the schema; the cross-field
 * rules below are the ones KServe's admission webhook enforces, so a manifest valid here is valid there.
 */
import type { z } from 'zod';
import type { FieldProblem } from '../errors/index.js';
import { podSpecProblems } from './pod-spec.js';
import { workloadV020Problems } from './workload-v020.js';
import {
  type ApiVersionName,
  type LLMInferenceServiceSpec,
  type ParallelismSpec,
  SpecV1alpha1,
  SpecV1alpha2,
  type WorkloadSpec,
} from './schema.js';

/** Joins a path of keys and indexes the way users read it: `spec.router.gateway.refs[0].name`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${JSON.stringify(value)}`;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let current: unknown = root;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

const EXPECTED_WORDS: Record<string, string> = {
  object: 'an object (a mapping of fields)',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
};

function issueProblems(issue: z.core.$ZodIssue, root: unknown, prefix: string): FieldProblem[] {
  const at = (path: readonly PropertyKey[]) => formatPath([prefix, ...path]);
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => ({
        path: at([...issue.path, key]),
        message: `unknown field "${key}"; check its spelling and indentation against the LLMInferenceService API (see deploy/crds)`,
      }));
    case 'invalid_type': {
      const value = valueAt(root, issue.path);
      if (value === undefined) return [{ path: at(issue.path), message: 'is required' }];
      const expected = EXPECTED_WORDS[issue.expected] ?? issue.expected;
      return [{ path: at(issue.path), message: `must be ${expected}, not ${describeValue(value)}` }];
    }
    case 'invalid_value':
      return [{ path: at(issue.path), message: issue.message }];
    default:
      return [{ path: at(issue.path), message: issue.message }];
  }
}

/** Type, shape and unknown-field problems of a spec in the given API version. */
export function structuralProblems(spec: unknown, version: ApiVersionName, prefix = 'spec'): FieldProblem[] {
  const schema = version === 'v1alpha1' ? SpecV1alpha1 : SpecV1alpha2;
  const result = schema.safeParse(spec);
  const problems = result.success ? [] : result.error.issues.flatMap((i) => issueProblems(i, spec, prefix));
  return [...problems, ...podSpecsProblems(spec, prefix)];
}

/** Every PodSpec in a spec, with its path, for the field-name checks. */
function podSpecsProblems(spec: unknown, prefix: string): FieldProblem[] {
  if (spec === null || typeof spec !== 'object') return [];
  const s = spec as Record<string, Record<string, unknown> | undefined>;
  const places: [unknown, string][] = [
    [s['template'], `${prefix}.template`],
    [s['worker'], `${prefix}.worker`],
    [s['prefill']?.['template'], `${prefix}.prefill.template`],
    [s['prefill']?.['worker'], `${prefix}.prefill.worker`],
    [
      (s['router']?.['scheduler'] as Record<string, unknown> | undefined)?.['template'],
      `${prefix}.router.scheduler.template`,
    ],
  ];
  return places.flatMap(([value, path]) => (value === undefined ? [] : podSpecProblems(value, path)));
}

function parallelismProblems(workload: WorkloadSpec, path: string): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const p: ParallelismSpec = workload.parallelism ?? {};
  const isData = p.data !== undefined || p.dataLocal !== undefined;
  const isPipeline = p.pipeline !== undefined;
  if (workload.worker !== undefined && !isData && !isPipeline) {
    problems.push({
      path: `${path}.worker`,
      message:
        'a multi-node workload needs data or pipeline parallelism: set parallelism.data and parallelism.dataLocal ' +
        '(data parallel), or parallelism.pipeline (pipeline parallel)',
    });
  }
  if (isPipeline && isData) {
    problems.push({
      path: `${path}.parallelism`,
      message: 'pipeline cannot be combined with data or dataLocal; choose pipeline or data parallelism',
    });
  }
  if (p.data !== undefined && p.dataLocal === undefined) {
    problems.push({
      path: `${path}.parallelism.dataLocal`,
      message: 'is required when data is set: give the data parallel ranks per node',
    });
  }
  if (p.dataLocal !== undefined && p.data === undefined) {
    problems.push({
      path: `${path}.parallelism.data`,
      message: 'is required when dataLocal is set: give the total data parallel ranks',
    });
  }
  return problems;
}

function routerProblems(spec: LLMInferenceServiceSpec): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const router = spec.router;
  const http = router?.route?.http;
  const routeRefs = http?.refs ?? [];
  const gatewayRefs = router?.gateway?.refs ?? [];
  if (routeRefs.length > 0 && http?.spec !== undefined) {
    problems.push({
      path: 'spec.router.route.http',
      message: 'refs and spec cannot both be set: use refs for existing HTTPRoutes or spec for a managed one',
    });
  }
  if (routeRefs.length > 0 && router?.gateway !== undefined && gatewayRefs.length === 0) {
    problems.push({
      path: 'spec.router.route.http.refs',
      message:
        'existing HTTPRoutes cannot be attached to the managed gateway: remove spec.router.gateway, or list ' +
        'your Gateways in spec.router.gateway.refs',
    });
  }
  const route = router?.route;
  if (route !== undefined && (route.group === undefined) !== (route.weight === undefined)) {
    problems.push({
      path: route.group === undefined ? 'spec.router.route.group' : 'spec.router.route.weight',
      message:
        route.group === undefined
          ? 'is required with spec.router.route.weight: name the routing group this service splits traffic with'
          : 'is required with spec.router.route.group: give this member its share of the group (0 to 1000000)',
    });
  }
  if (route?.group !== undefined && (route.http?.refs?.length ?? 0) > 0) {
    problems.push({
      path: 'spec.router.route.group',
      message:
        'cannot be used with route.http.refs: a routing group needs the managed HTTPRoute (remove refs, or the group)',
    });
  }
  if (router?.ingress !== undefined) {
    for (const other of ['route', 'gateway'] as const) {
      if (router[other] === undefined) continue;
      problems.push({
        path: `spec.router.${other}`,
        message: `cannot be set together with spec.router.ingress: expose the service through an Ingress or through the Gateway API, not both`,
      });
    }
  }
  const scheduler = router?.scheduler;
  const config = scheduler?.config;
  if (config !== undefined) {
    if (config.inline !== undefined && config.ref !== undefined) {
      problems.push({
        path: 'spec.router.scheduler.config',
        message:
          'inline and ref cannot both be set: keep the inline EndpointPickerConfig or the ConfigMap ref',
      });
    } else if (config.ref?.key && !CONFIG_MAP_KEY.test(config.ref.key)) {
      // The key becomes a file name under the mounted ConfigMap: what the API server allows as a key, and no more.
      problems.push({
        path: 'spec.router.scheduler.config.ref.key',
        message: `"${config.ref.key.slice(0, 64)}" is not a ConfigMap key: letters, digits, "-", "_" and "." only, not "." or ".."`,
      });
    } else if (config.inline === undefined && config.ref === undefined) {
      problems.push({
        path: 'spec.router.scheduler.config',
        message:
          'needs either inline (an EndpointPickerConfig) or ref (a ConfigMap key); or remove config for the default',
      });
    }
  }
  if (scheduler?.pool?.spec !== undefined && scheduler.pool.ref !== undefined) {
    problems.push({
      path: 'spec.router.scheduler.pool',
      message:
        'spec and ref cannot both be set: use ref for an existing InferencePool or spec for a managed one',
    });
  }
  return problems;
}

function loraProblems(spec: LLMInferenceServiceSpec, serviceName: string): FieldProblem[] {
  const adapters = spec.model?.lora?.adapters ?? [];
  const baseName = spec.model?.name ?? serviceName;
  const seen = new Map<string, number>();
  const problems: FieldProblem[] = [];
  adapters.forEach((adapter, index) => {
    const path = `spec.model.lora.adapters[${index}].name`;
    const name = adapter.name;
    if (name === undefined || name.trim() === '') {
      problems.push({ path, message: 'is required: the model name clients use to select this adapter' });
      return;
    }
    if (name === '.' || name === '..' || name.includes('..') || name.includes('/')) {
      problems.push({
        path,
        message: `"${name}" is not a valid adapter name: it must not be "." or ".." or contain ".." or "/" (it names a directory)`,
      });
    }
    if (name === baseName) {
      problems.push({
        path,
        message: `"${name}" is the base model's name; give the adapter a name of its own`,
      });
    }
    const first = seen.get(name);
    if (first !== undefined) {
      problems.push({
        path,
        message: `"${name}" is already used by spec.model.lora.adapters[${first}]; names must be unique`,
      });
    } else {
      seen.set(name, index);
    }
    if (adapter.uri === undefined || adapter.uri === '') {
      problems.push({
        path: `spec.model.lora.adapters[${index}].uri`,
        message: 'is required: where the adapter comes from',
      });
    }
  });
  return problems;
}

/** A ConfigMap data key, as the API server checks it (IsConfigMapKey), up to its 253 characters. */
const CONFIG_MAP_KEY = /^(?!\.{1,2}$)[-._a-zA-Z0-9]{1,253}$/;

/** Characters a double-quoted shell word runs or ends: `"`, `$`, backquote, backslash; and control characters. */
// eslint-disable-next-line no-control-regex -- control characters are what this looks for
const SHELL_ACTIVE_IN_QUOTES = /["$`\\\u0000-\u001f\u007f]/;

/**
 * The model name goes into the model servers' start scripts between double quotes (`--served-model-name
 * "{{ .Spec.Model.Name }}"`, in the presets and in KServe's), where these characters would end the word or run
 * commands: refused, as no served model name needs them.
 */
function modelNameProblems(spec: LLMInferenceServiceSpec): FieldProblem[] {
  const name = spec.model?.name;
  const found = name === undefined ? null : SHELL_ACTIVE_IN_QUOTES.exec(name);
  if (!found) return [];
  const character = found[0] < ' ' || found[0] === '\u007f' ? 'a control character' : `'${found[0]}'`;
  return [
    {
      path: 'spec.model.name',
      message: `must not contain ${character}: the name is pasted between double quotes into the model servers' start scripts, where " $ \` \\ and control characters end the word or run commands`,
    },
  ];
}

/**
 * Rules about what a user writes, which presets may legitimately break: the route preset supplies parentRefs that
 * `gateway.refs` then replace, so this runs on the service's own spec only.
 */
export function ownSpecProblems(spec: LLMInferenceServiceSpec): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const parentRefs =
    (spec.router?.route?.http?.spec as { parentRefs?: unknown[] } | undefined)?.parentRefs ?? [];
  if (parentRefs.length > 0 && (spec.router?.gateway?.refs ?? []).length > 0) {
    problems.push({
      path: 'spec.router.route.http.spec.parentRefs',
      message:
        'cannot be set together with spec.router.gateway.refs: remove one of them (the refs become the parentRefs)',
    });
  }
  // As KServe's webhook. A service's own rule, not the merged spec's: one stored before this rule, or scaled to 0 by
  // a config, still renders, and `llmisvc doctor` explains why nothing routes.
  const schedulerReplicas = spec.router?.scheduler?.replicas;
  if (schedulerReplicas !== undefined && schedulerReplicas <= 0) {
    problems.push({
      path: 'spec.router.scheduler.replicas',
      message: `must be greater than zero, got ${schedulerReplicas}: a pool whose Endpoint Picker does not run routes nothing; without a scheduler remove spec.router.scheduler`,
    });
  }
  return problems;
}

/**
 * The cross-field rules on a structurally valid spec (the rules KServe's webhook enforces), which hold for the
 * service's own spec and for the merged one.
 * @param serviceName metadata.name, the default model name.
 */
export function semanticProblems(spec: LLMInferenceServiceSpec, serviceName: string): FieldProblem[] {
  return [
    ...parallelismProblems(spec, 'spec'),
    ...(spec.prefill ? parallelismProblems(spec.prefill, 'spec.prefill') : []),
    ...workloadV020Problems(spec, 'spec'),
    ...(spec.prefill ? workloadV020Problems(spec.prefill, 'spec.prefill') : []),
    ...routerProblems(spec),
    ...loraProblems(spec, serviceName),
    ...modelNameProblems(spec),
    ...podMetadataProblems(spec),
  ];
}

/** Problems with a service or config name: children are named after it and labelled with it. */
export function nameProblems(name: unknown, path = 'metadata.name'): FieldProblem[] {
  if (typeof name !== 'string' || name === '') return [{ path, message: 'is required' }];
  if (name.length > 63) {
    return [
      { path, message: `"${name}" is ${name.length} characters; use at most 63 (it becomes a label value)` },
    ];
  }
  if (!/^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(name)) {
    return [
      {
        path,
        message: `"${name}" must be a DNS label: lower-case letters, digits and "-", starting with a letter and not ending with "-"`,
      },
    ];
  }
  return [];
}

/** A qualified name's name part (labels and annotation keys alike): at most 63 characters. */
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
/** A DNS subdomain, the optional prefix of a key: lower case, at most 253 characters. */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** A label value: empty, or a qualified name's shape, at most 63 characters. */
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
/** The API server's bound on all of an object's annotations together (keys and values), in bytes. */
const ANNOTATIONS_LIMIT = 256 * 1024;
/**
 * Labels the picker's pods must not carry: `kserve.io/component: workload` puts a pod into the InferencePool, and the
 * picker would route to itself. Model-server pods may (KServe's multi-vendor sample shares one pool that way).
 */
const CONTROLLER_LABELS = new Set(['kserve.io/component']);

/** What is wrong with a label or annotation key, as the API server checks it; undefined when nothing is. */
function keyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix)))
    return 'its prefix (before "/") must be a DNS subdomain: lower-case letters, digits, "-" and ".", at most 253 characters';
  if (name.length > 63 || !QUALIFIED_NAME.test(name))
    return 'its name must be at most 63 letters, digits, "-", "_" or ".", beginning and ending with a letter or digit';
  return undefined;
}

/** Shown in a message: a key or value as JSON, cut short. */
function quoted(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}

/**
 * The labels and annotations a spec puts on pods, checked as the API server will check them on the children (which
 * it would refuse one by one, long after the service was accepted). Values holding a template (`{{ … }}`) are checked
 * once rendered, in the merged spec.
 */
function podMetadataProblems(spec: LLMInferenceServiceSpec): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const maps: [string, Record<string, string> | undefined, 'labels' | 'annotations'][] = [
    ['spec.labels', spec.labels, 'labels'],
    ['spec.annotations', spec.annotations, 'annotations'],
    ['spec.prefill.labels', spec.prefill?.labels, 'labels'],
    ['spec.prefill.annotations', spec.prefill?.annotations, 'annotations'],
    ['spec.router.scheduler.labels', spec.router?.scheduler?.labels, 'labels'],
    ['spec.router.scheduler.annotations', spec.router?.scheduler?.annotations, 'annotations'],
  ];
  for (const [path, map, kind] of maps) {
    let bytes = 0;
    for (const [key, value] of Object.entries(map ?? {})) {
      const at = `${path}[${quoted(key)}]`;
      bytes += Buffer.byteLength(key) + Buffer.byteLength(String(value));
      if (key.includes('{{')) continue;
      const problem = keyProblem(key);
      if (problem) problems.push({ path: at, message: `${quoted(key)} is not a valid key: ${problem}` });
      if (kind !== 'labels') continue;
      if (path === 'spec.router.scheduler.labels' && CONTROLLER_LABELS.has(key))
        problems.push({
          path: at,
          message:
            "would put the Endpoint Picker's own pods into its InferencePool (it selects on this label); remove it",
        });
      const text = String(value);
      if (!text.includes('{{') && (text.length > 63 || !LABEL_VALUE.test(text)))
        problems.push({
          path: at,
          message: `${quoted(text)} is not a valid label value: at most 63 letters, digits, "-", "_" or ".", beginning and ending with a letter or digit (or empty)`,
        });
    }
    if (kind === 'annotations' && bytes > ANNOTATIONS_LIMIT)
      problems.push({
        path,
        message: `${bytes} bytes of ${kind}: the API server takes at most ${ANNOTATIONS_LIMIT} bytes on one object`,
      });
  }
  return problems;
}
