/**
 * @module epp/plugins/disagg-profile-handler
 * llm-d-router's `disagg-profile-handler` and its prefill deciders, the layout llm-d's P/D guides use today:
 *
 * - `decode-first` (the default): the decode profile picks the endpoint that gets the request; then the decider
 *   named by `deciders.prefill` looks at that endpoint and says whether a prefill endpoint should compute the prompt's
 *   KV-cache first. Without a decider there is no disaggregation.
 * - `prefill-first`: the prefill profile runs whenever it exists, then decode (upstream refuses a prefill decider
 *   here: there is no decode endpoint yet to decide on).
 *
 * The handler also does what `prefill-header-handler` does (upstream folded it in): the prefill pick goes to the
 * decode side as `x-prefiller-host-port`. When the decider chose prefill but the prefill profile found no endpoint,
 * the request is served by the decode endpoint alone (upstream fails it instead; serving it is the available choice,
 * and the decode side prefills as it does for short prompts).
 *
 * Deciders: `always-disagg-pd-decider` (always), and `prefix-based-pd-decider`: disaggregate when the prompt's part
 * the decode endpoint has not cached is at least `nonCachedTokens` tokens (0 = never), and, with `promptTokens`, the
 * prompt is at least that long. Tokens are the token producer's when one ran, else llm-d's estimate (4 bytes each).
 */
import type {
  Endpoint,
  Plugin,
  PreRequest,
  ProfileHandler,
  SchedulingContext,
  SchedulingResult,
} from '../types.js';
import { PREFILL_HEADER } from './prefill-header-handler.js';
import { PREFIX_MATCHES, prefixMatchKey, type PrefixMatches } from './prefix-cache-scorer.js';
import { TOKENIZED_PROMPT, type TokenizedPrompt } from './token-producer.js';

/** A plugin that decides, once the decode endpoint is known, whether the prompt is prefilled elsewhere. */
export interface PdDecider extends Plugin {
  disaggregate(context: SchedulingContext, decode: Endpoint): boolean;
}

export function isPdDecider(plugin: Plugin): plugin is PdDecider {
  return typeof (plugin as Partial<PdDecider>).disaggregate === 'function';
}

export function alwaysDisaggPdDecider(name: string): PdDecider {
  return { type: 'always-disagg-pd-decider', name, disaggregate: () => true };
}

export interface PrefixBasedPdParameters {
  /** Uncached prompt tokens from which the prompt is prefilled elsewhere; 0 turns disaggregation off. */
  nonCachedTokens: number;
  /** Shortest prompt, in tokens, considered at all; 0 = any. */
  promptTokens: number;
  /** Whose prefix matches to read (`prefixMatchInfoProducerName`); undefined = the profile's prefix scorer's. */
  matchInfoProducer: string | undefined;
}

/** The prompt's length in tokens: the token producer's count, else llm-d's estimate of 4 bytes a token. */
function promptTokenCount(context: SchedulingContext): number {
  const produced = context.state.read<TokenizedPrompt>(TOKENIZED_PROMPT);
  if (produced) return produced.tokens.length;
  return Math.ceil(Buffer.byteLength(context.request.prompt, 'utf8') / 4);
}

export function prefixBasedPdDecider(
  name: string,
  parameters: PrefixBasedPdParameters,
): PdDecider & { readonly matchInfoProducer: string | undefined } {
  return {
    type: 'prefix-based-pd-decider',
    name,
    matchInfoProducer: parameters.matchInfoProducer,
    disaggregate(context, decode): boolean {
      if (parameters.nonCachedTokens === 0) return false;
      const tokens = promptTokenCount(context);
      if (tokens < parameters.promptTokens || tokens < parameters.nonCachedTokens) return false;
      const matches = context.state.read<PrefixMatches>(
        parameters.matchInfoProducer === undefined
          ? PREFIX_MATCHES
          : prefixMatchKey(parameters.matchInfoProducer),
      );
      // No prefix data (no prefix scorer or producer ran): decode only, as upstream fails soft.
      if (!matches) return false;
      const cachedTokens = (matches.matched.get(decode.address) ?? 0) * matches.blockTokens;
      return tokens - cachedTokens >= parameters.nonCachedTokens;
    },
  };
}

export type StageOrder = 'decode-first' | 'prefill-first';

/** `stageOrder` as upstream reads it: case, dashes and underscores ignored; empty = decode-first. */
export function parseStageOrder(value: string): StageOrder | undefined {
  const key = value.toLowerCase().replace(/[-_]/g, '');
  if (key === '' || key === 'decodefirst' || key === 'decode') return 'decode-first';
  if (key === 'prefillfirst' || key === 'prefill') return 'prefill-first';
  return undefined;
}

export interface DisaggParameters {
  stageOrder: StageOrder;
  decodeProfile: string;
  prefillProfile: string;
}

export type DisaggProfileHandler = ProfileHandler &
  PreRequest & {
    /** Sets the prefill decider (`deciders.prefill`), once every plugin exists. */
    useDecider(decider: PdDecider): void;
  };

export function disaggProfileHandler(name: string, parameters: DisaggParameters): DisaggProfileHandler {
  const { decodeProfile, prefillProfile } = parameters;
  let decider: PdDecider | undefined;
  return {
    type: 'disagg-profile-handler',
    name,
    useDecider(d) {
      decider = d;
    },
    pickProfiles(context, profiles, results) {
      const hasPrefill = profiles.has(prefillProfile);
      if (parameters.stageOrder === 'prefill-first') {
        if (hasPrefill && !results.has(prefillProfile)) return [prefillProfile];
        return !results.has(decodeProfile) && profiles.has(decodeProfile) ? [decodeProfile] : [];
      }
      if (!results.has(decodeProfile)) return profiles.has(decodeProfile) ? [decodeProfile] : [];
      if (!hasPrefill || results.has(prefillProfile) || !decider) return [];
      const decode = results.get(decodeProfile)!.targets[0];
      return decode && decider.disaggregate(context, decode) ? [prefillProfile] : [];
    },
    primaryProfile() {
      return decodeProfile;
    },
    preRequest(_context, result: SchedulingResult): void {
      const prefill = result.results.get(prefillProfile)?.targets[0];
      if (prefill) result.headers[PREFILL_HEADER] = prefill.address;
    },
  };
}
