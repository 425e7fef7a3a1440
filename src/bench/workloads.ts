/**
 * @module bench/workloads
 * The traffic shapes the load generator sends. Each workload is a seeded generator of OpenAI requests, so the same
 * seed gives the same sequence of prompts and two routing setups see identical traffic. Prompt lengths are counted
 * in words, which the simulator counts as tokens (a real tokenizer gives somewhat more).
 *
 * - `shared-prefix`: groups of users sharing a long system prompt, each asking its own question (the shape of
 *   inference-perf's shared-prefix generator); a prefix-aware router keeps each group on the replica that caches it.
 * - `multi-turn`: chat sessions whose history grows turn by turn, so every turn repeats the previous turn's prompt.
 * - `lora-mix`: requests spread over LoRA adapters with skewed popularity.
 * - `long-prompt`: long unique prompts and short answers; prefill-bound.
 */
import { LlmisvcError } from '../errors/index.js';
import { randomInt, seededRandom, type Random } from './random.js';

/** One request to send. */
export interface WorkloadRequest {
  path: '/v1/completions' | '/v1/chat/completions';
  body: Record<string, unknown>;
  /** What the request shares with others (the prefix group, session or adapter), for reports and tests. */
  group: string;
}

export interface Workload {
  name: WorkloadName;
  /** The workload's parameters after defaults, as reported. */
  params: Readonly<Record<string, number | string>>;
  /** The next request; deterministic for a given seed and call order. */
  next(): WorkloadRequest;
}

export const workloadNames = ['shared-prefix', 'multi-turn', 'lora-mix', 'long-prompt'] as const;
export type WorkloadName = (typeof workloadNames)[number];

export interface WorkloadOptions {
  /** The model to put in each request (for `lora-mix`: the base model, used when `baseShare` > 0). */
  model: string;
  seed?: number;
  /** Overrides of the workload's parameters, as `--param key=value` gives them. */
  params?: Readonly<Record<string, string>>;
  /** LoRA adapters to use in `lora-mix` when the `adapters` parameter is not set. */
  adapters?: readonly string[];
}

/** Each workload's parameters and their defaults. */
export const workloadDefaults: Readonly<Record<WorkloadName, Readonly<Record<string, number | string>>>> = {
  'shared-prefix': {
    groups: 32,
    promptsPerGroup: 32,
    systemPromptLen: 2048,
    questionLen: 128,
    outputLen: 128,
  },
  'multi-turn': {
    sessions: 32,
    turns: 6,
    systemPromptLen: 512,
    userLen: 64,
    assistantLen: 64,
    outputLen: 64,
  },
  'lora-mix': { adapters: '', skew: 1, baseShare: 0, promptLen: 512, outputLen: 64 },
  'long-prompt': { minPromptLen: 4000, maxPromptLen: 12000, outputLen: 16 },
};

const vocabulary = (
  'time person year way day thing man world life hand part child eye woman place work week case point company ' +
  'number group problem fact system program question government night money story study lot right book word ' +
  'business issue side kind head house service friend father power hour game line end member law car city ' +
  'community name president team minute idea kid body information back parent face others level office door ' +
  'health art war history party result change morning reason research girl guy moment air teacher force ' +
  'education foot boy age policy process music market sense nation plan college interest death experience ' +
  'effect use class control care field development role effort rate heart drug show leader light voice wife ' +
  'police mind price report decision son view relationship town road arm difference value building action ' +
  'model season society tax director position player record paper space ground form event official matter'
).split(' ');

/** `length` words of seeded text. */
export function words(random: Random, length: number): string {
  const out = new Array<string>(length);
  for (let i = 0; i < length; i++) out[i] = vocabulary[randomInt(random, vocabulary.length)] as string;
  return out.join(' ');
}

/**
 * Builds a workload by name.
 *
 * @example createWorkload('shared-prefix', { model: 'llama', seed: 1, params: { groups: '8' } }).next()
 */
export function createWorkload(name: string, options: WorkloadOptions): Workload {
  if (!(workloadNames as readonly string[]).includes(name))
    throw new LlmisvcError('LLMISVC_ERR_CONFIG', `unknown workload '${name}'`, {
      hint: `use one of ${workloadNames.join(', ')}`,
    });
  const workload = name as WorkloadName;
  const params = resolveParams(workload, options.params ?? {});
  const random = seededRandom(options.seed ?? 0);
  switch (workload) {
    case 'shared-prefix':
      return sharedPrefix(options.model, params, random);
    case 'multi-turn':
      return multiTurn(options.model, params, random);
    case 'lora-mix':
      return loraMix(options, params, random);
    case 'long-prompt':
      return longPrompt(options.model, params, random);
  }
}

function resolveParams(
  name: WorkloadName,
  overrides: Readonly<Record<string, string>>,
): Record<string, number | string> {
  const defaults = workloadDefaults[name];
  const params: Record<string, number | string> = { ...defaults };
  for (const [key, raw] of Object.entries(overrides)) {
    if (!(key in defaults))
      throw new LlmisvcError('LLMISVC_ERR_CONFIG', `workload ${name} has no parameter '${key}'`, {
        hint: `its parameters are ${Object.keys(defaults).join(', ')}`,
      });
    if (typeof defaults[key] === 'number') {
      const value = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(value) || value < 0)
        throw new LlmisvcError(
          'LLMISVC_ERR_CONFIG',
          `workload parameter ${key} must be a number >= 0, got '${raw}'`,
        );
      params[key] = value;
    } else {
      params[key] = raw;
    }
  }
  return params;
}

function positive(params: Record<string, number | string>, key: string): number {
  const value = Math.floor(params[key] as number);
  if (value < 1) throw new LlmisvcError('LLMISVC_ERR_CONFIG', `workload parameter ${key} must be at least 1`);
  return value;
}

function sharedPrefix(model: string, params: Record<string, number | string>, random: Random): Workload {
  const groups = positive(params, 'groups');
  const perGroup = positive(params, 'promptsPerGroup');
  const outputLen = positive(params, 'outputLen');
  // The texts are drawn up front from the seed so that group g's system prompt is the same whichever request
  // asks first.
  const systemPrompts = Array.from({ length: groups }, () =>
    words(random, params['systemPromptLen'] as number),
  );
  const questions = Array.from({ length: groups }, () =>
    Array.from({ length: perGroup }, () => words(random, params['questionLen'] as number)),
  );
  return {
    name: 'shared-prefix',
    params,
    next() {
      const g = randomInt(random, groups);
      const q = randomInt(random, perGroup);
      return {
        path: '/v1/completions',
        group: `group-${g}`,
        body: {
          model,
          prompt: `${systemPrompts[g] as string} ${(questions[g] as string[])[q] as string}`,
          max_tokens: outputLen,
        },
      };
    },
  };
}

function multiTurn(model: string, params: Record<string, number | string>, random: Random): Workload {
  const sessions = positive(params, 'sessions');
  const turns = positive(params, 'turns');
  const outputLen = positive(params, 'outputLen');
  interface Session {
    generation: number;
    messages: { role: string; content: string }[];
  }
  const fresh = (generation: number): Session => ({
    generation,
    messages: [{ role: 'system', content: words(random, params['systemPromptLen'] as number) }],
  });
  const state: Session[] = Array.from({ length: sessions }, () => fresh(0));
  return {
    name: 'multi-turn',
    params,
    next() {
      const s = randomInt(random, sessions);
      let session = state[s] as Session;
      // A finished conversation is replaced by a new user's, as in a steady stream of chat sessions.
      if ((session.messages.length - 1) / 2 >= turns) session = state[s] = fresh(session.generation + 1);
      session.messages.push({ role: 'user', content: words(random, params['userLen'] as number) });
      const messages = session.messages.map((m) => ({ ...m }));
      // The reply the next turn carries in its history. A synthetic one keeps the load open-loop: the next turn
      // need not wait for this response.
      session.messages.push({ role: 'assistant', content: words(random, params['assistantLen'] as number) });
      return {
        path: '/v1/chat/completions',
        group: `session-${s}.${session.generation}`,
        body: { model, messages, max_tokens: outputLen },
      };
    },
  };
}

function loraMix(
  options: WorkloadOptions,
  params: Record<string, number | string>,
  random: Random,
): Workload {
  const listed = String(params['adapters'])
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  const adapters = listed.length ? listed : [...(options.adapters ?? [])];
  if (adapters.length === 0)
    throw new LlmisvcError('LLMISVC_ERR_CONFIG', 'the lora-mix workload needs LoRA adapters', {
      hint: 'serve some (llmisvc sim --lora-modules a b) or name them with --param adapters=a,b',
    });
  params['adapters'] = adapters.join(',');
  // Zipf-like popularity: adapter i gets weight 1/(i+1)^skew, so a few adapters carry most of the traffic.
  const skew = params['skew'] as number;
  const weights = adapters.map((_, i) => 1 / Math.pow(i + 1, skew));
  const total = weights.reduce((a, b) => a + b, 0);
  const baseShare = Math.min(1, params['baseShare'] as number);
  const promptLen = positive(params, 'promptLen');
  const outputLen = positive(params, 'outputLen');
  const pick = (): string => {
    if (random() < baseShare) return options.model;
    let r = random() * total;
    for (let i = 0; i < adapters.length; i++) {
      r -= weights[i] as number;
      if (r < 0) return adapters[i] as string;
    }
    return adapters.at(-1) as string;
  };
  return {
    name: 'lora-mix',
    params,
    next() {
      const model = pick();
      return {
        path: '/v1/completions',
        group: model,
        body: { model, prompt: words(random, promptLen), max_tokens: outputLen },
      };
    },
  };
}

function longPrompt(model: string, params: Record<string, number | string>, random: Random): Workload {
  const min = positive(params, 'minPromptLen');
  const max = Math.max(min, positive(params, 'maxPromptLen'));
  const outputLen = positive(params, 'outputLen');
  let index = 0;
  return {
    name: 'long-prompt',
    params,
    next() {
      const length = min + randomInt(random, max - min + 1);
      return {
        path: '/v1/completions',
        group: `prompt-${index++}`,
        body: { model, prompt: words(random, length), max_tokens: outputLen },
      };
    },
  };
}
