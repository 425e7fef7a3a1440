/**
 * @module api/nesting
 * A bound on how deeply an object nests, checked before anything recursive (schema validation, `structuredClone`,
 * templates) walks it. The API server stores schemaless fields (an inline HTTPRoute spec, an inline
 * EndpointPickerConfig) nested thousands of levels deep, and a recursive walk of such an object overflows the stack:
 * one manifest would otherwise crash whatever reads it. The walk here is iterative.
 */
import type { FieldProblem } from '../errors/index.js';

/**
 * Deepest nesting accepted. The deepest field of a real manifest (a pod affinity term's match expression values,
 * inside `spec.prefill.template`) is about 13 levels down; a hundred leaves room for any inline configuration.
 */
export const MAX_NESTING_DEPTH = 100;

/**
 * The first place where `value` nests deeper than `limit` levels, as a problem naming its path; undefined when it
 * does not. `root` names `value` in the path (`spec`; empty for a whole object, whose paths start at its keys).
 * @example nestingProblem({ a: { b: {} } }, 'spec', 1) // → { path: 'spec.a.b', message: 'nests deeper than 1 levels…' }
 */
export function nestingProblem(
  value: unknown,
  root: string,
  limit = MAX_NESTING_DEPTH,
): FieldProblem | undefined {
  const stack: { value: unknown; path: string; depth: number }[] = [{ value, path: root, depth: 0 }];
  while (stack.length > 0) {
    const { value: item, path, depth } = stack.pop()!;
    if (item === null || typeof item !== 'object') continue;
    if (depth > limit)
      return {
        path,
        message:
          `nests deeper than ${limit} levels; no field of an LLMInferenceService needs that many, ` +
          'so this is a mistake in the manifest (or something generating it)',
      };
    if (Array.isArray(item))
      item.forEach((child, i) => stack.push({ value: child, path: `${path}[${i}]`, depth: depth + 1 }));
    else
      for (const [key, child] of Object.entries(item))
        stack.push({ value: child, path: path ? `${path}.${key}` : key, depth: depth + 1 });
  }
  return undefined;
}
