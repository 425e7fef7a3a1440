/**
 * @module transport/protobuf-wire
 * Reading and writing protobuf's wire format: varints, length-delimited fields and fixed-size numbers, nothing
 * schema-driven. The message codecs in `generated/` (emitted from the vendored protos by
 * `scripts/generate-proto-codecs.mjs`) are written against this.
 */

export const VARINT = 0;
export const FIXED64 = 1;
export const LENGTH_DELIMITED = 2;
export const FIXED32 = 5;

/** Reads one protobuf message's fields from a byte range; a malformed message throws (the call then fails). */
export class Reader {
  pos: number;
  /** Where reading stops: the end of the message, or of the nested message last `enter`ed. */
  end: number;
  constructor(
    readonly buf: Buffer,
    start: number,
    end: number,
  ) {
    this.pos = start;
    this.end = end;
  }

  /** A reader of a whole message, viewing `bytes` without a copy. */
  static of(bytes: Uint8Array): Reader {
    const buf = Buffer.isBuffer(bytes)
      ? bytes
      : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return new Reader(buf, 0, buf.length);
  }

  more(): boolean {
    return this.pos < this.end;
  }

  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const byte = this.buf[this.pos++]!;
      // Multiplication, not shifts: lengths and enums fit in 53 bits, and shifts would wrap at 32.
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
    }
    throw new Error('varint longer than 10 bytes');
  }

  /** The low 32 bits of a varint, as a signed number: `int32` and enums (a negative one is sent as 10 bytes). */
  int32(): number {
    return this.varint64Low32() | 0;
  }

  /** The low 32 bits of a varint, unsigned. */
  uint32(): number {
    return this.varint64Low32() >>> 0;
  }

  /** An `int64`/`uint64` as a number: exact below 2^53; a negative `int64` (sign bit set) reads as negative. */
  int64(signed: boolean): number {
    const start = this.pos;
    const value = this.varint();
    if (!signed || this.pos - start < 10) return value;
    // Ten bytes: the sign bit is set, so the value is 2^64 less than what the varint reads.
    this.pos = start;
    let big = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      const byte = this.buf[this.pos++]!;
      big |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) break;
    }
    return Number(BigInt.asIntN(64, big));
  }

  /** A zigzag-encoded `sint32`/`sint64`. */
  sint(): number {
    const n = this.varint();
    return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
  }

  private varint64Low32(): number {
    let value = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const byte = this.buf[this.pos++]!;
      // Bits past the 32nd fall off the shift, which is what int32 wants.
      if (i < 5) value |= (byte & 0x7f) << (7 * i);
      if (byte < 0x80) return value;
    }
    throw new Error('varint longer than 10 bytes');
  }

  /** Moves past a length-delimited field (after its tag) and returns where its content starts; it ends at `pos`. */
  private field(): number {
    const length = this.varint();
    const start = this.pos;
    if (start + length > this.end) throw new Error('length-delimited field runs past its message');
    this.pos = start + length;
    return start;
  }

  /** A length-delimited field as a Latin-1 string: HTTP header values are bytes, and this keeps each byte. */
  latin1(): string {
    const start = this.field();
    return this.buf.toString('latin1', start, this.pos);
  }

  bytes(): Buffer {
    const start = this.field();
    return this.buf.subarray(start, this.pos);
  }

  string(): string {
    const start = this.field();
    return this.buf.toString('utf8', start, this.pos);
  }

  /** A nested message, as a reader of its own. */
  sub(): Reader {
    const start = this.field();
    return new Reader(this.buf, start, this.pos);
  }

  /**
   * Enters a nested message without a reader of its own: reads stop at its end until `leave` is given the end
   * returned here. For loops over many small messages (a header each), where a reader each is garbage for nothing.
   */
  enter(): number {
    const start = this.field();
    const outerEnd = this.end;
    this.end = this.pos;
    this.pos = start;
    return outerEnd;
  }

  /** Skips what is left of the message `enter` entered and goes on with the enclosing one. */
  leave(outerEnd: number): void {
    this.pos = this.end;
    this.end = outerEnd;
  }

  double(): number {
    if (this.pos + 8 > this.end) throw new Error('truncated double');
    const value = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return value;
  }

  float(): number {
    if (this.pos + 4 > this.end) throw new Error('truncated float');
    const value = this.buf.readFloatLE(this.pos);
    this.pos += 4;
    return value;
  }

  fixed32(signed: boolean): number {
    if (this.pos + 4 > this.end) throw new Error('truncated fixed32');
    const value = signed ? this.buf.readInt32LE(this.pos) : this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return value;
  }

  /** A `fixed64`/`sfixed64` as a number: exact below 2^53. */
  fixed64(signed: boolean): number {
    if (this.pos + 8 > this.end) throw new Error('truncated fixed64');
    const value = signed ? this.buf.readBigInt64LE(this.pos) : this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return Number(value);
  }

  skip(wireType: number): void {
    if (wireType === VARINT) this.varint();
    else if (wireType === FIXED64) this.pos += 8;
    else if (wireType === LENGTH_DELIMITED) this.field();
    else if (wireType === FIXED32) this.pos += 4;
    else throw new Error(`unsupported wire type ${wireType}`);
    if (this.pos > this.end) throw new Error('field runs past its message');
  }
}

/**
 * Writes a message tree in one pass: each length-delimited field reserves room for its length, the content is
 * written after it and the length patched in, shifting the content when the length took more than the one byte
 * reserved (only for fields of 128 bytes or more, such as bodies, which are copied once anyway).
 */
export class Writer {
  buf: Buffer;
  pos = 0;
  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  private ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + extra));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  varint(value: number): void {
    this.ensure(10);
    let v = value;
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.pos++] = v;
  }

  tag(field: number, wireType: number): void {
    this.varint(field * 8 + wireType);
  }

  /** Starts a length-delimited field; returns where its content starts, for `close`. */
  open(field: number): number {
    this.tag(field, LENGTH_DELIMITED);
    this.ensure(1);
    this.pos++;
    return this.pos;
  }

  close(start: number): void {
    const length = this.pos - start;
    if (length < 0x80) {
      this.buf[start - 1] = length;
      return;
    }
    let lengthBytes = 1;
    for (let v = length; v >= 0x80; v = Math.floor(v / 128)) lengthBytes++;
    this.ensure(lengthBytes - 1);
    this.buf.copy(this.buf, start + lengthBytes - 1, start, this.pos);
    this.pos = start - 1;
    this.varint(length);
    this.pos += length;
  }

  bytes(field: number, value: Uint8Array): void {
    this.tag(field, LENGTH_DELIMITED);
    this.varint(value.length);
    this.ensure(value.length);
    this.buf.set(value, this.pos);
    this.pos += value.length;
  }

  string(field: number, value: string): void {
    this.tag(field, LENGTH_DELIMITED);
    const length = Buffer.byteLength(value);
    this.varint(length);
    this.ensure(length);
    this.pos += this.buf.write(value, this.pos, 'utf8');
  }

  double(field: number, value: number): void {
    this.tag(field, FIXED64);
    this.ensure(8);
    this.pos = this.buf.writeDoubleLE(value, this.pos);
  }

  /**
   * A 64-bit integer as a varint: a number, or a decimal string or bigint (how 64-bit values that do not fit a double
   * travel). Negative values take ten bytes, as protobuf's two's complement asks; `int32` uses this too.
   */
  int64(value: number | string | bigint): void {
    if (typeof value === 'number' && value >= 0 && Number.isSafeInteger(value)) {
      this.varint(value);
      return;
    }
    let big = BigInt.asUintN(64, BigInt(value));
    this.ensure(10);
    while (big >= 0x80n) {
      this.buf[this.pos++] = Number(big & 0x7fn) | 0x80;
      big >>= 7n;
    }
    this.buf[this.pos++] = Number(big);
  }

  /** A zigzag `sint32`/`sint64`. */
  sint(value: number): void {
    this.varint(value >= 0 ? value * 2 : -value * 2 - 1);
  }

  float(field: number, value: number): void {
    this.tag(field, FIXED32);
    this.ensure(4);
    this.pos = this.buf.writeFloatLE(value, this.pos);
  }

  fixed32(field: number, value: number, signed: boolean): void {
    this.tag(field, FIXED32);
    this.ensure(4);
    this.pos = signed
      ? this.buf.writeInt32LE(value, this.pos)
      : this.buf.writeUInt32LE(value >>> 0, this.pos);
  }

  fixed64(field: number, value: number | string | bigint, signed: boolean): void {
    this.tag(field, FIXED64);
    this.ensure(8);
    const big = BigInt(value);
    this.pos = signed ? this.buf.writeBigInt64LE(big, this.pos) : this.buf.writeBigUInt64LE(big, this.pos);
  }

  /** A varint field, written even when zero: a oneof member's presence is its value. */
  varintField(field: number, value: number): void {
    this.tag(field, VARINT);
    this.varint(value);
  }

  /** A bool field, left out when false (the default). */
  bool(field: number, value: unknown): void {
    if (value) this.varintField(field, 1);
  }

  /** An unsigned or enum field, left out when zero (the default). */
  uint(field: number, value: unknown): void {
    const n = Number(value ?? 0);
    if (n) this.varintField(field, n);
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}
