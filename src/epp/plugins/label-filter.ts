/**
 * @module epp/plugins/label-filter
 * Filters on pod labels, as llm-d names them: `by-label` (one label, a list of accepted values, optionally letting
 * endpoints without the label through) and `label-selector-filter` (a Kubernetes label selector: `matchLabels` and
 * `matchExpressions` with In, NotIn, Exists, DoesNotExist; `by-label-selector` is its older name).
 */
import type { Endpoint, Filter } from '../types.js';

export function byLabelFilter(
  name: string,
  label: string,
  validValues: readonly string[],
  allowsNoLabel: boolean,
): Filter {
  const valid = new Set(validValues);
  return {
    type: 'by-label',
    name,
    filter: (_context, endpoints: readonly Endpoint[]) =>
      endpoints.filter((e) => {
        const value = e.labels[label];
        return value === undefined ? allowsNoLabel : valid.has(value);
      }),
  };
}

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
const SELECTOR_OPERATORS: readonly SelectorOperator[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

export interface LabelSelectorRequirement {
  key: string;
  operator: SelectorOperator;
  values: readonly string[];
}

export interface LabelSelector {
  matchLabels: Readonly<Record<string, string>>;
  matchExpressions: readonly LabelSelectorRequirement[];
}

/**
 * A selector's `matchExpressions` as Kubernetes reads them. Each problem goes to `problem` (its path starts at
 * `matchExpressions`) and leaves that expression out: the config loader reports them, the Kubernetes objects' reader
 * takes any as a selector that selects nothing.
 */
export function readMatchExpressions(
  raw: unknown,
  problem: (path: string, message: string) => void,
): LabelSelectorRequirement[] {
  const matchExpressions: LabelSelectorRequirement[] = [];
  if (!Array.isArray(raw)) {
    problem('matchExpressions', 'must be a list of {key, operator, values?}');
    return matchExpressions;
  }
  raw.forEach((r: unknown, i) => {
    const at = `matchExpressions[${i}]`;
    const e = (typeof r === 'object' && r !== null ? r : {}) as Record<string, unknown>;
    for (const k of Object.keys(e))
      if (!['key', 'operator', 'values'].includes(k)) problem(`${at}.${k}`, 'unknown field');
    const operator = e['operator'] as SelectorOperator;
    const values = e['values'] ?? [];
    if (typeof e['key'] !== 'string' || e['key'] === '') problem(`${at}.key`, 'must be a label name');
    else if (!SELECTOR_OPERATORS.includes(operator))
      problem(`${at}.operator`, `must be one of ${SELECTOR_OPERATORS.join(', ')}`);
    else if (!Array.isArray(values) || !values.every((v) => typeof v === 'string'))
      problem(`${at}.values`, 'must be a list of strings');
    else if ((operator === 'In' || operator === 'NotIn') === (values.length === 0))
      problem(
        `${at}.values`,
        operator === 'In' || operator === 'NotIn'
          ? `${operator} needs at least one value`
          : `${operator} takes no values`,
      );
    else matchExpressions.push({ key: e['key'], operator, values: values });
  });
  return matchExpressions;
}

/** Whether `labels` match `selector`, with Kubernetes semantics (every term must hold; empty matches all). */
export function matchesSelector(labels: Readonly<Record<string, string>>, selector: LabelSelector): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels)) if (labels[key] !== value) return false;
  for (const r of selector.matchExpressions) {
    const value = labels[r.key];
    switch (r.operator) {
      case 'In':
        if (value === undefined || !r.values.includes(value)) return false;
        break;
      case 'NotIn':
        if (value !== undefined && r.values.includes(value)) return false;
        break;
      case 'Exists':
        if (value === undefined) return false;
        break;
      case 'DoesNotExist':
        if (value !== undefined) return false;
        break;
    }
  }
  return true;
}

export function labelSelectorFilter(
  name: string,
  selector: LabelSelector,
  type = 'label-selector-filter',
): Filter {
  return {
    type,
    name,
    filter: (_context, endpoints: readonly Endpoint[]) =>
      endpoints.filter((e) => matchesSelector(e.labels, selector)),
  };
}
