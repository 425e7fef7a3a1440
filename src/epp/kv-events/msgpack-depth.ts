/**
 * @module epp/kv-events/msgpack-depth
 * A linear pre-scan of a msgpack value that refuses nesting deeper than a limit, before the decoder builds anything.
 * @msgpack/msgpack (3.x) bounds every length but not depth: a payload of 0x91 bytes (a one-item array holding a
 * one-item array …) makes one JS array and one decoder stack entry per byte, so 16 MiB of it stalled the event loop
 * for seconds and took gigabytes. The scan reads headers only, skips payload bytes, and keeps one counter per open
 * container, so it costs at most one step per byte and `maxDepth` numbers of memory.
 */

/** Thrown when a value nests deeper than allowed. */
export class MsgpackTooDeepError extends Error {
  override readonly name = 'MsgpackTooDeepError';
}

/**
 * Throws {@link MsgpackTooDeepError} when the first msgpack value of `bytes` has arrays or maps nested more than
 * `maxDepth` deep (a flat array is depth 1). A truncated or malformed payload is left for the decoder to report.
 *
 * @example assertMsgpackDepth(payload, 16); // then decode
 */
export function assertMsgpackDepth(bytes: Uint8Array, maxDepth: number): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.byteLength;
  // Items still expected by each open container; the bottom entry is the one top-level value.
  const open: number[] = [1];
  let pos = 0;
  while (open.length > 0 && pos < end) {
    const b = bytes[pos]!;
    let size: number; // header plus payload bytes of a scalar, header bytes of a container
    let items = 0; // items of a container
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc1 || b === 0xc2 || b === 0xc3) size = 1;
    else if (b <= 0x8f) [size, items] = [1, (b & 0x0f) * 2];
    else if (b <= 0x9f) [size, items] = [1, b & 0x0f];
    else if (b <= 0xbf) size = 1 + (b & 0x1f);
    else {
      const need = HEADER_BYTES[b - 0xc4]!;
      if (pos + need > end) return;
      switch (b) {
        case 0xc4:
        case 0xd9:
          size = 2 + view.getUint8(pos + 1);
          break;
        case 0xc5:
        case 0xda:
          size = 3 + view.getUint16(pos + 1);
          break;
        case 0xc6:
        case 0xdb:
          size = 5 + view.getUint32(pos + 1);
          break;
        case 0xc7:
          size = 3 + view.getUint8(pos + 1);
          break;
        case 0xc8:
          size = 4 + view.getUint16(pos + 1);
          break;
        case 0xc9:
          size = 6 + view.getUint32(pos + 1);
          break;
        case 0xdc:
          [size, items] = [3, view.getUint16(pos + 1)];
          break;
        case 0xdd:
          [size, items] = [5, view.getUint32(pos + 1)];
          break;
        case 0xde:
          [size, items] = [3, view.getUint16(pos + 1) * 2];
          break;
        case 0xdf:
          [size, items] = [5, view.getUint32(pos + 1) * 2];
          break;
        default:
          size = need; // numbers and fixext: fixed size
      }
    }
    pos += size;
    open[open.length - 1]!--;
    if (items > 0) {
      // The bottom entry is not a container, so the depth is one less than the open entries.
      if (open.length > maxDepth) throw new MsgpackTooDeepError(`msgpack nested more than ${maxDepth} deep`);
      open.push(items);
    } else while (open.length > 0 && open[open.length - 1] === 0) open.pop();
  }
}

/**
 * Bytes of the header of types 0xc4…0xdf (the whole value for fixed-size types): what must be present before a
 * length can be read.
 */
const HEADER_BYTES = [
  2,
  3,
  5, // bin 8/16/32
  3,
  4,
  6, // ext 8/16/32
  5,
  9, // float 32/64
  2,
  3,
  5,
  9, // uint 8/16/32/64
  2,
  3,
  5,
  9, // int 8/16/32/64
  3,
  4,
  6,
  10,
  18, // fixext 1/2/4/8/16
  2,
  3,
  5, // str 8/16/32
  3,
  5, // array 16/32
  3,
  5, // map 16/32
];
