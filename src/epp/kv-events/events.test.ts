import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encode } from '@msgpack/msgpack';
import {
  decodeKvEventBatch,
  KvEventDecodeError,
  MAX_HASH_BYTES,
  MAX_KV_NAME_LENGTH,
  parseKvTopic,
  type BlockStored,
} from './events.js';

const stored = (hash: unknown, extraKeys?: unknown): unknown[] => {
  const event: unknown[] = ['BlockStored', [hash], null, [1, 2, 3, 4], 4];
  if (extraKeys !== undefined) event.push(null, null, null, extraKeys);
  return event;
};
const batch = (...events: unknown[]) => encode([1, events, 0]);

describe('KV event decoding limits', () => {
  it('keeps byte hashes up to MAX_HASH_BYTES (sha256 is 32) and drops events with longer ones as malformed', () => {
    const sha256 = new Uint8Array(32).fill(7);
    const decoded = decodeKvEventBatch(
      batch(
        stored(sha256),
        stored(new Uint8Array(MAX_HASH_BYTES).fill(1)),
        stored(new Uint8Array(MAX_HASH_BYTES + 1)),
        stored(new Uint8Array(65_535)),
        ['BlockRemoved', [new Uint8Array(1024)]],
        ['BlockStored', [1], new Uint8Array(MAX_HASH_BYTES + 1), [1, 2, 3, 4], 4],
      ),
    );
    assert.equal(decoded.events.length, 2);
    const [first] = decoded.events as BlockStored[];
    assert.deepEqual(first?.blockHashes, [Buffer.from(sha256).toString('hex')]);
    assert.equal(decoded.skipped.length, 4);
    assert.match(decoded.skipped[0]!, /65-byte hash \(limit 64\)/);
  });

  it('refuses deeply nested payloads before decoding them, and accepts the depth vLLM sends', () => {
    // The audit's payload: one-item arrays nested a million deep.
    const deep = new Uint8Array((1 << 20) + 1).fill(0x91);
    deep[deep.length - 1] = 0xc0;
    assert.throws(
      () => decodeKvEventBatch(deep),
      (e: Error) => e instanceof KvEventDecodeError && /deep/.test(e.message),
    );
    // A well-formed batch whose extra_keys nest too deep is refused as a whole, not decoded.
    let extra: unknown = 'mm-hash';
    for (let i = 0; i < 14; i++) extra = [extra];
    assert.throws(() => decodeKvEventBatch(batch(stored(1, extra))), /nested more than 16 deep/);
    // vLLM's extra_keys (one tuple per block) nest 6 deep in all.
    const ok = decodeKvEventBatch(batch(stored(1, [['lora', ['mm-hash', 0]]])));
    assert.equal(ok.events.length, 1);
  });

  it('drops names past MAX_KV_NAME_LENGTH: each one would be kept as a key of the index', () => {
    const named = (name: string) => ['BlockStored', [1], null, [1, 2, 3, 4], 4, null, null, name];
    const decoded = decodeKvEventBatch(batch(named('adapter-a'), named('x'.repeat(64 * 1024))));
    assert.equal(decoded.events.length, 1);
    assert.match(decoded.skipped[0]!, /lora_name is longer than 1024 characters/);
    assert.deepEqual(parseKvTopic('kv@10.0.0.1@m'), { pod: '10.0.0.1', model: 'm' });
    assert.equal(parseKvTopic(`kv@10.0.0.1@${'m'.repeat(MAX_KV_NAME_LENGTH + 1)}`), undefined);
  });
});
