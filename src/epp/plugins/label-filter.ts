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
export const SELECTOR_OPERATORS: readonly SelectorOperator[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

export interface LabelSelectorRequirement {
  key: string;
  operator: SelectorOperator;
  values: readonly string[];
}

export interface LabelSelector {
  matchLabels: Readonly<Record<string, string>>;
  matchExpressions: readonly LabelSelectorRequirement[];
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
