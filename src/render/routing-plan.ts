/**
 * @module render/routing-plan
 * Who serves a model name in a namespace, and with which weights: a pure decision over the services of one
 * namespace, made the same way by the controller (from the cluster's state) and offline by `render` and `up` (from a
 * file, every service assumed Ready).
 *
 * - A routing group (same namespace, same `route.group`, same model name) is one claimant; a service outside any
 *   group is a claimant alone. Members of one group that serve another model name form their own claimant.
 * - When several claimants claim one model name, the one holding the oldest service (creationTimestamp, then name)
 *   keeps it (a claimant that is wholly stopped yields to one that runs); the others render no model-name rules and report a ModelNameCollision. Deterministic, so every
 *   reconcile (of any of them) reaches the same answer.
 * - In a group, a member's effective weight is its spec weight while it is Ready and not stopped, else 0. The
 *   controller reads "Ready" as WorkloadsReady (its model servers are available): the service's own Ready also
 *   covers its route, which carries this weight, so weighing by it would flap.
 */
import { type GroupMemberBackend, type BackendRef, type ModelRouting } from './model-routing.js';

export interface RoutingCandidate {
  name: string;
  /** Model name the service serves. */
  model: string;
  group?: string | undefined;
  /** Spec weight (for a group member). */
  weight?: number | undefined;
  backend: BackendRef;
  ready: boolean;
  stopped: boolean;
  /** RFC 3339; absent offline (then names decide). */
  creationTimestamp?: string | undefined;
}

export interface GroupMemberState {
  name: string;
  weight: number;
  effectiveWeight: number;
  ready: boolean;
  stopped: boolean;
}

export interface RoutingPlan {
  routing: ModelRouting;
  /** Set when another claimant keeps this service's model name. */
  collision?: { model: string; keptBy: string[] } | undefined;
  /** The service's routing group with every member's state; undefined outside a group. */
  group?: { name: string; members: GroupMemberState[] } | undefined;
}

function age(c: RoutingCandidate): [string, string] {
  // An absent timestamp sorts last: an object the API server has not stored yet is the newest.
  return [c.creationTimestamp ?? '\uffff', c.name];
}

function older(a: RoutingCandidate, b: RoutingCandidate): number {
  const [ta, na] = age(a);
  const [tb, nb] = age(b);
  return ta < tb ? -1 : ta > tb ? 1 : na < nb ? -1 : na > nb ? 1 : 0;
}

/**
 * The routing plan of every candidate (one namespace), by service name.
 * @example planModelRouting([{ name: 'a', model: 'm', group: 'g', weight: 90, backend, ready: true, stopped: false },
 *   { name: 'b', model: 'm', group: 'g', weight: 10, backend, ready: false, stopped: false }]).get('a')
 *   // → routing.members: a at 90, b at 0 (not Ready)
 */
export function planModelRouting(candidates: readonly RoutingCandidate[]): Map<string, RoutingPlan> {
  const claimants = new Map<string, RoutingCandidate[]>();
  for (const c of candidates) {
    const key = c.group === undefined ? `service\u0000${c.name}` : `group\u0000${c.group}\u0000${c.model}`;
    claimants.set(key, [...(claimants.get(key) ?? []), c]);
  }
  const byModel = new Map<string, RoutingCandidate[][]>();
  for (const members of claimants.values()) {
    members.sort(older);
    const model = members[0]!.model;
    byModel.set(model, [...(byModel.get(model) ?? []), members]);
  }
  const plans = new Map<string, RoutingPlan>();
  for (const [model, contenders] of byModel) {
    // A claimant whose every member is stopped serves nothing: it yields the name to one that runs.
    const idle = (members: RoutingCandidate[]) => (members.every((m) => m.stopped) ? 1 : 0);
    contenders.sort((a, b) => idle(a) - idle(b) || older(a[0]!, b[0]!));
    const keeper = contenders[0]!;
    for (const members of contenders) {
      const enabled = members === keeper;
      const collision = enabled ? undefined : { model, keptBy: keeper.map((m) => m.name) };
      const group = members[0]!.group;
      if (group === undefined) {
        plans.set(members[0]!.name, { routing: { enabled }, collision });
        continue;
      }
      const states: GroupMemberState[] = members.map((m) => ({
        name: m.name,
        weight: m.weight ?? 0,
        effectiveWeight: m.ready && !m.stopped ? (m.weight ?? 0) : 0,
        ready: m.ready,
        stopped: m.stopped,
      }));
      const backends: GroupMemberBackend[] = members.map((m, i) => ({
        name: m.name,
        backend: m.backend,
        weight: states[i]!.effectiveWeight,
      }));
      const sorted = [...states].sort((a, b) => a.name.localeCompare(b.name));
      for (const m of members) {
        plans.set(m.name, {
          routing: { enabled, members: backends },
          collision,
          group: { name: group, members: sorted },
        });
      }
    }
  }
  return plans;
}

/**
 * A model name as messages quote it: a user's free-form string, so control characters are escaped (none reaches a
 * terminal or a log raw) and a very long one is cut.
 */
export function quotedModelName(model: string): string {
  const shown = model.length > 200 ? `${model.slice(0, 200)}…` : model;
  return JSON.stringify(shown).replace(
    /[\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/**
 * What a service that lost its model name is told: the controller's ModelNameRouted message, and `render`'s warning
 * for a file that holds both claimants.
 */
export function collisionMessage(collision: { model: string; keptBy: readonly string[] }): string {
  return (
    `model name ${quotedModelName(collision.model)} is already served in this namespace by ${collision.keptBy.join(', ')} ` +
    '(the oldest claimant keeps it): this service answers only on its own /<namespace>/<name>/ paths; give it ' +
    'another spec.model.name, or join their routing group (spec.router.route.group and weight) to share the name'
  );
}

/**
 * GroupReady and GroupDegraded of a member, from its group's state. GroupReady: at least one member with a weight
 * above 0 is Ready (the group's model name is served). GroupDegraded: some member is not Ready or is stopped (its
 * share goes to the others). Neither feeds the service's own Ready: a broken group does not make a Ready member
 * unready, as in KServe.
 */
export function groupConditions(group: { name: string; members: readonly GroupMemberState[] }): {
  ready: { status: boolean; reason: string; message: string };
  degraded: { status: boolean; reason: string; message: string };
} {
  const serving = group.members.filter((m) => m.effectiveWeight > 0);
  const notReady = group.members.filter((m) => !m.ready || m.stopped);
  const total = serving.reduce((sum, m) => sum + m.effectiveWeight, 0);
  const shares = serving
    .map((m) => `${m.name} ${((100 * m.effectiveWeight) / total).toFixed(1)}%`)
    .join(', ');
  const ready =
    serving.length > 0
      ? {
          status: true,
          reason: 'GroupServing',
          message: `group ${group.name} serves its model name: ${shares}`,
        }
      : {
          status: false,
          reason: 'NoMemberServing',
          message: `no member of group ${group.name} is Ready with a weight above 0: requests for its model name fail until one is`,
        };
  const overLimit = group.members.length > 16;
  const degraded =
    notReady.length > 0 || overLimit
      ? {
          status: true,
          reason: overLimit ? 'TooManyMembers' : 'MembersNotReady',
          message: [
            notReady.length > 0
              ? `${notReady.map((m) => `${m.name} (${m.stopped ? 'stopped' : 'not Ready'})`).join(', ')} get weight 0`
              : '',
            overLimit
              ? `the group has ${group.members.length} members; the route holds the first 16 by name (Gateway API's limit)`
              : '',
          ]
            .filter(Boolean)
            .join('; '),
        }
      : { status: false, reason: 'AllMembersReady', message: `every member of group ${group.name} is Ready` };
  return { ready, degraded };
}
