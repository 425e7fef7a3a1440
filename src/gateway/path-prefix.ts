/**
 * @module gateway/path-prefix
 * Gateway API's `PathPrefix` match and `ReplacePrefixMatch` rewrite, as pure functions: the one reading of the
 * spec that both gateways follow (the builtin one calls these; the Envoy bootstrap writes the same rules as Envoy
 * route config, and a test holds both to one table). A prefix matches whole path elements and its trailing slash is
 * ignored (`/a/b/` and `/a/b` both match `/a/b`, `/a/b/`, `/a/b/c`, `/a/b?x`, never `/a/bc`); the replacement takes
 * the matched elements' place with exactly one slash between it and the rest (`/a/b/c` → `/c` for `/`).
 */

/** The prefix without its trailing slash (`/` stays `/`): the form both the match and Envoy's config use. */
export function normalizedPrefix(prefix: string): string {
  const trimmed = prefix.replace(/\/+$/, '');
  return trimmed === '' ? '/' : trimmed;
}

/**
 * What follows the prefix in `url` when it matches (`''`, `/…` or `?…`), else undefined.
 * @example pathPrefixRest('/ns/m', '/ns/m/v1/models?x=1') // → '/v1/models?x=1'
 */
export function pathPrefixRest(prefix: string, url: string): string | undefined {
  const p = normalizedPrefix(prefix);
  if (p === '/') return url.startsWith('/') ? url : undefined;
  if (!url.startsWith(p)) return undefined;
  const rest = url.slice(p.length);
  return rest === '' || rest[0] === '/' || rest[0] === '?' ? rest : undefined;
}

/**
 * The path after `ReplacePrefixMatch` with `replacement`, given the rest after the matched prefix.
 * @example replacePrefixMatch('/', '/v1/models') // → '/v1/models'
 * @example replacePrefixMatch('/v1', '') // → '/v1'
 */
export function replacePrefixMatch(replacement: string, rest: string): string {
  const head = replacement.replace(/\/+$/, '');
  if (rest.startsWith('/')) return head + rest;
  return (head === '' ? '/' : head) + rest;
}
