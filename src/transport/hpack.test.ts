import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import net from 'node:net';
import { test } from 'node:test';
import { encodeHeaderBlock, HpackDecoder, HpackError } from './hpack.js';
import { HUFFMAN_CODES, HUFFMAN_LENGTHS } from './hpack-huffman.js';
import { CONNECTION_PREFACE, encodeFrame } from '../../test/harness/http2-frames.js';

type Field = [string, string];

function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

function decodeAll(decoder: HpackDecoder, block: Uint8Array, maxListBytes?: number): Field[] {
  const fields: Field[] = [];
  decoder.decode(block, (name, value) => fields.push([name, value]), maxListBytes);
  return fields;
}

/** An HPACK integer (§5.1) after the prefix bits `high`. */
function int(high: number, prefixBits: number, value: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [high | value];
  const bytes = [high | max];
  let rest = value - max;
  while (rest >= 128) {
    bytes.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return bytes;
}

function raw(s: string): number[] {
  return [...int(0, 7, s.length), ...Buffer.from(s, 'latin1')];
}

/** Huffman-encodes bytes with the table under test, padding with ones (§5.2). */
function huffmanBits(bytes: Iterable<number>, extra = ''): number[] {
  let bits = '';
  for (const b of bytes) bits += HUFFMAN_CODES[b]!.toString(2).padStart(HUFFMAN_LENGTHS[b]!, '0');
  bits += extra;
  bits += '1'.repeat((8 - (bits.length % 8)) % 8);
  const out: number[] = [];
  for (let i = 0; i < bits.length; i += 8) out.push(parseInt(bits.slice(i, i + 8), 2));
  return out;
}

function huffman(s: string): number[] {
  const encoded = huffmanBits(Buffer.from(s, 'latin1'));
  return [...int(0x80, 7, encoded.length), ...encoded];
}

/** The dynamic table, newest first, read through indexed fields (which leave it as it is). */
function dynamicTable(decoder: HpackDecoder): Field[] {
  const entries: Field[] = [];
  for (let index = 62; ; index++) {
    try {
      entries.push(...decodeAll(decoder, Buffer.from(int(0x80, 7, index))));
    } catch (err) {
      assert.ok(err instanceof HpackError);
      return entries;
    }
  }
}

function tableSize(entries: Field[]): number {
  return entries.reduce((sum, [n, v]) => sum + n.length + v.length + 32, 0);
}

function rejects(block: number[] | Buffer, message: RegExp, decoder = new HpackDecoder()): void {
  assert.throws(
    () => decodeAll(decoder, Buffer.from(block)),
    (err: unknown) => err instanceof HpackError && message.test(err.message),
  );
}

/** mulberry32: a small seeded PRNG, so a failing fuzz case can be replayed. */
function prng(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Step {
  block: string;
  fields: Field[];
  /** Newest first. */
  table: Field[];
  size: number;
}

/** One decoder through an RFC 7541 Appendix C series: each block's fields, then the dynamic table it leaves. */
function series(maxTableSize: number, steps: Step[]): void {
  const decoder = new HpackDecoder(maxTableSize);
  for (const [i, step] of steps.entries()) {
    assert.deepEqual(decodeAll(decoder, hex(step.block)), step.fields, `block ${i + 1}`);
    const table = dynamicTable(decoder);
    assert.deepEqual(table, step.table, `table after block ${i + 1}`);
    assert.equal(tableSize(table), step.size, `table size after block ${i + 1}`);
  }
}

// RFC 7541 Appendix C (hex as in golang.org/x/net/http2/hpack's tests of the same examples).
const C3_C4_FIELDS: Field[][] = [
  [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
  ],
  [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
    ['cache-control', 'no-cache'],
  ],
  [
    [':method', 'GET'],
    [':scheme', 'https'],
    [':path', '/index.html'],
    [':authority', 'www.example.com'],
    ['custom-key', 'custom-value'],
  ],
];
const C3_C4_TABLES: Field[][] = [
  [[':authority', 'www.example.com']],
  [
    ['cache-control', 'no-cache'],
    [':authority', 'www.example.com'],
  ],
  [
    ['custom-key', 'custom-value'],
    ['cache-control', 'no-cache'],
    [':authority', 'www.example.com'],
  ],
];
const C3_C4_SIZES = [57, 110, 164];

const C3_BLOCKS = [
  '828684410f7777772e6578616d706c652e636f6d',
  '828684be58086e6f2d6361636865',
  '828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565',
];
const C4_BLOCKS = [
  '828684418cf1e3c2e5f23a6ba0ab90f4ff',
  '828684be5886a8eb10649cbf',
  '828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf',
];

const DATE_21 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const DATE_22 = 'Mon, 21 Oct 2013 20:13:22 GMT';
const LOCATION = 'https://www.example.com';
const COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
const C5_C6_FIELDS: Field[][] = [
  [
    [':status', '302'],
    ['cache-control', 'private'],
    ['date', DATE_21],
    ['location', LOCATION],
  ],
  [
    [':status', '307'],
    ['cache-control', 'private'],
    ['date', DATE_21],
    ['location', LOCATION],
  ],
  [
    [':status', '200'],
    ['cache-control', 'private'],
    ['date', DATE_22],
    ['location', LOCATION],
    ['content-encoding', 'gzip'],
    ['set-cookie', COOKIE],
  ],
];
const C5_C6_TABLES: Field[][] = [
  [
    ['location', LOCATION],
    ['date', DATE_21],
    ['cache-control', 'private'],
    [':status', '302'],
  ],
  [
    [':status', '307'],
    ['location', LOCATION],
    ['date', DATE_21],
    ['cache-control', 'private'],
  ],
  [
    ['set-cookie', COOKIE],
    ['content-encoding', 'gzip'],
    ['date', DATE_22],
  ],
];
const C5_C6_SIZES = [222, 222, 215];
const C5_BLOCKS = [
  '4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d546e1768747470733a2f2f7777772e6578616d706c652e636f6d',
  '4803333037c1c0bf',
  '88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f3d4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b2076657273696f6e3d31',
];
const C6_BLOCKS = [
  '488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3',
  '4883640effc1c0bf',
  '88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007',
];

function steps(blocks: string[], fields: Field[][], tables: Field[][], sizes: number[]): Step[] {
  return blocks.map((block, i) => ({ block, fields: fields[i]!, table: tables[i]!, size: sizes[i]! }));
}

test('hpack: the Huffman table is a complete canonical code with EOS = 30 one-bits', () => {
  assert.equal(HUFFMAN_CODES.length, 257);
  assert.equal(HUFFMAN_LENGTHS.length, 257);
  assert.equal(HUFFMAN_CODES[256], 0x3fffffff);
  assert.equal(HUFFMAN_LENGTHS[256], 30);
  // Canonical: in (length, symbol) order each code is the previous plus one, shifted to its length.
  const order = [...HUFFMAN_CODES.keys()].sort((a, b) => HUFFMAN_LENGTHS[a]! - HUFFMAN_LENGTHS[b]! || a - b);
  let code = 0;
  for (const [i, sym] of order.entries()) {
    if (i > 0) code = (code + 1) * 2 ** (HUFFMAN_LENGTHS[sym]! - HUFFMAN_LENGTHS[order[i - 1]!]!);
    assert.equal(HUFFMAN_CODES[sym], code, `code of ${sym}`);
  }
  // Complete (Kraft sum exactly 1): every bit string decodes or is a prefix of a code.
  assert.equal(
    HUFFMAN_LENGTHS.reduce((sum, length) => sum + 2 ** (30 - length), 0),
    2 ** 30,
  );
  // Spot checks against RFC 7541 Appendix B.
  assert.deepEqual([HUFFMAN_CODES[0x30], HUFFMAN_LENGTHS[0x30]], [0x0, 5]); // '0'
  assert.deepEqual([HUFFMAN_CODES[0x20], HUFFMAN_LENGTHS[0x20]], [0x14, 6]); // ' '
  assert.deepEqual([HUFFMAN_CODES[0], HUFFMAN_LENGTHS[0]], [0x1ff8, 13]);
  assert.deepEqual([HUFFMAN_CODES[255], HUFFMAN_LENGTHS[255]], [0x3ffffee, 26]);
});

test('hpack: RFC 7541 C.3, requests without Huffman', () => {
  series(4096, steps(C3_BLOCKS, C3_C4_FIELDS, C3_C4_TABLES, C3_C4_SIZES));
});

test('hpack: RFC 7541 C.4, requests with Huffman', () => {
  series(4096, steps(C4_BLOCKS, C3_C4_FIELDS, C3_C4_TABLES, C3_C4_SIZES));
});

test('hpack: RFC 7541 C.5, responses without Huffman, 256-byte table with evictions', () => {
  series(256, steps(C5_BLOCKS, C5_C6_FIELDS, C5_C6_TABLES, C5_C6_SIZES));
});

test('hpack: RFC 7541 C.6, responses with Huffman, 256-byte table with evictions', () => {
  series(256, steps(C6_BLOCKS, C5_C6_FIELDS, C5_C6_TABLES, C5_C6_SIZES));
});

test('hpack: every byte Huffman-decodes, with 0-7 bits of padding', () => {
  const decoder = new HpackDecoder();
  const all = Buffer.from([...Array(256).keys()]).toString('latin1');
  const random = prng(7);
  const strings = ['', all, all.split('').reverse().join('')];
  for (let i = 0; i < 500; i++) {
    let s = '';
    const length = Math.floor(random() * 40);
    for (let j = 0; j < length; j++) s += String.fromCharCode(Math.floor(random() * 256));
    strings.push(s);
  }
  for (const s of strings) {
    // Literal without indexing, literal name 'x', Huffman value.
    const block = Buffer.from([0x00, ...raw('x'), ...huffman(s)]);
    assert.deepEqual(decodeAll(decoder, block), [['x', s]]);
  }
});

test('hpack: encodeHeaderBlock writes the expected bytes', () => {
  assert.deepEqual(encodeHeaderBlock([[':status', '200']]), hex('88'));
  assert.deepEqual(
    encodeHeaderBlock([['content-type', 'application/grpc']]),
    Buffer.concat([hex('0f 10 10'), Buffer.from('application/grpc')]),
  );
  assert.deepEqual(
    encodeHeaderBlock([['grpc-status', '0']]),
    Buffer.concat([hex('00 0b'), Buffer.from('grpc-status'), hex('01 30')]),
  );
  // Static name with its value (index 2) and with another (index 2's name, literal value), an empty value in the
  // static table (:authority, index 1), a value of 128+ bytes (two-byte length).
  assert.deepEqual(
    encodeHeaderBlock([
      [':method', 'GET'],
      [':method', 'PUT'],
      [':authority', ''],
      ['x', 'y'.repeat(130)],
    ]),
    Buffer.concat([
      hex('82 02 03'),
      Buffer.from('PUT'),
      hex('81 00 01'),
      Buffer.from('x'),
      hex('7f 03'),
      Buffer.from('y'.repeat(130)),
    ]),
  );
  assert.deepEqual(encodeHeaderBlock([]), Buffer.alloc(0));
});

test('hpack: encodeHeaderBlock output decodes to the same fields, and leaves the dynamic table empty', () => {
  const fields: Field[] = [
    [':status', '200'],
    [':status', '201'],
    ['content-type', 'application/grpc'],
    ['grpc-status', '0'],
    ['grpc-message', 'caf\u00e9 %20 ok'],
    ['accept-encoding', 'gzip, deflate'],
    ['www-authenticate', ''],
    ['x-empty', ''],
    ['x-long', 'v'.repeat(5000)],
    ['y'.repeat(200), 'z'],
  ];
  const decoder = new HpackDecoder();
  for (let i = 0; i < 3; i++) assert.deepEqual(decodeAll(decoder, encodeHeaderBlock(fields)), fields);
  assert.deepEqual(dynamicTable(decoder), []);
  // A Uint8Array that is not a Buffer, at an offset into its ArrayBuffer.
  const block = encodeHeaderBlock(fields);
  const copy = new Uint8Array(block.length + 7);
  copy.set(block, 7);
  assert.deepEqual(decodeAll(decoder, copy.subarray(7)), fields);
});

test(
  'hpack: interop with nghttp2 (node:http2): its requests decode, our responses are read',
  { timeout: 10_000 },
  async () => {
    const decoder = new HpackDecoder();
    const blocks: Buffer[] = [];
    const decoded: Field[][] = [];
    const response: Field[] = [
      [':status', '200'],
      ['content-type', 'application/grpc'],
      ['grpc-status', '0'],
      ['grpc-message', 'caf\u00e9'],
      ['x-long', 'l'.repeat(300)],
    ];
    let failure: unknown;
    // A bare HTTP/2 server: enough framing to read HEADERS (+CONTINUATION) and answer each with one HEADERS frame.
    const server = net.createServer((socket) => {
      let pending = Buffer.alloc(0);
      let preface = false;
      let fragments: Buffer[] = [];
      let streamId = 0;
      socket.write(encodeFrame(4, 0, 0));
      socket.on('error', () => {});
      socket.on('data', (chunk: Buffer) => {
        try {
          pending = Buffer.concat([pending, chunk]);
          if (!preface) {
            if (pending.length < 24) return;
            assert.ok(pending.subarray(0, 24).equals(CONNECTION_PREFACE));
            pending = pending.subarray(24);
            preface = true;
          }
          while (pending.length >= 9 && pending.length >= 9 + pending.readUIntBE(0, 3)) {
            const length = pending.readUIntBE(0, 3);
            const type = pending[3]!;
            const flags = pending[4]!;
            const stream = pending.readUInt32BE(5) & 0x7fffffff;
            let payload = pending.subarray(9, 9 + length);
            pending = pending.subarray(9 + length);
            if (type === 4 && (flags & 1) === 0) socket.write(encodeFrame(4, 1, 0));
            if (type !== 1 && type !== 9) continue;
            if (type === 1) {
              if (flags & 0x8) payload = payload.subarray(1, payload.length - payload[0]!);
              if (flags & 0x20) payload = payload.subarray(5);
              fragments = [];
              streamId = stream;
            }
            fragments.push(payload);
            if ((flags & 0x4) === 0) continue;
            const block = Buffer.concat(fragments);
            blocks.push(block);
            decoded.push(decodeAll(decoder, block));
            socket.write(encodeFrame(1, 0x5, streamId, encodeHeaderBlock(response)));
          }
        } catch (err) {
          failure = err;
          socket.destroy();
        }
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as net.AddressInfo;
    // A wrong frame would leave the client waiting: fail instead, well before the test's own timeout.
    const signal = AbortSignal.timeout(5000);
    const client = http2.connect(`http://127.0.0.1:${port}`);
    client.on('error', () => {});
    try {
      const latin1 = 'caf\u00e9';
      for (let i = 0; i < 3; i++) {
        const request = client.request(
          {
            ':method': 'POST',
            ':path': '/envoy.service.ext_proc.v3.ExternalProcessor/Process',
            'content-type': 'application/grpc',
            te: 'trailers',
            'x-request-id': `a8e1f6c2-0000-4000-8000-00000000000${i}`,
            authorization: 'Bearer secret',
            'x-latin1': latin1,
            [http2.sensitiveHeaders]: ['authorization'],
          },
          { endStream: true },
        );
        const [headers] = (await once(request, 'response', { signal })) as [http2.IncomingHttpHeaders];
        request.resume();
        await once(request, 'end', { signal });
        assert.equal(headers[':status'], 200);
        assert.equal(headers['content-type'], 'application/grpc');
        assert.equal(headers['grpc-status'], '0');
        assert.equal(headers['grpc-message'], 'caf\u00e9');
        assert.equal(headers['x-long'], 'l'.repeat(300));
        const expected: Field[] = [
          [':method', 'POST'],
          [':authority', `127.0.0.1:${port}`],
          [':scheme', 'http'],
          [':path', '/envoy.service.ext_proc.v3.ExternalProcessor/Process'],
          ['content-type', 'application/grpc'],
          ['te', 'trailers'],
          ['x-request-id', `a8e1f6c2-0000-4000-8000-00000000000${i}`],
          ['authorization', 'Bearer secret'],
          ['x-latin1', latin1],
        ];
        assert.deepEqual([...decoded[i]!].sort(), expected.sort());
      }
      assert.equal(failure, undefined);
      // What nghttp2 sent exercised the dynamic table (later blocks are mostly references to it), Huffman (the
      // path is not in the block as it is) and never-indexed literals (authorization, static name 23: 0x1f 0x08).
      assert.ok(
        blocks[1]!.length < blocks[0]!.length - 40,
        `${blocks[0]!.length} then ${blocks[1]!.length} bytes`,
      );
      assert.ok(!blocks[0]!.includes('/envoy.service.ext_proc.v3.ExternalProcessor/Process'));
      assert.ok(blocks[1]!.includes(Buffer.from([0x1f, 0x08])));
    } finally {
      // Destroyed, not closed: after a failure nothing may be left to keep the test process alive.
      client.destroy();
      server.close();
    }
  },
);

test('hpack: malformed blocks throw HpackError', () => {
  // Index 0 in an indexed field (in a literal it means a literal name: valid, see the end).
  rejects([0x80], /index 0/);
  // Index beyond the static table with an empty dynamic table; beyond the table as a literal's name.
  rejects([0xbe], /beyond/);
  rejects([0xff, 0x00], /beyond/);
  rejects([0x7e, ...raw('v')], /beyond/);
  rejects([0x0f, 0x2f, ...raw('v')], /beyond/);
  // Truncated: a string cut short, a missing string length, a missing value, a Huffman string cut short.
  rejects([0x40, 0x05, 0x61, 0x62], /truncated string/);
  rejects([0x40], /truncated string length/);
  rejects([0x00, ...raw('name')], /truncated string length/);
  rejects([0x04, ...huffman('abcdef').slice(0, 3)], /truncated string/);
  // Truncated integers.
  rejects([0xff], /truncated integer/);
  rejects([0xff, 0x80], /truncated integer/);
  rejects([0x04, 0x7f, 0x80, 0x80], /truncated integer/);
  // Huffman: the EOS symbol (then 'a', with valid padding); padding of 8+ bits; padding that is not all ones.
  const eos = huffmanBits(Buffer.from('a'), '1'.repeat(30));
  rejects([0x00, ...raw('x'), 0x80 | eos.length, ...eos], /Huffman/);
  const eosFirst = huffmanBits(Buffer.from(''), '1'.repeat(30) + '00011');
  rejects([0x00, ...raw('x'), 0x80 | eosFirst.length, ...eosFirst], /Huffman/);
  rejects([0x00, ...raw('x'), 0x82, 0x1f, 0xff], /Huffman/); // 'a' (00011) + 11 one-bits
  rejects([0x00, ...raw('x'), 0x81, 0xff], /Huffman/); // 8 one-bits only
  rejects([0x00, ...raw('x'), 0x85, 0xff, 0x9f, 0xff, 0xff, 0xff], /Huffman/);
  rejects([0x00, ...raw('x'), 0x81, 0x18], /Huffman/); // 'a' + 000
  rejects([0x00, ...raw('x'), 0x81, 0x1e], /Huffman/); // 'a' + 110
  // Size updates: above the advertised maximum, after a field, or after a field following one at the start.
  rejects([...int(0x20, 5, 4097)], /exceeds 4096/);
  rejects([...int(0x20, 5, 257)], /exceeds 256/, new HpackDecoder(256));
  rejects([0x82, 0x20], /after a header field/);
  rejects([0x20, 0x82, 0x3f, 0x01], /after a header field/);
  // Integer overflow: 2^31 - 1 is the largest accepted; more than 5 continuation bytes.
  const decoder = new HpackDecoder(0xffffffff);
  decodeAll(decoder, Buffer.from(int(0x20, 5, 2 ** 31 - 1)));
  rejects(int(0x20, 5, 2 ** 31), /overflow/, decoder);
  rejects([0xff, 0xff, 0xff, 0xff, 0xff, 0x0f], /overflow/);
  rejects([0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], /longer than 5/);
  rejects([0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0x7f], /overflow/);
  rejects([0x00, ...int(0, 7, 2 ** 31 - 1)], /truncated string/);
  // Index 0 with a literal: the name is a literal string, so this is a valid field.
  assert.deepEqual(decodeAll(new HpackDecoder(), Buffer.from([0x10, ...raw('a'), ...raw('b')])), [
    ['a', 'b'],
  ]);
});

test('hpack: size updates at the start of a block, two in a row, shrink and evict', () => {
  const decoder = new HpackDecoder();
  decodeAll(decoder, Buffer.from([0x40, ...raw('a'), ...raw('1'), 0x40, ...raw('b'), ...raw('2')]));
  assert.deepEqual(dynamicTable(decoder), [
    ['b', '2'],
    ['a', '1'],
  ]);
  // Down to 0 (empties), back up to 4096, then a field: all in one block.
  assert.deepEqual(decodeAll(decoder, Buffer.from([0x20, ...int(0x20, 5, 4096), 0x82])), [
    [':method', 'GET'],
  ]);
  assert.deepEqual(dynamicTable(decoder), []);
  decodeAll(decoder, Buffer.from([0x40, ...raw('a'), ...raw('1'), 0x40, ...raw('b'), ...raw('2')]));
  // Down to 40 bytes: only the newest (34 bytes) fits.
  assert.deepEqual(decodeAll(decoder, Buffer.from(int(0x20, 5, 40))), []);
  assert.deepEqual(dynamicTable(decoder), [['b', '2']]);
  // The new maximum holds until the next update: a 35-byte entry now evicts 'b'.
  decodeAll(decoder, Buffer.from([0x40, ...raw('cc'), ...raw('3')]));
  assert.deepEqual(dynamicTable(decoder), [['cc', '3']]);
  // Exactly the advertised maximum is allowed.
  decodeAll(decoder, Buffer.from(int(0x20, 5, 4096)));
});

test('hpack: eviction drops the oldest entries and shifts indices', () => {
  // Room for three 34-byte entries.
  const decoder = new HpackDecoder(110);
  for (const [name, value] of [
    ['a', '1'],
    ['b', '2'],
    ['c', '3'],
  ]) {
    decodeAll(decoder, Buffer.from([0x40, ...raw(name!), ...raw(value!)]));
  }
  assert.deepEqual(decodeAll(decoder, Buffer.from([0xbe, 0xbf, 0xc0])), [
    ['c', '3'],
    ['b', '2'],
    ['a', '1'],
  ]);
  // A fourth evicts 'a'; 62 is now 'd', 64 'b', and 65 does not exist.
  assert.deepEqual(decodeAll(decoder, Buffer.from([0x40, ...raw('d'), ...raw('4'), 0xbe, 0xc0])), [
    ['d', '4'],
    ['d', '4'],
    ['b', '2'],
  ]);
  rejects([0xc1], /beyond/, decoder);
  // A literal that names an entry it evicts by being added: the name is read first (§4.4).
  assert.deepEqual(decodeAll(decoder, Buffer.from([...int(0x40, 6, 64), ...raw('x'.repeat(40))])), [
    ['b', 'x'.repeat(40)],
  ]);
  assert.deepEqual(dynamicTable(decoder), [
    ['b', 'x'.repeat(40)],
    ['d', '4'],
  ]);
  // An entry larger than the whole table empties it and is not added, but is still a field.
  assert.deepEqual(decodeAll(decoder, Buffer.from([0x40, ...raw('big'), ...raw('v'.repeat(100))])), [
    ['big', 'v'.repeat(100)],
  ]);
  assert.deepEqual(dynamicTable(decoder), []);
  // An entry of exactly the table's size fits (alone); one byte more does not.
  decodeAll(
    decoder,
    Buffer.from([0x40, ...raw('a'), ...raw('1'), 0x40, ...raw('n'), ...raw('v'.repeat(77))]),
  );
  assert.deepEqual(dynamicTable(decoder), [['n', 'v'.repeat(77)]]);
  decodeAll(decoder, Buffer.from([0x40, ...raw('n'), ...raw('v'.repeat(78))]));
  assert.deepEqual(dynamicTable(decoder), []);
  // Many entries through a bigger table (the ring grows and wraps) keep their order.
  const big = new HpackDecoder(4096);
  for (let i = 0; i < 1000; i++) decodeAll(big, Buffer.from([0x40, ...raw(`k${i}`), ...raw(`v${i}`)]));
  const table = dynamicTable(big);
  assert.ok(tableSize(table) <= 4096 && tableSize(table) > 4096 - 40);
  assert.deepEqual(
    table,
    table.map((_, i) => [`k${999 - i}`, `v${999 - i}`]),
  );
});

test('hpack: maxListBytes bounds the decoded header list', () => {
  const block = Buffer.from([0x82, 0x84, 0x00, ...raw('x'), ...raw('y'.repeat(100))]);
  // 32+7+3, 32+5+1, 32+1+100 = 42 + 38 + 133 = 213.
  assert.equal(decodeAll(new HpackDecoder(), block, 213).length, 3);
  const seen: Field[] = [];
  assert.throws(
    () => new HpackDecoder().decode(block, (n, v) => seen.push([n, v]), 212),
    (err: unknown) => err instanceof HpackError && /larger than 212/.test(err.message),
  );
  // Thrown before the field that crosses the limit is passed on.
  assert.equal(seen.length, 2);
  // Indexed fields count too: one dynamic entry referenced many times (the HPACK bomb).
  const decoder = new HpackDecoder();
  decodeAll(decoder, Buffer.from([0x40, ...raw('b'), ...raw('o'.repeat(4000))]));
  assert.throws(() => decodeAll(decoder, Buffer.from(Array<number>(100).fill(0xbe)), 65536), HpackError);
});

test('hpack: random and mutated blocks only ever throw HpackError', () => {
  const random = prng(0x5eed);
  let decoder = new HpackDecoder();
  let ok = 0;
  let errors = 0;
  const decodeAny = (block: Buffer): void => {
    try {
      decoder.decode(
        block,
        (name, value) => {
          assert.equal(typeof name, 'string');
          assert.equal(typeof value, 'string');
        },
        1 << 20,
      );
      ok++;
    } catch (err) {
      if (!(err instanceof HpackError)) throw err;
      errors++;
    }
  };
  for (let i = 0; i < 20_000; i++) {
    if (i % 1000 === 0) decoder = new HpackDecoder(i % 2000 === 0 ? 4096 : 256);
    const block = Buffer.alloc(Math.floor(random() * 65));
    for (let j = 0; j < block.length; j++) block[j] = Math.floor(random() * 256);
    decodeAny(block);
  }
  // Mutations of the RFC's Huffman examples (bit flips, truncation), after the blocks before them.
  const series = [C4_BLOCKS, C6_BLOCKS].map((blocks) => blocks.map(hex));
  for (let i = 0; i < 5000; i++) {
    const blocks = series[i % 2]!;
    decoder = new HpackDecoder(i % 2 === 0 ? 4096 : 256);
    const target = Math.floor(random() * blocks.length);
    for (let b = 0; b < target; b++) decodeAny(blocks[b]!);
    const block = Buffer.from(blocks[target]!);
    const flips = 1 + Math.floor(random() * 3);
    for (let f = 0; f < flips; f++)
      block[Math.floor(random() * block.length)]! ^= 1 << Math.floor(random() * 8);
    decodeAny(random() < 0.3 ? block.subarray(0, Math.floor(random() * block.length)) : block);
  }
  // Both outcomes happened, so the fuzz reached past the first byte.
  assert.ok(ok > 1000 && errors > 1000, `${ok} decoded, ${errors} rejected`);
});

test('hpack: the constructor rejects an invalid table size', () => {
  assert.throws(() => new HpackDecoder(-1), RangeError);
  assert.throws(() => new HpackDecoder(1.5), RangeError);
  assert.throws(() => new HpackDecoder(2 ** 32), RangeError);
  new HpackDecoder(0);
});

test('hpack: encodeHeaderBlock refuses a field that is not latin1 rather than truncate it', () => {
  // 'é' (U+00E9) is latin1 and goes out as one byte; '€' (U+20AC) would have gone out as 0xAC.
  const decoded: [string, string][] = [];
  new HpackDecoder().decode(encodeHeaderBlock([['x-note', 'café']]), (name, value) =>
    decoded.push([name, value]),
  );
  assert.deepEqual(decoded, [['x-note', 'café']]);
  assert.throws(() => encodeHeaderBlock([['grpc-message', 'costs 5 €']]), {
    name: 'RangeError',
    message: /character 8 \(U\+20ac\) is not latin1/,
  });
  assert.throws(() => encodeHeaderBlock([['x-ünïcode-€', '1']]), RangeError);
});
