/**
 * @module sim/options
 * The simulator's configuration: every `llmisvc sim` flag as one plain object, its defaults, and the checks that turn
 * a wrong value into an error naming the flag. `startSimulator` and the CLI both go through `resolveSimulatorOptions`
 * so a simulator started in-process behaves exactly like one started as a child process.
 */
import { ValidationError, type FieldProblem } from '../errors/index.js';
import { normalizeHostPort } from './prefill-allow-list.js';

/** What this endpoint does in a prefill/decode (P/D) disaggregated deployment. */
export type SimRole = 'both' | 'prefill' | 'decode';

/** A kind of injected failure, each answered the way vLLM (or a proxy in front of it) would. */
export type FailureKind = 'server_error' | 'rate_limit' | 'unavailable';

/** The performance model's knobs: they decide how long each engine step takes. */
export interface PerformanceOptions {
  /** Most sequences in one running batch (vLLM `--max-num-seqs`). */
  maxNumSeqs: number;
  /** Most tokens scheduled in one engine step, prefill chunks included (vLLM `--max-num-batched-tokens`). */
  maxNumBatchedTokens: number;
  /** KV-cache blocks on the simulated GPU (vLLM `num_gpu_blocks`). */
  numGpuBlocks: number;
  /** Tokens per KV-cache block (vLLM `--block-size`). */
  blockSize: number;
  /** Reuse cached blocks of identical prompt prefixes (vLLM `--enable-prefix-caching`). */
  enablePrefixCaching: boolean;
  /** Longest prompt plus output, in tokens (vLLM `--max-model-len`). */
  maxModelLen: number;
  /** Prefill speed in tokens per second of one step spent only on prefill. */
  prefillTokensPerSecond: number;
  /** Fixed cost of every engine step, in milliseconds. */
  stepOverheadMs: number;
  /** Cost of a decode step with a batch of one, in milliseconds. */
  decodeBaseMs: number;
  /** Extra decode-step cost per running sequence, in milliseconds: inter-token latency grows with the batch. */
  decodePerSeqMs: number;
  /** Most LoRA adapters resident in one batch (vLLM `--max-loras`). */
  maxLoras: number;
  /** Cost of loading an adapter that is not resident, in milliseconds. */
  loraLoadMs: number;
  /** Fixed cost of receiving a remote prefill's KV cache, in milliseconds. */
  kvTransferBaseMs: number;
  /** KV-transfer cost per transferred prompt token, in milliseconds. */
  kvTransferPerTokenMs: number;
}

/** Every `llmisvc sim` flag. All fields are optional for callers; `resolveSimulatorOptions` fills defaults. */
export interface SimulatorOptions extends PerformanceOptions {
  /** Port to listen on; 0 picks a free port. */
  port: number;
  /** Address to bind. */
  host: string;
  /** The base model name served. */
  model: string;
  /** Further names the base model answers to (vLLM `--served-model-name`). */
  servedModelNames: string[];
  /** LoRA adapters, as `name` or `name=path` (vLLM `--lora-modules`). */
  loraModules: string[];
  /** The name in the `x-inference-pod` response header; empty means `sim-<port>`. */
  podName: string;
  role: SimRole;
  /**
   * The prefill endpoints (`host:port`) a decode endpoint may send a prompt to when `x-prefiller-host-port` names one;
   * any other is refused with 403. Empty refuses them all: the header comes from the request, so it is trusted only
   * as far as this list (`llmisvc up` fills it with the pool's prefill endpoints).
   */
  prefillAllowList: string[];
  /** Seed for the generated text and the failure injection. */
  seed: number;
  /** Wall-clock seconds per modelled second: 0.01 runs the model a hundred times faster. */
  timeScale: number;
  /** Output length, in tokens, when a request sets no `max_tokens`: up to this many. */
  defaultMaxTokens: number;
  /** Longest waiting queue before requests are shed with 429; 0 means unbounded, as in vLLM. */
  maxWaitingRequests: number;
  /** Fraction of requests answered with an injected failure. */
  failureRate: number;
  /** Which failures to inject, chosen in turn by the seeded generator. */
  failureKinds: FailureKind[];
  /** Fraction of streamed requests that stall before their first token is delivered. */
  stallRate: number;
  /** Length of a stall, in modelled milliseconds. */
  stallMs: number;
  /** Most client connections open at once; past it Node closes each new one as soon as it is accepted. */
  maxConnections: number;
  /** Wall milliseconds a client has to send a request's head (slow-header clients are cut off). */
  headersTimeoutMs: number;
  /** Wall milliseconds a client has to send a whole request, head and body (slow bodies are cut off). */
  requestTimeoutMs: number;
}

export const defaultSimulatorOptions: Readonly<SimulatorOptions> = Object.freeze({
  port: 8000,
  host: '127.0.0.1',
  model: 'sim-model',
  servedModelNames: [],
  loraModules: [],
  podName: '',
  role: 'both',
  prefillAllowList: [],
  seed: 0,
  timeScale: 1,
  defaultMaxTokens: 128,
  maxWaitingRequests: 0,
  failureRate: 0,
  failureKinds: ['server_error'],
  stallRate: 0,
  stallMs: 2000,
  // Bounds on what clients can hold: a gateway keeps a few hundred connections to one model server at most, and sends
  // a request in milliseconds.
  maxConnections: 4096,
  headersTimeoutMs: 30_000,
  requestTimeoutMs: 60_000,
  // Defaults shaped like an 8B model on one data-centre GPU: ~10k prefill tokens/s, ~10 ms ITL alone, ~40 ms at 128.
  maxNumSeqs: 256,
  maxNumBatchedTokens: 2048,
  numGpuBlocks: 4096,
  blockSize: 16,
  enablePrefixCaching: true,
  maxModelLen: 32768,
  prefillTokensPerSecond: 10000,
  stepOverheadMs: 2,
  decodeBaseMs: 8,
  decodePerSeqMs: 0.25,
  maxLoras: 1,
  loraLoadMs: 50,
  kvTransferBaseMs: 5,
  kvTransferPerTokenMs: 0.02,
} satisfies SimulatorOptions);

/** One parsed `--lora-modules` entry. */
export interface LoraModule {
  name: string;
  path: string;
}

/**
 * Parses `--lora-modules` entries: `name`, `name=path`, or vLLM's JSON form `{"name": ..., "path": ...}`.
 *
 * @example parseLoraModules(['sql-lora=/adapters/sql', 'chat']) // [{name:'sql-lora', path:'/adapters/sql'}, {name:'chat', path:'chat'}]
 */
export function parseLoraModules(entries: readonly string[]): LoraModule[] {
  return entries.map((entry) => {
    const text = entry.trim();
    if (text.startsWith('{')) {
      const parsed = JSON.parse(text) as { name?: unknown; path?: unknown };
      if (typeof parsed.name !== 'string' || !parsed.name) throw new Error(`'${entry}' has no "name"`);
      return { name: parsed.name, path: typeof parsed.path === 'string' ? parsed.path : parsed.name };
    }
    const eq = text.indexOf('=');
    const name = eq < 0 ? text : text.slice(0, eq);
    if (!name) throw new Error(`'${entry}' has an empty adapter name`);
    return { name, path: eq < 0 ? name : text.slice(eq + 1) };
  });
}

const positiveIntegers = [
  'maxNumSeqs',
  'maxNumBatchedTokens',
  'numGpuBlocks',
  'blockSize',
  'maxModelLen',
  'defaultMaxTokens',
  'maxLoras',
  'maxConnections',
  'headersTimeoutMs',
  'requestTimeoutMs',
] as const;
const nonNegativeNumbers = [
  'stepOverheadMs',
  'decodeBaseMs',
  'decodePerSeqMs',
  'loraLoadMs',
  'kvTransferBaseMs',
  'kvTransferPerTokenMs',
  'stallMs',
  'maxWaitingRequests',
  'seed',
] as const;

/** Flag spelling of an option, for error messages: `maxNumSeqs` → `--max-num-seqs`. */
export function flagName(option: string): string {
  return `--${option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/**
 * Fills defaults and checks every value, reporting all problems at once.
 * Throws {@link ValidationError} naming each wrong flag.
 */
export function resolveSimulatorOptions(options: Partial<SimulatorOptions> = {}): SimulatorOptions {
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const resolved: SimulatorOptions = { ...defaultSimulatorOptions, ...defined };
  const problems: FieldProblem[] = [];
  const problem = (option: string, message: string): void => {
    problems.push({ path: flagName(option), message });
  };
  for (const key of positiveIntegers) {
    const value = resolved[key];
    if (!Number.isInteger(value) || value < 1)
      problem(key, `must be a positive integer, got ${String(value)}`);
  }
  for (const key of nonNegativeNumbers) {
    const value = resolved[key];
    if (!Number.isFinite(value) || value < 0) problem(key, `must be a number >= 0, got ${String(value)}`);
  }
  if (!Number.isInteger(resolved.port) || resolved.port < 0 || resolved.port > 65535)
    problem('port', `must be an integer from 0 to 65535, got ${String(resolved.port)}`);
  if (!(resolved.timeScale > 0))
    problem('timeScale', `must be a number > 0, got ${String(resolved.timeScale)}`);
  if (!(resolved.prefillTokensPerSecond > 0))
    problem('prefillTokensPerSecond', `must be > 0, got ${String(resolved.prefillTokensPerSecond)}`);
  for (const key of ['failureRate', 'stallRate'] as const) {
    const value = resolved[key];
    if (!(value >= 0 && value <= 1)) problem(key, `must be a fraction from 0 to 1, got ${String(value)}`);
  }
  if (!['both', 'prefill', 'decode'].includes(resolved.role))
    problem('role', `must be one of both, prefill, decode; got '${resolved.role}'`);
  for (const entry of resolved.prefillAllowList) {
    if (normalizeHostPort(entry) === undefined)
      problem('prefillAllowList', `'${entry}' is not a host:port (for example 10.0.0.5:8000)`);
  }
  for (const kind of resolved.failureKinds) {
    if (!['server_error', 'rate_limit', 'unavailable'].includes(kind))
      problem('failureKinds', `'${kind}' is not one of server_error, rate_limit, unavailable`);
  }
  if (resolved.requestTimeoutMs < resolved.headersTimeoutMs)
    problem('requestTimeoutMs', `must be at least --headers-timeout-ms (${resolved.headersTimeoutMs})`);
  if (!resolved.model) problem('model', 'must not be empty');
  if (resolved.maxNumBatchedTokens < resolved.maxNumSeqs)
    problem('maxNumBatchedTokens', `must be at least --max-num-seqs (${resolved.maxNumSeqs})`);
  let loras: LoraModule[] = [];
  try {
    loras = parseLoraModules(resolved.loraModules);
  } catch (error) {
    problem('loraModules', (error as Error).message);
  }
  const names = [resolved.model, ...resolved.servedModelNames, ...loras.map((l) => l.name)];
  const duplicate = names.find((name, i) => names.indexOf(name) !== i);
  if (duplicate) problem('loraModules', `the model name '${duplicate}' is used twice`);
  if (problems.length) throw new ValidationError('simulator options', problems);
  return resolved;
}
