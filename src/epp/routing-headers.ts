/**
 * @module epp/routing-headers
 * The request headers that steer where a request (or a part of it) goes: the EPP's to set, never the client's. A
 * client that sets `x-prefiller-host-port` itself makes a decode server (or llm-d's routing sidecar in front of vLLM)
 * send the prompt to any address it likes — server-side request forgery from the public edge. So every request the
 * EPP routes has each of these headers removed unless the EPP sets it itself, and the builtin gateway drops them on
 * arrival as well.
 *
 * The subset hint is not among the headers a client may steer with either: a gateway passes it as filter metadata
 * (`envoy.lb.subset_hint`), which a client cannot set; a header of the same name is as forged as any other here.
 */

/**
 * Routing headers the EPP owns, lower case: the destination (GIE), its subset (GIE's metadata key, never trusted as
 * a header), and the endpoints llm-d's routing sidecar and vLLM connectors act on — their current names, the
 * `x-llm-d-` spellings llm-d is renaming them to, and the sidecar's older `x-prefiller-url` — so a sidecar of any
 * version behind this EPP only ever sees what the EPP chose.
 */
export const EPP_ROUTING_HEADERS: readonly string[] = Object.freeze([
  'x-gateway-destination-endpoint',
  'x-gateway-destination-endpoint-subset',
  'x-prefiller-host-port',
  'x-llm-d-prefiller-host-port',
  'x-prefiller-url',
  'x-encoder-hosts-ports',
  'x-llm-d-encoder-hosts-ports',
  'x-kv-cache-source-host-port',
  'x-llm-d-kv-cache-source-host-port',
  'x-data-parallel-host-port',
]);

const OWNED = new Set(EPP_ROUTING_HEADERS);

/** Whether a request header (any case) is the EPP's to set. */
export function isRoutingHeader(name: string): boolean {
  return OWNED.has(name.toLowerCase());
}

/**
 * The headers to remove from a request the EPP routes: every routing header except those it sets in the same answer
 * (`set`) — an overwrite replaces whatever the client sent, and leaving them out of the removals keeps the answer
 * independent of the order in which a gateway applies removals and sets.
 * @example routingHeadersToRemove(['x-gateway-destination-endpoint']) // every other routing header
 */
export function routingHeadersToRemove(set: Iterable<string> = []): string[] {
  const kept = new Set<string>();
  for (const name of set) kept.add(name.toLowerCase());
  return EPP_ROUTING_HEADERS.filter((name) => !kept.has(name));
}
