/**
 * @module epp/kv-events
 * The model servers' KV-cache events (vLLM's ZMQ + msgpack stream): decoding, the block index they feed, and the
 * subscription. Used by the `precise-prefix-cache-producer` plugin.
 */
export {
  decodeKvEventBatch,
  parseKvTopic,
  KvEventDecodeError,
  DEFAULT_DECODE_LIMITS,
  type KvEvent,
  type KvEventBatch,
  type BlockStored,
  type BlockRemoved,
  type AllBlocksCleared,
} from './events.js';
export { requestBlockKeys, rootBlockKey, chainBlockKey } from './block-keys.js';
export { KvBlockIndex, type KvBlockIndexOptions, type StoreOutcome } from './kv-block-index.js';
export { KvEventSubscriber, type KvEventMessage, type KvEventSubscriberOptions } from './subscriber.js';
