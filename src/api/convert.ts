/**
 * @module api/convert
 * Conversion between the served versions, as pure functions on whole objects (what the conversion webhook
 * receives). v1alpha2 is the hub. The differences: v1alpha1 has `spec.model.criticality`, and its InferencePool
 * spec uses GIE's older v1alpha2 shape (`selector` map, `targetPortNumber`, `extensionRef`) where v1alpha2 uses GIE
 * v1's (`selector.matchLabels`, `targetPorts`, `endpointPickerRef`). Information that has no field in the target
 * version travels in annotations, so a round trip returns the object it started with.
 */
import { GROUP, type ApiVersionName } from './schema.js';

/** Where v1alpha2 keeps a v1alpha1 `spec.model.criticality` (the renderer reads it for the InferenceModel). */
export const CRITICALITY_ANNOTATION = 'serving.kserve.io/criticality';
/** Where v1alpha1 keeps InferencePool target ports beyond the first, which its shape cannot hold. */
const EXTRA_PORTS_ANNOTATION = 'serving.kserve.io/v1alpha2-target-ports';

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The version part of `serving.kserve.io/<version>`, or undefined for another group. */
export function versionOf(apiVersion: unknown): ApiVersionName | undefined {
  if (apiVersion === `${GROUP}/v1alpha1`) return 'v1alpha1';
  if (apiVersion === `${GROUP}/v1alpha2`) return 'v1alpha2';
  return undefined;
}

function withAnnotation(metadata: Json, key: string, value: string | undefined): Json {
  const annotations = { ...(isObject(metadata['annotations']) ? metadata['annotations'] : {}) };
  if (value === undefined) delete annotations[key];
  else annotations[key] = value;
  const out: Json = { ...metadata, annotations };
  if (Object.keys(annotations).length === 0) delete out['annotations'];
  return out;
}

/**
 * The target ports a v1alpha2 round trip kept in the annotation. Anyone who writes the object can write it, so
 * anything but a JSON array of objects is refused with the annotation's name (the write fails, nothing else).
 */
function parseExtraPorts(text: string): Json[] {
  let ports: unknown;
  try {
    ports = JSON.parse(text);
  } catch (error) {
    ports = error;
  }
  if (!Array.isArray(ports) || !ports.every(isObject)) {
    throw new Error(
      `metadata.annotations["${EXTRA_PORTS_ANNOTATION}"]: expected a JSON array of target ports such as ` +
        `[{"number":8001}], got ${JSON.stringify(text.slice(0, 80))}; remove the annotation or fix it`,
    );
  }
  return ports;
}

function poolSpecToV1(spec: Json, extraPorts: string | undefined): Json {
  const { selector, targetPortNumber, extensionRef, ...rest } = spec;
  const out: Json = { ...rest };
  if (isObject(selector)) out['selector'] = { matchLabels: selector };
  if (typeof targetPortNumber === 'number') {
    out['targetPorts'] = [{ number: targetPortNumber }, ...(extraPorts ? parseExtraPorts(extraPorts) : [])];
  }
  if (isObject(extensionRef)) {
    const { portNumber, ...ref } = extensionRef;
    out['endpointPickerRef'] =
      typeof portNumber === 'number' ? { ...ref, port: { number: portNumber } } : ref;
  }
  return out;
}

/**
 * An InferencePool spec in GIE v1's shape rewritten to v1alpha2's (selector map, targetPortNumber, extensionRef).
 * Target ports beyond the first, which v1alpha2 cannot hold, come back as JSON in `extraPorts`.
 */
export function poolSpecToV1alpha2(spec: Json): { spec: Json; extraPorts: string | undefined } {
  const { selector, targetPorts, endpointPickerRef, ...rest } = spec;
  const out: Json = { ...rest };
  let extraPorts: string | undefined;
  if (isObject(selector) && isObject(selector['matchLabels'])) out['selector'] = selector['matchLabels'];
  if (Array.isArray(targetPorts) && targetPorts.length > 0) {
    const [first, ...others] = targetPorts as Json[];
    if (typeof first?.['number'] === 'number') out['targetPortNumber'] = first['number'];
    if (others.length > 0) extraPorts = JSON.stringify(others);
  }
  if (isObject(endpointPickerRef)) {
    const { port, ...ref } = endpointPickerRef;
    out['extensionRef'] =
      isObject(port) && typeof port['number'] === 'number' ? { ...ref, portNumber: port['number'] } : ref;
  }
  return { spec: out, extraPorts };
}

function mapPoolSpec(spec: Json, map: (pool: Json) => Json): Json {
  const router = spec['router'];
  if (!isObject(router) || !isObject(router['scheduler'])) return spec;
  const scheduler = router['scheduler'];
  if (!isObject(scheduler['pool']) || !isObject(scheduler['pool']['spec'])) return spec;
  const pool = scheduler['pool'];
  return {
    ...spec,
    router: { ...router, scheduler: { ...scheduler, pool: { ...pool, spec: map(pool['spec'] as Json) } } },
  };
}

/**
 * Converts an LLMInferenceService or LLMInferenceServiceConfig to the given version. Objects already in that
 * version come back unchanged (as a copy).
 * @example convertObject(v1alpha1Service, 'v1alpha2').spec.router.scheduler.pool.spec.targetPorts
 */
export function convertObject<T extends Json>(object: T, to: ApiVersionName): T {
  const from = versionOf(object['apiVersion']);
  const copy = structuredClone(object) as Json;
  if (from === undefined || from === to) return copy as T;
  let metadata = isObject(copy['metadata']) ? copy['metadata'] : {};
  let spec = isObject(copy['spec']) ? copy['spec'] : {};
  if (to === 'v1alpha2') {
    const annotations = isObject(metadata['annotations']) ? metadata['annotations'] : {};
    const extraPorts = annotations[EXTRA_PORTS_ANNOTATION];
    spec = mapPoolSpec(spec, (pool) =>
      poolSpecToV1(pool, typeof extraPorts === 'string' ? extraPorts : undefined),
    );
    metadata = withAnnotation(metadata, EXTRA_PORTS_ANNOTATION, undefined);
    if (isObject(spec['model']) && 'criticality' in spec['model']) {
      const { criticality, ...model } = spec['model'];
      spec = { ...spec, model };
      metadata = withAnnotation(metadata, CRITICALITY_ANNOTATION, String(criticality));
    }
  } else {
    let extraPorts: string | undefined;
    spec = mapPoolSpec(spec, (pool) => {
      const converted = poolSpecToV1alpha2(pool);
      extraPorts = converted.extraPorts;
      return converted.spec;
    });
    metadata = withAnnotation(metadata, EXTRA_PORTS_ANNOTATION, extraPorts);
    const annotations = isObject(metadata['annotations']) ? metadata['annotations'] : {};
    const criticality = annotations[CRITICALITY_ANNOTATION];
    if (typeof criticality === 'string') {
      spec = { ...spec, model: { ...(isObject(spec['model']) ? spec['model'] : {}), criticality } };
      metadata = withAnnotation(metadata, CRITICALITY_ANNOTATION, undefined);
    }
  }
  const out: Json = { ...copy, apiVersion: `${GROUP}/${to}`, metadata, spec };
  if (!isObject(copy['spec'])) delete out['spec'];
  return out as T;
}
