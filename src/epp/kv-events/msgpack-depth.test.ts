import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encode } from '@msgpack/msgpack';
import { assertMsgpackDepth, MsgpackTooDeepError } from './msgpack-depth.js';

/** `value` wrapped in `depth` one-item arrays. */
function nested(depth: number, value: unknown = 1): unknown {
  let v = value;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

const NESTING = new Uint8Array(64).fill(0x91);

describe('msgpack depth pre-scan', () => {
  it('accepts nesting up to the limit and refuses one level more, for arrays and maps', () => {
    assert.doesNotThrow(() => assertMsgpackDepth(encode(nested(16)), 16));
    assert.throws(() => assertMsgpackDepth(encode(nested(17)), 16), MsgpackTooDeepError);
    let map: unknown = 1;
    for (let i = 0; i < 17; i++) map = { k: map };
    assert.throws(() => assertMsgpackDepth(encode(map), 16), /more than 16 deep/);
    // Siblings do not add up: a wide, shallow value passes.
    assert.doesNotThrow(() => assertMsgpackDepth(encode(Array.from({ length: 1000 }, () => [[1]])), 3));
  });

  it('skips the payload of every scalar type, so bytes that look like arrays inside them do not count', () => {
    const values: unknown[] = [
      0,
      127,
      -1,
      -32,
      255,
      65_535,
      2 ** 32 - 1,
      2 ** 53,
      -128,
      -32_768,
      -(2 ** 31),
      -(2 ** 53),
      1.5,
      Math.fround(1.5),
      null,
      true,
      false,
      'x'.repeat(31),
      'y'.repeat(200),
      'z'.repeat(70_000),
      'w'.repeat(70_000 * 2),
      NESTING.subarray(0, 10),
      new Uint8Array(300).fill(0x91),
      new Uint8Array(70_000).fill(0x91),
      Buffer.from(NESTING).toString('latin1'),
      Array.from({ length: 20 }, (_, i) => i),
      Array.from({ length: 70_000 }, () => 0),
      Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])),
    ];
    // Each value at depth 2 of a 3-deep limit: a misread length would run into the nesting bytes after it.
    for (const value of values) {
      const bytes = Buffer.concat([encode([[value], [[1]]]), NESTING]);
      assert.doesNotThrow(() => assertMsgpackDepth(bytes, 3), `value ${String(value).slice(0, 20)}`);
    }
    // ext and fixext (no encoder needed): type byte, then data made of 0x91.
    for (const ext of [
      [0xd4, 1, 0x91],
      [0xd5, 1, 0x91, 0x91],
      [0xd6, 1, ...NESTING.subarray(0, 4)],
      [0xd7, 1, ...NESTING.subarray(0, 8)],
      [0xd8, 1, ...NESTING.subarray(0, 16)],
      [0xc7, 3, 1, 0x91, 0x91, 0x91],
      [0xc8, 0, 3, 1, 0x91, 0x91, 0x91],
      [0xc9, 0, 0, 0, 3, 1, 0x91, 0x91, 0x91],
    ])
      assert.doesNotThrow(() => assertMsgpackDepth(new Uint8Array([0x92, ...ext, 0xc0, ...NESTING]), 1));
  });

  it('stops at the limit on a huge nesting payload, and leaves truncated input to the decoder', () => {
    // 4 MiB of 0x91: refused on the 17th byte, long before the decoder would build 4 million arrays.
    assert.throws(() => assertMsgpackDepth(new Uint8Array(4 << 20).fill(0x91), 16), MsgpackTooDeepError);
    for (const truncated of [[0x91], [0xdd, 0xff], [0xc6, 0xff, 0xff, 0xff, 0xff], []])
      assert.doesNotThrow(() => assertMsgpackDepth(new Uint8Array(truncated), 16));
  });
});
