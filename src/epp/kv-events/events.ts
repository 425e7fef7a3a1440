/**
 * @module epp/kv-events/events
 * Decoding vLLM's KV-cache event batches (msgpack), pure. A batch is `[ts, events, data_parallel_rank?]`; each event
 * is either a positional array tagged by its first element (msgspec `array_like=True`, trailing defaults omitted) or,
 * since vllm-project/vllm#42892, a map with the tag under `"type"`. Both become the same {@link KvEvent}. The field
 * orders are vLLM's (and what llm-d-router's vLLM adapter reads):
 *
 * - `BlockStored`: block_hashes, parent_block_hash, token_ids, block_size, lora_id, medium, lora_name, extra_keys,
 *   group_idx, kv_cache_spec_kind, kv_cache_spec_sliding_window
 * - `BlockRemoved`: block_hashes, medium, group_idx
 * - `AllBlocksCleared`: nothing
 *
 * Block hashes are 64-bit integers (or bytes, for sha256 hashing); they are only ever compared, so they become
 * strings. The decoder has hard limits on every length and on nesting depth, so a hostile payload costs at most its
 * own size to reject.
 */
import { Decoder } from '@msgpack/msgpack';
import { assertMsgpackDepth } from './msgpack-depth.js';

export interface BlockStored {
  readonly type: 'BlockStored';
  /** The engine's block hashes (opaque keys), oldest block first. */
  readonly blockHashes: readonly string[];
  /** The engine hash of the block before the first one; undefined = the sequence starts here. */
  readonly parentHash: string | undefined;
  readonly tokenIds: readonly number[];
  /** Tokens per engine block. */
  readonly blockSize: number;
  readonly loraId: number | undefined;
  /** Where the blocks are (`GPU`, `CPU`, …); undefined = GPU. */
  readonly medium: string | undefined;
  readonly loraName: string | undefined;
  /** Set by hybrid (HMA) models: which KV-cache group, and its kind. */
  readonly groupIdx: number | undefined;
  readonly kvCacheSpecKind: string | undefined;
}

export interface BlockRemoved {
  readonly type: 'BlockRemoved';
  readonly blockHashes: readonly string[];
  readonly medium: string | undefined;
  readonly groupIdx: number | undefined;
}

export interface AllBlocksCleared {
  readonly type: 'AllBlocksCleared';
}

export type KvEvent = BlockStored | BlockRemoved | AllBlocksCleared;

export interface KvEventBatch {
  readonly timestamp: number;
  readonly events: readonly KvEvent[];
  readonly dataParallelRank: number | undefined;
  /** Events that were skipped: an unknown tag (a newer vLLM) or a malformed known event, with why. */
  readonly skipped: readonly string[];
}

/** A payload that is not a KV event batch at all. */
export class KvEventDecodeError extends Error {
  override readonly name = 'KvEventDecodeError';
}

export interface DecodeLimits {
  /** Most events in one batch. */
  maxEvents: number;
  /** Most items in any one array (token ids, block hashes). */
  maxArrayLength: number;
  /** Deepest nesting of arrays and maps (a batch is 1, its events 2, an event's block hashes 3). */
  maxDepth: number;
}

/**
 * vLLM's batches nest 4 deep (batch → events → event → hashes / token ids), 5–6 with `extra_keys`; 16 leaves room
 * for new fields and refuses the deep payloads that cost the decoder an array per byte.
 */
export const DEFAULT_DECODE_LIMITS: DecodeLimits = {
  maxEvents: 65_536,
  maxArrayLength: 1 << 20,
  maxDepth: 16,
};

/**
 * Longest byte block hash accepted. vLLM's are 64-bit integers or a sha256 digest (32 bytes); 64 allows a 512-bit
 * hash. Each becomes part of an index key, so without a bound a pod could make every entry of the (count-bounded)
 * index 128 KiB. Longer ones are refused rather than digested: no real server sends them, and refusing costs nothing.
 */
export const MAX_HASH_BYTES = 64;

const STORED_FIELDS = [
  'block_hashes',
  'parent_block_hash',
  'token_ids',
  'block_size',
  'lora_id',
  'medium',
  'lora_name',
  'extra_keys',
  'group_idx',
  'kv_cache_spec_kind',
  'kv_cache_spec_sliding_window',
] as const;
const REMOVED_FIELDS = ['block_hashes', 'medium', 'group_idx'] as const;

function decoderFor(limits: DecodeLimits): Decoder {
  return new Decoder({
    useBigInt64: true,
    maxStrLength: 1 << 16,
    maxBinLength: 1 << 16,
    maxArrayLength: Math.max(limits.maxArrayLength, limits.maxEvents),
    maxMapLength: 64,
    maxExtLength: 0,
  });
}

const defaultDecoder = decoderFor(DEFAULT_DECODE_LIMITS);

/**
 * Decodes one ZMQ payload. Throws {@link KvEventDecodeError} when the payload is not a batch; a batch whose single
 * events are malformed or of an unknown kind keeps the good ones and lists the rest in `skipped`.
 */
export function decodeKvEventBatch(
  payload: Uint8Array,
  limits: DecodeLimits = DEFAULT_DECODE_LIMITS,
): KvEventBatch {
  let raw: unknown;
  try {
    assertMsgpackDepth(payload, limits.maxDepth);
    const decoder = limits === DEFAULT_DECODE_LIMITS ? defaultDecoder : decoderFor(limits);
    raw = decoder.decode(payload);
  } catch (error) {
    throw new KvEventDecodeError(`not msgpack: ${(error as Error).message}`);
  }
  if (!Array.isArray(raw) || raw.length < 2)
    throw new KvEventDecodeError('a KV event batch is an array [ts, events, data_parallel_rank?]');
  const [ts, rawEvents, rank] = raw as unknown[];
  if (!Array.isArray(rawEvents))
    throw new KvEventDecodeError('events (item 1 of the batch) must be an array');
  if (rawEvents.length > limits.maxEvents)
    throw new KvEventDecodeError(`${rawEvents.length} events in one batch (limit ${limits.maxEvents})`);
  const events: KvEvent[] = [];
  const skipped: string[] = [];
  for (const rawEvent of rawEvents) {
    try {
      events.push(toEvent(rawEvent));
    } catch (error) {
      skipped.push((error as Error).message);
    }
  }
  return {
    timestamp: typeof ts === 'number' ? ts : 0,
    events,
    dataParallelRank: rank === null || rank === undefined ? undefined : integer(rank, 'data_parallel_rank'),
    skipped,
  };
}

/** Normalises an event (array or map) to its positional fields, tag first. */
function fieldsOf(raw: unknown): unknown[] {
  if (Array.isArray(raw)) return raw;
  if (raw instanceof Map || typeof raw !== 'object' || raw === null || raw instanceof Uint8Array)
    throw new Error('an event must be an array or a map');
  const map = raw as Record<string, unknown>;
  const tag = map['type'];
  if (typeof tag !== 'string') throw new Error('a map-encoded event needs a string "type"');
  const order = tag === 'BlockStored' ? STORED_FIELDS : tag === 'BlockRemoved' ? REMOVED_FIELDS : [];
  return [tag, ...order.map((name) => map[name])];
}

function toEvent(raw: unknown): KvEvent {
  const f = fieldsOf(raw);
  const tag = f[0];
  if (typeof tag !== 'string') throw new Error('event tag is not a string');
  switch (tag) {
    case 'BlockStored': {
      if (f.length < 5) throw new Error(`BlockStored: needs at least 5 fields, got ${f.length}`);
      const blockSize = integer(f[4], 'BlockStored.block_size');
      if (blockSize <= 0) throw new Error('BlockStored.block_size must be positive');
      return {
        type: 'BlockStored',
        blockHashes: hashes(f[1], 'BlockStored.block_hashes'),
        parentHash: parentOf(f[2]),
        tokenIds: tokens(f[3]),
        blockSize,
        loraId: optional(f[5], (v) => integer(v, 'BlockStored.lora_id')),
        medium: optional(f[6], (v) => string(v, 'BlockStored.medium')),
        loraName: optional(f[7], (v) => string(v, 'BlockStored.lora_name')),
        groupIdx: optional(f[9], (v) => integer(v, 'BlockStored.group_idx')),
        kvCacheSpecKind: optional(f[10], (v) => string(v, 'BlockStored.kv_cache_spec_kind')),
      };
    }
    case 'BlockRemoved':
      if (f.length < 2) throw new Error(`BlockRemoved: needs at least 2 fields, got ${f.length}`);
      return {
        type: 'BlockRemoved',
        blockHashes: hashes(f[1], 'BlockRemoved.block_hashes'),
        medium: optional(f[2], (v) => string(v, 'BlockRemoved.medium')),
        groupIdx: optional(f[3], (v) => integer(v, 'BlockRemoved.group_idx')),
      };
    case 'AllBlocksCleared':
      return { type: 'AllBlocksCleared' };
    default:
      throw new Error(`unknown event tag ${JSON.stringify(tag.slice(0, 64))}`);
  }
}

/** No parent is nil, or 0 in the positional encoding (as llm-d reads it: a zero parent hash starts a sequence). */
function parentOf(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  const key = hashKey(value, 'BlockStored.parent_block_hash');
  return key === '0' ? undefined : key;
}

function optional<T>(value: unknown, read: (v: unknown) => T): T | undefined {
  return value === null || value === undefined ? undefined : read(value);
}

function integer(value: unknown, field: string): number {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (
    typeof value === 'bigint' &&
    value >= BigInt(Number.MIN_SAFE_INTEGER) &&
    value <= BigInt(Number.MAX_SAFE_INTEGER)
  )
    return Number(value);
  throw new Error(`${field} must be an integer`);
}

/**
 * Longest name an event or topic may carry (a model, an adapter, a medium): names are kept as keys (the index's
 * roots, up to 4,096 of them), so a model server must not make each one megabytes long.
 */
export const MAX_KV_NAME_LENGTH = 1024;

function string(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new Error(`${field} must be a string`);
  if (value.length > MAX_KV_NAME_LENGTH)
    throw new Error(`${field} is longer than ${MAX_KV_NAME_LENGTH} characters`);
  return value;
}

/** A block hash as a comparable key: 64-bit integers in decimal, bytes (sha256 hashing) in hex. */
function hashKey(value: unknown, field: string): string {
  if (typeof value === 'number' && Number.isInteger(value)) return String(value);
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) {
    if (value.byteLength > MAX_HASH_BYTES)
      throw new Error(`${field}: a ${value.byteLength}-byte hash (limit ${MAX_HASH_BYTES})`);
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex');
  }
  throw new Error(`${field} must hold integers or bytes`);
}

function hashes(value: unknown, field: string): string[] {
  if (!Array.isArray(value)) throw new Error(`${field} must be an array`);
  return value.map((v) => hashKey(v, field));
}

function tokens(value: unknown): number[] {
  if (!Array.isArray(value)) throw new Error('BlockStored.token_ids must be an array');
  for (const t of value)
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > 0xffffffff)
      throw new Error('BlockStored.token_ids must hold 32-bit unsigned integers');
  return value as number[];
}

/** The parts of a vLLM KV-events topic `kv@<pod>@<model>` (the pod part may be `ip` or `ip:port`). */
export function parseKvTopic(topic: string): { pod: string; model: string } | undefined {
  const first = topic.indexOf('@');
  const second = first < 0 ? -1 : topic.indexOf('@', first + 1);
  if (second < 0) return undefined;
  const pod = topic.slice(first + 1, second);
  const model = topic.slice(second + 1);
  return pod === '' || model.length > MAX_KV_NAME_LENGTH ? undefined : { pod, model };
}
