/**
 * @module epp/is-record
 * Whether a parsed YAML/JSON value is a mapping (not null, not a list): the first question of every reader of
 * configs and Kubernetes objects here.
 */
export function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
