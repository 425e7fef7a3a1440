/**
 * @module controller/gateway-admission
 * Whether a Gateway takes routes from a namespace, as far as the controller may tell its status. A service names
 * the Gateways its route attaches to, in any namespace; the controller reads them with cluster-wide rights, so
 * reporting the addresses and conditions of a Gateway that does not take the service's routes would show a tenant
 * what it could not read itself. Such a Gateway is reported as not found.
 */
import type { LiveObject } from './conditions.js';

interface Listener {
  name?: string;
  allowedRoutes?: { namespaces?: { from?: string } };
}

interface RouteParentStatus {
  parentRef?: { name?: string; namespace?: string; kind?: string };
  conditions?: { type?: string; status?: string }[];
}

/**
 * True when a listener of `gateway` (the one `sectionName` names, if given) admits routes from `namespace`: `All`,
 * or `Same` (the default) in the Gateway's own namespace. A `Selector` listener is judged by the route's own status:
 * admitted once the Gateway reports the route Accepted (which also covers a Gateway implementation's decision).
 * @example admitsRoutesFrom(sharedGateway, 'team-a', undefined, liveRoute) // → true for `from: All`
 */
export function admitsRoutesFrom(
  gateway: LiveObject,
  namespace: string,
  sectionName: string | undefined,
  route: LiveObject | undefined,
): boolean {
  const gatewayNamespace = gateway.metadata.namespace;
  const listeners = ((gateway.spec?.['listeners'] as Listener[] | undefined) ?? []).filter(
    (l) => sectionName === undefined || l.name === sectionName,
  );
  for (const listener of listeners) {
    const from = listener.allowedRoutes?.namespaces?.from ?? 'Same';
    if (from === 'All' || (from === 'Same' && gatewayNamespace === namespace)) return true;
  }
  const parents = (route?.status?.['parents'] as RouteParentStatus[] | undefined) ?? [];
  return parents.some(
    (p) =>
      (p.parentRef?.kind ?? 'Gateway') === 'Gateway' &&
      p.parentRef?.name === gateway.metadata.name &&
      (p.parentRef?.namespace ?? namespace) === gatewayNamespace &&
      p.conditions?.some((c) => c.type === 'Accepted' && c.status === 'True'),
  );
}
