/**
 * @module presets/strategic-merge
 * Kubernetes strategic-merge semantics for LLMInferenceService specs: objects merge field by field, later wins;
 * lists of named things merge item by item on their merge key (containers, initContainers, volumes and env by
 * `name`, container ports by `containerPort`, volume mounts by `mountPath`), and every other list (`args`,
 * `command`, tolerations, route rules …) is replaced whole, as `kubectl apply` would do it.
 */

type Json = Record<string, unknown>;

/** The merge key of a list field, by the field's name; lists not named here are replaced. */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  volumes: 'name',
  env: 'name',
  ports: 'containerPort',
  volumeMounts: 'mountPath',
  volumeDevices: 'devicePath',
  imagePullSecrets: 'name',
  adapters: 'name',
};

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function mergeKeyedLists(base: unknown[], override: unknown[], key: string): unknown[] {
  const keyed = (item: unknown) => (isObject(item) ? item[key] : undefined);
  if (![...base, ...override].every((item) => keyed(item) !== undefined)) return override;
  const out = base.map((item) => {
    const replacement = override.find((o) => keyed(o) === keyed(item));
    return replacement === undefined ? item : mergeValues(item, replacement);
  });
  for (const item of override) {
    if (!base.some((b) => keyed(b) === keyed(item))) out.push(item);
  }
  return out;
}

function mergeValues(base: unknown, override: unknown, field?: string): unknown {
  if (override === undefined) return base;
  if (isObject(base) && isObject(override)) return strategicMerge(base, override);
  if (Array.isArray(base) && Array.isArray(override) && field !== undefined && MERGE_KEYS[field]) {
    return mergeKeyedLists(base, override, MERGE_KEYS[field]);
  }
  return structuredClone(override);
}

/**
 * Merges `override` onto `base` without changing either. A `null` in `override` removes the field.
 * @example strategicMerge({ args: ['a'], env: [{name: 'A', value: '1'}] }, { env: [{name: 'B', value: '2'}] })
 *   // → { args: ['a'], env: [{name: 'A', value: '1'}, {name: 'B', value: '2'}] }
 */
export function strategicMerge<T extends Json>(base: T, override: Json): T {
  const out: Json = structuredClone(base);
  for (const [field, value] of Object.entries(override)) {
    if (value === null) delete out[field];
    else out[field] = mergeValues(out[field], value, field);
  }
  return out as T;
}
