/**
 * @module epp/scheduler
 * The scheduling framework, pure: the profile handler chooses profiles; each profile filters the candidates,
 * adds up its weighted scorers and lets its picker choose; pre-request hooks then see the result. Endpoints, time
 * and randomness come in as arguments, so every decision is reproducible in a test.
 */
import type {
  DataProducer,
  Endpoint,
  PostResponse,
  PreRequest,
  ProfileHandler,
  ProfileResult,
  ScoredEndpoint,
  SchedulingContext,
  SchedulingProfile,
  SchedulingResult,
} from './types.js';

export interface SchedulerPlugins {
  readonly handler: ProfileHandler;
  readonly profiles: ReadonlyMap<string, SchedulingProfile>;
  readonly preRequest: readonly PreRequest[];
  readonly postResponse: readonly PostResponse[];
  /** Run once per request before the profiles (e.g. the precise prefix-cache producer). */
  readonly producers?: readonly DataProducer[];
}

/** Runs one profile over the candidates. */
export function runProfile(
  profile: SchedulingProfile,
  context: SchedulingContext,
  candidates: readonly Endpoint[],
): ProfileResult {
  let endpoints: readonly Endpoint[] = candidates;
  for (const filter of profile.filters) {
    endpoints = filter.filter(context, endpoints);
    if (endpoints.length === 0) return { profile: profile.name, targets: [] };
  }
  const scored: ScoredEndpoint[] = new Array(endpoints.length);
  for (let i = 0; i < endpoints.length; i++) scored[i] = { endpoint: endpoints[i]!, score: 0 };
  for (const { scorer, weight } of profile.scorers) {
    const scores = scorer.score(context, endpoints);
    for (let i = 0; i < scored.length; i++) scored[i]!.score += weight * (scores[i] ?? 0);
  }
  return { profile: profile.name, targets: profile.picker.pick(context, scored) };
}

/** How many profile rounds a handler may ask for before we assume it loops (a bug, not a user error). */
const MAX_PROFILE_ROUNDS = 8;

/**
 * Schedules one request over `candidates` (already limited to ready, fresh endpoints).
 * Returns undefined when the primary profile found no endpoint.
 */
export function schedule(
  plugins: SchedulerPlugins,
  context: SchedulingContext,
  candidates: readonly Endpoint[],
): SchedulingResult | undefined {
  if (plugins.producers) for (const producer of plugins.producers) producer.produce(context, candidates);
  const results = new Map<string, ProfileResult>();
  for (let round = 0; round < MAX_PROFILE_ROUNDS; round++) {
    const next = plugins.handler.pickProfiles(context, plugins.profiles, results);
    if (next.length === 0) break;
    for (const name of next) {
      const profile = plugins.profiles.get(name);
      if (profile) results.set(name, runProfile(profile, context, candidates));
    }
  }
  const primaryProfile = plugins.handler.primaryProfile(results);
  if (!results.get(primaryProfile)?.targets.length) return undefined;
  const result: SchedulingResult = { primaryProfile, results, headers: {} };
  for (const hook of plugins.preRequest) hook.preRequest(context, result);
  return result;
}

/** The endpoint that receives the request. */
export function primaryTarget(result: SchedulingResult): Endpoint {
  return result.results.get(result.primaryProfile)!.targets[0]!;
}

/**
 * True when every profile weighs this EPP's own in-flight counts (`active-request-scorer` with a weight above 0):
 * load is then seen the moment a request is routed, and the scraped queues only refine it.
 */
export function weighsInFlight(plugins: SchedulerPlugins): boolean {
  if (plugins.profiles.size === 0) return false;
  for (const profile of plugins.profiles.values()) {
    if (!profile.scorers.some((s) => s.weight > 0 && s.scorer.type === 'active-request-scorer')) return false;
  }
  return true;
}
