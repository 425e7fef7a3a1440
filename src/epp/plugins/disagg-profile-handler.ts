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
  LinkedPlugin,
  Plugin,
  PreRequest,
  ProfileHandler,
  SchedulingContext,
  SchedulingResult,
} from '../types.js';
import { isRecord } from '../is-record.js';
import type { Parameters } from './parameters.js';
import { PREFILL_HEADER } from './prefill-header-handler.js';
import { matchInfoProducerParameter, prefixMatchesKeyOf, type PrefixMatches } from './prefix-cache-scorer.js';
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
  const matchesKey = prefixMatchesKeyOf(parameters.matchInfoProducer);
  return {
    type: 'prefix-based-pd-decider',
    name,
    matchInfoProducer: parameters.matchInfoProducer,
    disaggregate(context, decode): boolean {
      if (parameters.nonCachedTokens === 0) return false;
      const tokens = promptTokenCount(context);
      if (tokens < parameters.promptTokens || tokens < parameters.nonCachedTokens) return false;
      const matches = context.state.read<PrefixMatches>(matchesKey);
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

/** `prefix-based-pd-decider`'s parameters as llm-d-router names them. */
export function prefixBasedPdDeciderFactory(name: string, p: Parameters): PdDecider {
  return prefixBasedPdDecider(name, {
    nonCachedTokens: p.integer('nonCachedTokens', 0, 0),
    promptTokens: p.integer('promptTokens', 0, 0),
    matchInfoProducer: matchInfoProducerParameter(p),
  });
}

/** A mapping parameter of plugin names (`profiles`, `deciders`): unknown keys and non-strings are named. */
function nameMapping(p: Parameters, key: string, known: readonly string[]): Partial<Record<string, string>> {
  const raw = p.raw(key);
  if (raw === undefined || raw === null) return {};
  if (!isRecord(raw)) {
    p.problem(key, `must be a mapping of ${known.join(', ')} to names`);
    return {};
  }
  const out: Partial<Record<string, string>> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (!known.includes(k)) p.problem(`${key}.${k}`, `unknown field (known: ${known.join(', ')})`);
    else if (typeof v !== 'string') p.problem(`${key}.${k}`, 'must be a name');
    else if (v !== '') out[k] = v;
  }
  return out;
}

/**
 * llm-d-router's `disagg-profile-handler`: `stageOrder`, `profiles.{decode, prefill, encode}` and
 * `deciders.prefill` (a prefill decider plugin, linked by name once every plugin exists), or their earlier flat
 * names. Encode disaggregation is refused: endpoints have no encode role here.
 */
export function disaggProfileHandlerFactory(
  name: string,
  p: Parameters,
): DisaggProfileHandler & LinkedPlugin {
  const order = p.string('stageOrder', '');
  const stageOrder = parseStageOrder(order);
  if (!stageOrder) p.problem('stageOrder', `must be decode-first or prefill-first, got "${order}"`);
  const profiles = nameMapping(p, 'profiles', ['decode', 'prefill', 'encode']);
  const deciders = nameMapping(p, 'deciders', ['prefill', 'encode']);
  // The flat names of earlier releases (upstream still reads them, deprecated), each into its nested place.
  const legacy: [string, Partial<Record<string, string>>, string][] = [
    ['decodeProfile', profiles, 'decode'],
    ['prefillProfile', profiles, 'prefill'],
    ['encodeProfile', profiles, 'encode'],
    ['prefillDeciderPluginName', deciders, 'prefill'],
    ['deciderPluginName', deciders, 'prefill'],
    ['encodeDeciderPluginName', deciders, 'encode'],
  ];
  for (const [flat, into, slot] of legacy) {
    if (!p.has(flat)) continue;
    const value = p.string(flat, '');
    if (into[slot] !== undefined)
      p.problem(flat, `${into === profiles ? 'profiles' : 'deciders'}.${slot} is given too: give it once`);
    else if (value !== '') into[slot] = value;
  }
  if (deciders['encode'] !== undefined)
    p.problem(
      'deciders.encode',
      'encode disaggregation is not supported: endpoints have no encode role here (llm-d.ai/role is prefill, decode or both)',
    );
  if (stageOrder === 'prefill-first' && deciders['prefill'] !== undefined)
    p.problem(
      'deciders.prefill',
      'a prefill decider needs stageOrder decode-first (it decides on the decode endpoint, which prefill-first picks last)',
    );
  const handler = disaggProfileHandler(name, {
    stageOrder: stageOrder ?? 'decode-first',
    decodeProfile: profiles['decode'] ?? 'decode',
    prefillProfile: profiles['prefill'] ?? 'prefill',
  });
  return Object.assign(handler, {
    link(plugins: ReadonlyMap<string, Plugin>, refused: ReadonlySet<string>): void {
      const ref = deciders['prefill'];
      if (ref === undefined || refused.has(ref)) return;
      const decider = plugins.get(ref);
      if (!decider)
        p.problem(
          'deciders.prefill',
          `no plugin named "${ref}" in plugins (defined: ${[...plugins.keys()].join(', ')})`,
        );
      else if (!isPdDecider(decider))
        p.problem(
          'deciders.prefill',
          `"${ref}" (${decider.type}) is not a prefill decider: use prefix-based-pd-decider or always-disagg-pd-decider`,
        );
      else handler.useDecider(decider);
    },
  });
}
