/**
 * @module epp/plugins/single-profile-handler
 * `single-profile-handler`: runs the one scheduling profile of the config once; its pick receives the request.
 */
import type { ProfileHandler } from '../types.js';

export function singleProfileHandler(name: string): ProfileHandler {
  return {
    type: 'single-profile-handler',
    name,
    pickProfiles(_context, profiles, results) {
      if (results.size > 0) return [];
      const first = profiles.keys().next().value;
      return first === undefined ? [] : [first];
    },
    primaryProfile(results) {
      return results.keys().next().value ?? 'default';
    },
  };
}
