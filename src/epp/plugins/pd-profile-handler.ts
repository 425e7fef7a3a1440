/**
 * @module epp/plugins/pd-profile-handler
 * `pd-profile-handler`, the prefill/decode decider: always runs the decode profile first; then, when the part of the
 * prompt the chosen decode endpoint has not cached is at least `threshold` characters, also runs the prefill
 * profile so a prefill endpoint computes the KV-cache and hands it over. Short or mostly cached prompts are cheaper
 * to prefill on the decode endpoint itself. The request goes to the decode endpoint either way; the
 * `prefill-header-handler` tells it where the prefill happened.
 */
import type { ProfileHandler } from '../types.js';
import { PREFIX_MATCHES, type PrefixMatches } from './prefix-cache-scorer.js';
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
