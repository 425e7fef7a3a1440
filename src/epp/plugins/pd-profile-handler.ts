/**
 * @module epp/plugins/pd-profile-handler
 * `pd-profile-handler`, the prefill/decode decider: always runs the decode profile first; then, when the part of the
 * prompt the chosen decode endpoint has not cached is at least `threshold` characters, also runs the prefill
 * profile so a prefill endpoint computes the KV-cache and hands it over. Short or mostly cached prompts are cheaper
 * to prefill on the decode endpoint itself. The request goes to the decode endpoint either way; the
 * `prefill-header-handler` tells it where the prefill happened. llm-d-router's newer layout, a prefill decider plugin
 * named by `deciderPluginName`, is read by {@link pdProfileHandlerFactory}.
 */
import type { LinkedPlugin, Plugin, PreRequest, ProfileHandler } from '../types.js';
import { disaggProfileHandler, isPdDecider } from './disagg-profile-handler.js';
import type { Parameters } from './parameters.js';
import {
  defaultPrefixCacheParameters,
  matchInfoProducerParameter,
  PREFIX_MATCHES,
  type PrefixMatches,
} from './prefix-cache-scorer.js';
import { DEFAULT_CHARS_PER_TOKEN } from './prefix-cache-tuning.js';

export interface PdParameters {
  /** Uncached prompt characters from which disaggregated prefill pays off. */
  threshold: number;
  /** Characters per prefix block, to turn matched blocks into cached characters (as the prefix scorer counts). */
  hashBlockSize: number;
  decodeProfile: string;
  prefillProfile: string;
}

export function pdProfileHandler(name: string, parameters: PdParameters): ProfileHandler {
  return {
    type: 'pd-profile-handler',
    name,
    pickProfiles(context, profiles, results) {
      if (!results.has(parameters.decodeProfile)) {
        return profiles.has(parameters.decodeProfile) ? [parameters.decodeProfile] : [];
      }
      if (results.has(parameters.prefillProfile) || !profiles.has(parameters.prefillProfile)) return [];
      const decode = results.get(parameters.decodeProfile)?.targets[0];
      if (!decode) return [];
      const matches = context.state.read<PrefixMatches>(PREFIX_MATCHES);
      // The threshold counts characters; the precise producer's blocks count tokens (estimated at 4 characters each).
      const charsPerBlock = !matches
        ? parameters.hashBlockSize
        : matches.blockUnit === 'characters'
          ? matches.blockSize
          : matches.blockSize * DEFAULT_CHARS_PER_TOKEN;
      const cachedChars = (matches?.matched.get(decode.address) ?? 0) * charsPerBlock;
      const uncached = context.request.prompt.length - cachedChars;
      return uncached >= parameters.threshold ? [parameters.prefillProfile] : [];
    },
    primaryProfile() {
      return parameters.decodeProfile;
    },
  };
}

/** The decider upstream's pd-profile-handler uses when `deciderPluginName` is not given (llm-d-router). */
const DEFAULT_DECIDER = 'prefix-based-pd-decider';

/**
 * `pd-profile-handler` in either of its upstream layouts:
 *
 * - llm-d-inference-scheduler's earlier one, `threshold` (uncached characters) and `hashBlockSize`: the handler above.
 * - llm-d-router's (disagg/pd_profile_handler.go): `deciderPluginName` names a prefill decider plugin that decides,
 *   once the decode profile picked its endpoint, whether the prefill profile runs. That is `disagg-profile-handler`
 *   decode-first with `deciders.prefill` = that name (KServe's migration writes the same), so it is built as one,
 *   keeping this type. Upstream's default name (`prefix-based-pd-decider`) is used when a plugin so named exists and
 *   no `threshold`/`hashBlockSize` says the earlier layout is meant.
 *
 * The rest of the newer layout: `prefixPluginName` / `prefixPluginType` were never read upstream (accepted with a
 * warning); `prefixMatchInfoProducerName` only orders the producer before the handler upstream, which holds here
 * anyway (it must name a plugin); `primaryPort` (data-parallel: send to this port, the rank's address in
 * `x-data-parallel-host-port`) is not implemented, so a non-zero port is a warning naming it.
 */
export function pdProfileHandlerFactory(
  name: string,
  p: Parameters,
): ProfileHandler & PreRequest & LinkedPlugin & { readonly matchInfoProducer: string | undefined } {
  const decodeProfile = p.string('decodeProfile', 'decode');
  const prefillProfile = p.string('prefillProfile', 'prefill');
  const earlierLayout = p.has('threshold') || p.has('hashBlockSize');
  const threshold = pdProfileHandler(name, {
    threshold: p.integer('threshold', 256, 0),
    hashBlockSize: p.integer('hashBlockSize', defaultPrefixCacheParameters.hashBlockSize, 1),
    decodeProfile,
    prefillProfile,
  });
  const deciderGiven = p.has('deciderPluginName');
  // A wrong-typed name is reported by p.string; it names nothing to link then.
  const deciderName = deciderGiven ? p.string('deciderPluginName', '') || undefined : undefined;
  if (deciderName !== undefined)
    for (const key of ['threshold', 'hashBlockSize'].filter((k) => p.has(k)))
      p.warn(
        key,
        `ignored: deciderPluginName "${deciderName}" decides whether to prefill elsewhere (upstream's layout has no threshold or hashBlockSize)`,
      );
  for (const key of ['prefixPluginName', 'prefixPluginType'])
    if (p.has(key)) {
      p.string(key, '');
      p.warn(key, 'deprecated upstream, where it was never read: ignored');
    }
  const primaryPort = p.integer('primaryPort', 0, 0, 65_535);
  if (primaryPort !== 0)
    p.warn(
      'primaryPort',
      `not honoured: requests go to the decode endpoint's own port and x-data-parallel-host-port is not set (upstream sends them to port ${primaryPort} with the endpoint in that header; it notes the port is not needed with Istio >= 1.28.1)`,
    );
  const matchInfoProducer = matchInfoProducerParameter(p);
  const decider = disaggProfileHandler(name, { stageOrder: 'decode-first', decodeProfile, prefillProfile });
  let chosen: ProfileHandler & Partial<PreRequest> = threshold;
  return {
    type: 'pd-profile-handler',
    name,
    matchInfoProducer,
    pickProfiles: (context, profiles, results) => chosen.pickProfiles(context, profiles, results),
    primaryProfile: (results) => chosen.primaryProfile(results),
    preRequest: (context, result) => chosen.preRequest?.(context, result),
    link(plugins: ReadonlyMap<string, Plugin>, refused: ReadonlySet<string>): void {
      if (deciderGiven && deciderName === undefined) return;
      const ref = deciderName ?? (earlierLayout ? undefined : DEFAULT_DECIDER);
      if (ref === undefined || refused.has(ref)) return;
      const plugin = plugins.get(ref);
      if (plugin && isPdDecider(plugin)) {
        decider.useDecider(plugin);
        chosen = decider;
      } else if (deciderName !== undefined)
        p.problem(
          'deciderPluginName',
          plugin
            ? `"${ref}" (${plugin.type}) is not a prefill decider: use prefix-based-pd-decider or always-disagg-pd-decider`
            : `no plugin named "${ref}" in plugins (defined: ${[...plugins.keys()].join(', ')})`,
        );
    },
  };
}
