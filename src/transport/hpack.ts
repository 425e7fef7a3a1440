/**
 * @module transport/hpack
 * HPACK (RFC 7541) for the server side of the EPP's own HTTP/2 layer: a decoder of the peer's header blocks, with
 * its dynamic table, and an encoder that never indexes (no dynamic table, so the peer's SETTINGS_HEADER_TABLE_SIZE
 * never matters) and never uses Huffman.
 *
 * Huffman decoding walks the code tree four bits at a time: the 256 internal nodes of the tree (plus a dead state
 * for the EOS symbol) times 16 nibbles make a 4,112-entry table built at load, each entry giving the next node and
 * the byte completed on the way, if any (codes are 5 bits or more, so a nibble completes at most one). Whether the
 * bits left at the end are valid padding (at most 7, all ones) is a property of the node they end at.
 */

import { HUFFMAN_CODES, HUFFMAN_LENGTHS } from './hpack-huffman.js';

/** A malformed header block: the connection must end with GOAWAY(COMPRESSION_ERROR). */
export class HpackError extends Error {}
HpackError.prototype.name = 'HpackError';

/** RFC 7541 Appendix A: index 1 is element 0. */
const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];
const STATIC_COUNT = STATIC_TABLE.length;
const STATIC_NAMES: readonly string[] = STATIC_TABLE.map((e) => e[0]);
const STATIC_VALUES: readonly string[] = STATIC_TABLE.map((e) => e[1]);

/** Per static name: its lowest index, and the index of each (name, value) pair the table has. */
interface StaticName {
  readonly index: number;
  readonly values: Map<string, number>;
}
const STATIC_LOOKUP = new Map<string, StaticName>();
for (let i = 0; i < STATIC_COUNT; i++) {
  const [name, value] = STATIC_TABLE[i]!;
  let entry = STATIC_LOOKUP.get(name);
  if (entry === undefined) {
    entry = { index: i + 1, values: new Map() };
    STATIC_LOOKUP.set(name, entry);
  }
  if (!entry.values.has(value)) entry.values.set(value, i + 1);
}

/** RFC 7541 §4.1: each entry costs its octets plus 32. */
const ENTRY_OVERHEAD = 32;
const MAX_INTEGER = 0x7fffffff;

// Huffman decode table entry: bits 0-7 the completed byte, bit 8 set if a byte was completed, bit 9 set if the
// node reached is a valid place to end (root, or at most 7 one-bits into a code), bits 10+ the node reached × 16.
const EMIT = 1 << 8;
const ACCEPT = 1 << 9;
const STATE_SHIFT = 10;
const EOS = 256;
const HUFFMAN = buildHuffmanTable();

function buildHuffmanTable(): Int32Array {
  // The tree, flat: children of internal node n at 2n and 2n+1; >= 0 an internal node, < 0 the leaf ~symbol.
  const child = new Int32Array(2 * 256).fill(0x7fffffff);
  const accept = new Uint8Array(256);
  accept[0] = 1;
  let nodes = 1;
  for (let sym = 0; sym <= EOS; sym++) {
    const code = HUFFMAN_CODES[sym]!;
    const length = HUFFMAN_LENGTHS[sym]!;
    let node = 0;
    let ones = true;
    for (let bit = length - 1; bit >= 0; bit--) {
      const b = (code >>> bit) & 1;
      ones &&= b === 1;
      const slot = 2 * node + b;
      if (bit === 0) {
        if (child[slot] !== 0x7fffffff) throw new Error(`Huffman table: code of ${sym} is not prefix-free`);
        child[slot] = ~sym;
      } else {
        if (child[slot] === 0x7fffffff) {
          if (nodes === 256) throw new Error('Huffman table: more than 256 internal nodes');
          child[slot] = nodes;
          // Depth of the new node is length - bit; valid padding is up to 7 one-bits.
          accept[nodes] = ones && length - bit <= 7 ? 1 : 0;
          nodes++;
        } else if (child[slot]! < 0) {
          throw new Error(`Huffman table: code of ${sym} is not prefix-free`);
        }
        node = child[slot]!;
      }
    }
  }
  if (nodes !== 256 || child.includes(0x7fffffff)) throw new Error('Huffman table: not a complete code');
  // Node 256 is dead: reached through EOS, never left, never accepting.
  const table = new Int32Array(257 * 16).fill(256 << (STATE_SHIFT + 4));
  for (let state = 0; state < 256; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let entry = 0;
      for (let bit = 3; bit >= 0 && node !== 256; bit--) {
        const next = child[2 * node + ((nibble >>> bit) & 1)]!;
        if (next >= 0) {
          node = next;
        } else if (~next === EOS) {
          node = 256;
        } else {
          entry = EMIT | ~next;
          node = 0;
        }
      }
      table[state * 16 + nibble] =
        ((node * 16) << STATE_SHIFT) | (node !== 256 && accept[node] ? ACCEPT : 0) | entry;
    }
  }
  return table;
}

/** Huffman output is at most 8/5 of its input; one buffer, reused, since each string is sliced out before use. */
let huffmanScratch = Buffer.allocUnsafe(1024);

const EMPTY = Buffer.alloc(0);

export class HpackDecoder {
  private readonly maxTableSize: number;
  /** The dynamic table's current maximum, set by the peer's size updates. */
  private capacity: number;
  private size = 0;
  /** Ring of entries: the newest at head - 1, the oldest at head - count (both masked). */
  private names: string[] = new Array<string>(16).fill('');
  private values: string[] = new Array<string>(16).fill('');
  private mask = 15;
  private head = 0;
  private count = 0;
  // The block being decoded and the position in it.
  private buf: Buffer = EMPTY;
  private pos = 0;

  /** maxTableSize: the SETTINGS_HEADER_TABLE_SIZE we advertise (default 4096); the peer's dynamic table size updates may not exceed it. */
  constructor(maxTableSize = 4096) {
    if (!Number.isInteger(maxTableSize) || maxTableSize < 0 || maxTableSize > 0xffffffff) {
      throw new RangeError(`invalid HPACK table size ${maxTableSize}`);
    }
    this.maxTableSize = maxTableSize;
    this.capacity = maxTableSize;
  }

  /**
   * Decodes one complete header block (all HEADERS+CONTINUATION fragments joined), calling `onField(name, value)`
   * for each field in order; names and values are latin1 strings. Throws HpackError on malformed input, or as soon
   * as the header list size (RFC 9113 §6.5.2: name + value + 32 per field) exceeds `maxListBytes`. After a throw
   * the dynamic table may be partly updated, so the decoder (and the connection) is done. An error thrown by
   * `onField` goes through unchanged.
   */
  decode(block: Uint8Array, onField: (name: string, value: string) => void, maxListBytes = Infinity): void {
    const buf = Buffer.isBuffer(block)
      ? block
      : Buffer.from(block.buffer, block.byteOffset, block.byteLength);
    const end = buf.length;
    this.buf = buf;
    this.pos = 0;
    let listBytes = 0;
    let fields = false;
    try {
      while (this.pos < end) {
        const first = buf[this.pos]!;
        let name: string;
        let value: string;
        if (first >= 0x80) {
          // Indexed field (§6.1).
          const index = this.integer(7);
          name = this.nameAt(index);
          value = index <= STATIC_COUNT ? STATIC_VALUES[index - 1]! : this.values[this.slot(index)]!;
        } else if (first >= 0x40) {
          // Literal with incremental indexing (§6.2.1).
          const index = this.integer(6);
          name = index === 0 ? this.string() : this.nameAt(index);
          value = this.string();
          this.insert(name, value);
        } else if (first >= 0x20) {
          // Dynamic table size update (§6.3): only before the block's first field (§4.2).
          if (fields) throw new HpackError('dynamic table size update after a header field');
          const capacity = this.integer(5);
          if (capacity > this.maxTableSize) {
            throw new HpackError(`dynamic table size update to ${capacity} exceeds ${this.maxTableSize}`);
          }
          this.capacity = capacity;
          this.evictTo(capacity);
          continue;
        } else {
          // Literal without indexing (0000) or never indexed (0001) (§6.2.2, §6.2.3): the same to a decoder.
          const index = this.integer(4);
          name = index === 0 ? this.string() : this.nameAt(index);
          value = this.string();
        }
        fields = true;
        listBytes += name.length + value.length + ENTRY_OVERHEAD;
        if (listBytes > maxListBytes) throw new HpackError(`header list larger than ${maxListBytes} bytes`);
        onField(name, value);
      }
    } finally {
      // Not to keep the block alive through the connection's decoder.
      this.buf = EMPTY;
    }
  }

  /** An integer with an N-bit prefix (§5.1), at most 2^31 - 1. */
  private integer(prefixBits: number): number {
    const buf = this.buf;
    const max = (1 << prefixBits) - 1;
    let value = buf[this.pos++]! & max;
    if (value < max) return value;
    let scale = 1;
    for (let i = 0; i < 5; i++) {
      if (this.pos >= buf.length) throw new HpackError('truncated integer');
      const byte = buf[this.pos++]!;
      value += (byte & 0x7f) * scale;
      if (value > MAX_INTEGER) throw new HpackError('integer overflow');
      if (byte < 0x80) return value;
      scale *= 128;
    }
    throw new HpackError('integer longer than 5 continuation bytes');
  }

  /** A string literal (§5.2). */
  private string(): string {
    const buf = this.buf;
    if (this.pos >= buf.length) throw new HpackError('truncated string length');
    const huffman = buf[this.pos]! >= 0x80;
    const length = this.integer(7);
    const start = this.pos;
    if (length > buf.length - start) throw new HpackError('truncated string');
    this.pos = start + length;
    // toString('latin1', …), not the undocumented latin1Slice it calls: ~10 ns more per string (measured), for the
    // few literal strings a request's block carries once the dynamic table holds the rest.
    return huffman
      ? huffmanDecode(buf, start, start + length)
      : buf.toString('latin1', start, start + length);
  }

  private nameAt(index: number): string {
    if (index === 0) throw new HpackError('index 0');
    if (index <= STATIC_COUNT) return STATIC_NAMES[index - 1]!;
    return this.names[this.slot(index)]!;
  }

  /** The ring slot of dynamic table index `index` (62 = newest). */
  private slot(index: number): number {
    const i = index - STATIC_COUNT - 1;
    if (i >= this.count)
      throw new HpackError(`index ${index} beyond the table (${STATIC_COUNT + this.count})`);
    return (this.head - 1 - i) & this.mask;
  }

  /** Adds an entry (§4.4): evicts the oldest until it fits; one larger than the table empties it and is not added. */
  private insert(name: string, value: string): void {
    const entrySize = name.length + value.length + ENTRY_OVERHEAD;
    if (entrySize > this.capacity) {
      this.evictTo(0);
      return;
    }
    this.evictTo(this.capacity - entrySize);
    if (this.count === this.names.length) this.grow();
    this.names[this.head] = name;
    this.values[this.head] = value;
    this.head = (this.head + 1) & this.mask;
    this.count++;
    this.size += entrySize;
  }

  private evictTo(limit: number): void {
    while (this.size > limit) {
      const oldest = (this.head - this.count) & this.mask;
      this.size -= this.names[oldest]!.length + this.values[oldest]!.length + ENTRY_OVERHEAD;
      // Not to keep evicted strings alive.
      this.names[oldest] = '';
      this.values[oldest] = '';
      this.count--;
    }
  }

  /** Doubles the ring, oldest entry first at slot 0 (the count is bounded by capacity / 32). */
  private grow(): void {
    const length = this.names.length * 2;
    const names = new Array<string>(length).fill('');
    const values = new Array<string>(length).fill('');
    for (let i = 0; i < this.count; i++) {
      const from = (this.head - this.count + i) & this.mask;
      names[i] = this.names[from]!;
      values[i] = this.values[from]!;
    }
    this.names = names;
    this.values = values;
    this.mask = length - 1;
    this.head = this.count;
  }
}

function huffmanDecode(buf: Buffer, start: number, end: number): string {
  if (start === end) return '';
  const bound = Math.ceil(((end - start) * 8) / 5);
  if (huffmanScratch.length < bound) {
    huffmanScratch = Buffer.allocUnsafe(Math.max(bound, huffmanScratch.length * 2));
  }
  const out = huffmanScratch;
  const table = HUFFMAN;
  let n = 0;
  let state = 0;
  let entry = 0;
  for (let i = start; i < end; i++) {
    const byte = buf[i]!;
    entry = table[state | (byte >>> 4)]!;
    // Written always, kept only when a byte was completed: no branch.
    out[n] = entry;
    n += (entry >>> 8) & 1;
    entry = table[(entry >>> STATE_SHIFT) | (byte & 15)]!;
    out[n] = entry;
    n += (entry >>> 8) & 1;
    state = entry >>> STATE_SHIFT;
  }
  if ((entry & ACCEPT) === 0)
    throw new HpackError('invalid Huffman string: EOS, or padding not up to 7 one-bits');
  return out.toString('latin1', 0, n);
}

/** The encoder's output is built here and copied out at its exact size. */
let encodeScratch = Buffer.allocUnsafe(4096);

/**
 * Encodes a header list without touching any dynamic table (so the peer's SETTINGS_HEADER_TABLE_SIZE never matters):
 * a field whose name AND value are in the static table → indexed (e.g. `:status: 200` → 0x88); a name in the static
 * table → literal without indexing with indexed name; otherwise literal without indexing with a literal name. No
 * Huffman (strings raw, H bit 0). Names must be lowercase (caller guarantees); names and values are written as
 * latin1: a UTF-16 code unit above 0xFF throws a RangeError rather than go out truncated (percent-encode such
 * values, as gRPC does `grpc-message`).
 */
export function encodeHeaderBlock(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  // Worst case per field: a 1+5-byte index or 1-byte prefix + 5-byte name length, a 5-byte value length.
  let bound = 0;
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!;
    bound += field[0].length + field[1].length + 11;
  }
  if (encodeScratch.length < bound)
    encodeScratch = Buffer.allocUnsafe(Math.max(bound, encodeScratch.length * 2));
  const out = encodeScratch;
  let pos = 0;
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!;
    const name = field[0];
    const value = field[1];
    const known = STATIC_LOOKUP.get(name);
    if (known !== undefined) {
      const full = known.values.get(value);
      if (full !== undefined) {
        pos = writeInteger(out, pos, 0x80, 7, full);
        continue;
      }
      pos = writeInteger(out, pos, 0x00, 4, known.index);
    } else {
      out[pos++] = 0x00;
      pos = writeString(out, pos, name);
    }
    pos = writeString(out, pos, value);
  }
  const block = Buffer.allocUnsafe(pos);
  // A loop beats copy()'s native call for the usual few dozen bytes.
  if (pos <= 256) for (let i = 0; i < pos; i++) block[i] = out[i]!;
  else out.copy(block, 0, 0, pos);
  return block;
}

function writeInteger(out: Buffer, pos: number, prefix: number, prefixBits: number, value: number): number {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out[pos++] = prefix | value;
    return pos;
  }
  out[pos++] = prefix | max;
  let rest = value - max;
  while (rest >= 0x80) {
    out[pos++] = (rest & 0x7f) | 0x80;
    rest >>>= 7;
  }
  out[pos++] = rest;
  return pos;
}

function writeString(out: Buffer, pos: number, s: string): number {
  const length = s.length;
  pos = writeInteger(out, pos, 0x00, 7, length);
  for (let i = 0; i < length; i++) {
    const code = s.charCodeAt(i);
    if (code > 0xff) {
      throw new RangeError(
        `header field ${JSON.stringify(s.slice(0, 40))}: character ${i} (U+${code.toString(16).padStart(4, '0')}) is not latin1; percent-encode the value`,
      );
    }
    out[pos + i] = code;
  }
  return pos + length;
}
