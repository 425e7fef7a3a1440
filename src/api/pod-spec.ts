/**
 * @module api/pod-spec
 * Field-name checks for embedded Kubernetes PodSpecs. The CRD keeps pod specs schemaless (see schema.ts), so a typo
 * such as `containres` would otherwise pass silently and be dropped by the workload controller. The table of
 * fields comes from the Kubernetes models of `@kubernetes/client-node`, generated into `generated/` by
 * `npm run generate` (see `podSpecFieldTable`), so that validating a file does not load the whole client.
 */
import type { FieldProblem } from '../errors/index.js';
import { podSpecFields } from './generated/pod-spec-fields.js';
import { QUANTITY_PATTERN } from './quantity.js';

/** Kubernetes type name → field name → field type, as the client-node models spell types. */
export type FieldTable = Record<string, Record<string, string>>;

const ROOT_TYPE = 'V1PodSpec';

/**
 * The `resource.Quantity` fields reachable from a PodSpec. The client-node models type them as plain strings, but
 * Kubernetes reads a JSON number there too (KServe's CRD marks them `x-kubernetes-int-or-string`), and manifests
 * write `nvidia.com/gpu: 1` and `cpu: 16`; the generated table marks them `Quantity` so both forms pass.
 */
export const QUANTITY_FIELDS: Readonly<Record<string, readonly string[]>> = {
  V1PodSpec: ['overhead'],
  V1ResourceRequirements: ['limits', 'requests'],
  V1VolumeResourceRequirements: ['limits', 'requests'],
  V1EmptyDirVolumeSource: ['sizeLimit'],
  V1ResourceFieldSelector: ['divisor'],
};

const QUANTITY = new RegExp(QUANTITY_PATTERN);
const QUANTITY_MESSAGE = 'must be a quantity such as 16, "500m" or "10Gi"';

/** Why a value is not a quantity, or undefined when it is one (a template is checked once it is rendered). */
function quantityProblem(value: unknown): string | undefined {
  if (typeof value === 'number') {
    // The CRD's int-or-string admits whole numbers only; a fraction is written as a string ("0.5" or "500m").
    return Number.isSafeInteger(value)
      ? undefined
      : `${QUANTITY_MESSAGE}; write fractions as a string ("500m")`;
  }
  if (typeof value === 'string') {
    return value.includes('{{') || QUANTITY.test(value) ? undefined : `${QUANTITY_MESSAGE}, not "${value}"`;
  }
  return QUANTITY_MESSAGE;
}

const ARRAY = /^Array<(.+)>$/;
const MAP = /^\{ \[key: string\]: (.+?);? \}$/;

function typeProblems(
  value: unknown,
  type: string,
  path: string,
  fields: FieldTable,
  out: FieldProblem[],
): void {
  if (value === null || value === undefined) return;
  const array = ARRAY.exec(type);
  if (array) {
    if (!Array.isArray(value)) {
      out.push({ path, message: 'must be a list' });
      return;
    }
    value.forEach((item, i) => typeProblems(item, array[1]!, `${path}[${i}]`, fields, out));
    return;
  }
  const map = MAP.exec(type);
  if (map) {
    if (typeof value !== 'object' || Array.isArray(value)) {
      out.push({ path, message: 'must be a mapping' });
      return;
    }
    for (const [key, item] of Object.entries(value))
      typeProblems(item, map[1]!, `${path}.${key}`, fields, out);
    return;
  }
  const known = fields[type];
  if (known) {
    if (typeof value !== 'object' || Array.isArray(value)) {
      out.push({ path, message: `must be an object (a Kubernetes ${type.replace(/^V1/, '')})` });
      return;
    }
    for (const [key, item] of Object.entries(value)) {
      const fieldType = known[key];
      if (fieldType === undefined) {
        out.push({
          path: `${path}.${key}`,
          message: `unknown field "${key}" in a Kubernetes ${type.replace(/^V1/, '')}${suggestion(key, Object.keys(known))}`,
        });
      } else {
        typeProblems(item, fieldType, `${path}.${key}`, fields, out);
      }
    }
    return;
  }
  if (type === 'Quantity') {
    const problem = quantityProblem(value);
    if (problem) out.push({ path, message: problem });
  } else if (type === 'string' && typeof value !== 'string') out.push({ path, message: 'must be a string' });
  else if (type === 'boolean' && typeof value !== 'boolean')
    out.push({ path, message: 'must be true or false' });
  else if (type === 'number' && typeof value !== 'number') out.push({ path, message: 'must be a number' });
}

/** A "did you mean" for a misspelt field: the known field with the smallest edit distance, if close. */
function suggestion(key: string, known: string[]): string {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const candidate of known) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best ? `; did you mean "${best}"?` : '';
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** Unknown fields and wrong shapes in a PodSpec, each with its path. */
export function podSpecProblems(value: unknown, path: string): FieldProblem[] {
  const out: FieldProblem[] = [];
  typeProblems(value, ROOT_TYPE, path, podSpecFields, out);
  return out;
}

interface AttributeType {
  baseName: string;
  type: string;
}
type ModelClass = { getAttributeTypeMap(): AttributeType[] };

/** Builds the field table from the client-node models reachable from V1PodSpec (for `npm run generate`). */
export async function podSpecFieldTable(): Promise<FieldTable> {
  const models = (await import('@kubernetes/client-node')) as unknown as Record<
    string,
    ModelClass | undefined
  >;
  const out: FieldTable = {};
  const pending = [ROOT_TYPE];
  while (pending.length > 0) {
    const name = pending.pop()!;
    const model = models[name];
    if (out[name] || !model || typeof model.getAttributeTypeMap !== 'function') continue;
    const fields: Record<string, string> = {};
    const quantities = QUANTITY_FIELDS[name] ?? [];
    for (const attribute of model.getAttributeTypeMap()) {
      fields[attribute.baseName] = quantities.includes(attribute.baseName)
        ? attribute.type.replace(/string(;? \})?$/, 'Quantity$1')
        : attribute.type;
      const inner = ARRAY.exec(attribute.type)?.[1] ?? MAP.exec(attribute.type)?.[1] ?? attribute.type;
      if (models[inner]) pending.push(inner);
    }
    out[name] = fields;
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}
