/**
 * Integration: the EPP survives a fuzzed stream of ext_proc messages — messages out of order, repeated, with random
 * headers and bodies, streams cancelled half-way, and bytes that are not protobuf at all — and keeps routing. Our own
 * decoders get malformed bytes straight too: random and mutated ProcessingRequest encodings into
 * `decodeProcessingRequest`, and random and mutated HTTP/2 frames and gRPC messages over a socket.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { startEpp, type RunningEpp } from '../src/epp/index.js';
import {
  BodySendMode,
  createExtProcClient,
  loadProtos,
  pickEndpoint,
  type ExtProcClient,
} from '../src/gateway/index.js';
import { startModelServerFixture, type ModelServerFixture } from '../src/bench/index.js';
import { waitFor } from '../src/process/index.js';
import {
  decodeEppProcessingRequest,
  decodeProcessingRequest,
  encodeHeaderBlock,
  HpackDecoder,
} from '../src/transport/index.js';
import { CONNECTION_PREFACE, encodeFrame } from './harness/http2-frames.js';
import { extProcReference } from './harness/proto-reference.js';

let fixtures: ModelServerFixture[] = [];
let epp: RunningEpp;
let client: ExtProcClient;

before(async () => {
  fixtures = [await startModelServerFixture('a'), await startModelServerFixture('b')];
  epp = await startEpp({
    host: '127.0.0.1',
    grpcPort: 0,
    grpcHealthPort: 0,
    metricsPort: 0,
    endpoints: fixtures.map((f) => ({ address: f.address })),
    bodyLimitBytes: 4096,
    logger: pino({ level: 'silent' }),
  });
  client = createExtProcClient(`127.0.0.1:${epp.grpcPort}`);
});

after(async () => {
  client?.close();
  await epp?.close();
  for (const f of fixtures) await f.close();
});

/** Deterministic pseudo-random numbers so a failure can be replayed from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/* eslint-disable @typescript-eslint/no-explicit-any -- fuzzed protobuf messages */
function randomMessage(r: () => number): Record<string, any> {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(r() * 256)));
  const bodies = [
    Buffer.from('{"model":"m","prompt":"hello"}'),
    Buffer.from('{"model":'),
    Buffer.from('[]'),
    Buffer.from('{"model":"m","messages":[{"role":"user","content":[{"text":1},null,"x"]}]}'),
    bytes(Math.floor(r() * 64)),
    Buffer.alloc(8000, 'a'),
  ];
  const headers = () => ({
    headers: Array.from({ length: Math.floor(r() * 5) }, () =>
      pick([
        {
          key: ':path',
          raw_value: pick([Buffer.from('/v1/completions'), Buffer.from('/v1/chat/completions?x'), bytes(5)]),
        },
        { key: 'content-length', raw_value: Buffer.from(pick(['12', '-1', 'abc', '99999999999'])) },
        {
          key: pick(['x-request-id', 'x-gateway-inference-objective', 'X-Odd']),
          value: pick(['', 'batch', '\u00ff']),
        },
        { key: '', raw_value: bytes(3) },
      ]),
    ),
  });
  const kinds: (() => Record<string, any>)[] = [
    () => ({ request_headers: { headers: headers(), end_of_stream: r() < 0.3 } }),
    () => ({ request_body: { body: pick(bodies), end_of_stream: r() < 0.5 } }),
    () => ({ request_trailers: { trailers: headers() } }),
    () => ({ response_headers: { headers: headers(), end_of_stream: r() < 0.5 } }),
    () => ({ response_body: { body: bytes(10), end_of_stream: r() < 0.5 } }),
    () => ({ response_trailers: {} }),
    () => ({}),
    () => ({
      request_headers: { headers: headers() },
      protocol_config: { request_body_mode: pick([0, 1, 2, 3, 4, 7]), response_body_mode: pick([0, 4]) },
      metadata_context: {
        filter_metadata: {
          'envoy.lb.subset_hint': {
            fields: {
              'x-gateway-destination-endpoint-subset': pick([
                { listValue: { values: [{ stringValue: '127.0.0.1' }, {}] } },
                { stringValue: 'x' },
              ]),
            },
          },
        },
      },
    }),
  ];
  return pick(kinds)();
}

async function fuzzStream(seed: number): Promise<void> {
  const r = rng(seed);
  const stream = client.Process();
  stream.on('data', () => undefined);
  const ended = new Promise<void>((resolve) => {
    stream.on('error', () => resolve());
    stream.on('end', () => resolve());
    stream.on('close', () => resolve());
  });
  const count = 1 + Math.floor(r() * 8);
  for (let i = 0; i < count; i++) stream.write(randomMessage(r));
  const ending = r();
  if (ending < 0.4) {
    // Cancel once the stream is on the wire: a grpc-js client that cancels in the same tick as it starts the call
    // sends the messages but no RST_STREAM, leaving a stream the server cannot know is gone (a client race, not
    // something Envoy does).
    await sleep(10);
    stream.cancel();
  } else stream.end();
  await ended;
}

test('a fuzzed stream of ext_proc messages does not take the EPP down', async () => {
  for (let batch = 0; batch < 20; batch++) {
    await Promise.all(Array.from({ length: 20 }, (_, i) => fuzzStream(batch * 100 + i)));
  }
  // Raw bytes that are not a ProcessingRequest at all.
  const { extProcService } = loadProtos();
  const Raw = grpc.makeGenericClientConstructor(
    {
      Process: {
        ...extProcService['Process']!,
        requestSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    },
    'Raw',
  );
  const raw = new Raw(`127.0.0.1:${epp.grpcPort}`, grpc.credentials.createInsecure()) as unknown as {
    Process(): grpc.ClientDuplexStream<Buffer, Buffer>;
    close(): void;
  };
  for (const junk of [Buffer.from([0xff, 0xff, 0xff]), Buffer.from('not protobuf'), Buffer.alloc(0)]) {
    const s = raw.Process();
    await new Promise<void>((resolve) => {
      s.on('data', () => undefined);
      s.on('error', () => resolve());
      s.on('end', () => resolve());
      s.write(junk);
      s.end();
    });
  }
  raw.close();

  // Still routing, and in-flight counts did not leak from the aborted streams.
  const pick = await pickEndpoint(client, {
    path: '/v1/completions',
    body: Buffer.from('{"model":"m","prompt":"after the storm"}'),
  });
  assert.ok(
    fixtures.some((f) => f.address === pick.endpoint),
    `picked ${pick.endpoint}`,
  );
  pick.done();
  // The gateway's subset hint (envoy.lb.subset_hint) limits the choice, by address or by bare IP.
  for (const hint of [[fixtures[1]!.address], ['127.0.0.1'], ['10.9.9.9:80']]) {
    const hinted = await pickEndpoint(client, {
      path: '/v1/completions',
      subsetHint: hint,
      body: Buffer.from('{"model":"m","prompt":"hinted"}'),
    });
    if (hint[0] === '10.9.9.9:80') assert.equal(hinted.immediateResponse?.status, 503, 'no allowed endpoint');
    else if (hint[0] === '127.0.0.1') assert.ok(fixtures.some((f) => f.address === hinted.endpoint));
    else assert.equal(hinted.endpoint, fixtures[1]!.address);
    hinted.done();
  }
  const bad = await pickEndpoint(client, { path: '/v1/completions', body: Buffer.from('{') });
  assert.equal(bad.immediateResponse?.status, 400);
  await stillRouting();
  assert.equal(BodySendMode.FULL_DUPLEX_STREAMED, 4);
});

/** A pick still works and no in-flight count leaked. */
async function stillRouting(): Promise<void> {
  const pick = await pickEndpoint(client, {
    path: '/v1/completions',
    body: Buffer.from('{"model":"m","prompt":"still here"}'),
  });
  assert.ok(
    fixtures.some((f) => f.address === pick.endpoint),
    `picked ${pick.endpoint}`,
  );
  pick.done();
  await waitFor(() => epp.datastore.endpoints().every((e) => e.inFlight === 0), {
    what: 'every in-flight count back to 0',
    timeoutMs: 5000,
  }).catch(() => undefined);
  for (const e of epp.datastore.endpoints()) assert.equal(e.inFlight, 0, `${e.address} in-flight`);
}

/** `bytes` changed the way a broken or hostile peer changes them: bits flipped, cut short, bytes inserted, spliced. */
function mutate(r: () => number, bytes: Buffer): Buffer {
  const out = Buffer.from(bytes);
  const at = () => Math.floor(r() * Math.max(1, out.length));
  switch (Math.floor(r() * 5)) {
    case 0:
      for (let i = 0, n = 1 + Math.floor(r() * 4); i < n && out.length; i++)
        out[at()]! ^= 1 << Math.floor(r() * 8);
      return out;
    case 1:
      return out.subarray(0, at());
    case 2: {
      const i = at();
      const junk = Buffer.from(Array.from({ length: 1 + Math.floor(r() * 6) }, () => Math.floor(r() * 256)));
      return Buffer.concat([out.subarray(0, i), junk, out.subarray(i)]);
    }
    case 3:
      // A large length prefix where a small one was: fields that claim to run past the message.
      out[at()] = 0xff;
      return out;
    default:
      return Buffer.concat([out.subarray(at()), out.subarray(0, at())]);
  }
}

/**
 * Protobuf encodings of random ProcessingRequests by protobufjs from the vendored protos: an encoder independent of
 * the generated codecs under test.
 */
function encodedRequest(r: () => number): Buffer {
  return Buffer.from(extProcReference().processingRequest.encode(randomMessage(r)));
}

test("the EPP's and the full ProcessingRequest decoders answer random and mutated bytes with a decode or a plain Error, never a crash", () => {
  const r = rng(7);
  let decoded = 0;
  let rejected = 0;
  for (let i = 0; i < 3000; i++) {
    const valid = encodedRequest(r);
    const input =
      i % 3 === 0
        ? Buffer.from(Array.from({ length: Math.floor(r() * 64) }, () => Math.floor(r() * 256)))
        : i % 3 === 1
          ? mutate(r, valid)
          : valid;
    try {
      const message = decodeEppProcessingRequest(input);
      assert.equal(typeof message, 'object', `input ${i}: ${input.toString('hex')}`);
      // The full decoder reads every field the view skips: it must refuse no less cleanly.
      try {
        decodeProcessingRequest(input);
      } catch (error) {
        assert.ok(
          error instanceof Error && error.constructor === Error,
          `full decoder, input ${i}: ${String(error)}`,
        );
      }
      decoded++;
    } catch (error) {
      // The wire reader's own errors; a TypeError or RangeError would be a bug reading past what it checked.
      assert.ok(
        error instanceof Error && error.constructor === Error,
        `input ${i} (${input.toString('hex')}) threw ${String(error)}`,
      );
      assert.equal(i % 3 === 2, false, `a valid encoding was refused: ${input.toString('hex')}`);
      rejected++;
    }
  }
  assert.ok(decoded > 1000 && rejected > 100, `${decoded} decoded, ${rejected} rejected`);
});

/** How one raw connection ended, from the server's side. */
type Outcome = 'grpc-status' | 'rst-stream' | 'goaway' | 'closed';

/**
 * Sends `bytes` and EOF on a fresh connection to the EPP's gRPC port and reads until the server ends the call
 * (trailers with a grpc-status, RST_STREAM, GOAWAY) or closes the connection.
 */
function exchange(bytes: Buffer): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const socket = connect(epp.grpcPort, '127.0.0.1');
    const hpack = new HpackDecoder();
    let buffer = Buffer.alloc(0);
    let settled = false;
    const finish = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to ${bytes.toString('hex')}`));
    }, 10_000);
    socket.on('close', () => {
      clearTimeout(timer);
      finish('closed');
    });
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      while (buffer.length >= 9) {
        const length = buffer.readUIntBE(0, 3);
        if (buffer.length < 9 + length) break;
        const type = buffer[3]!;
        const flags = buffer[4]!;
        const payload = buffer.subarray(9, 9 + length);
        buffer = buffer.subarray(9 + length);
        if (type === 0x7) return finish('goaway');
        if (type === 0x3) return finish('rst-stream');
        if (type === 0x1) {
          let status: string | undefined;
          try {
            hpack.decode(payload, (name, value) => {
              if (name === 'grpc-status') status = value;
            });
          } catch {
            return finish('closed');
          }
          if (status !== undefined && flags & 0x1) return finish('grpc-status');
        }
      }
    });
    // Then EOF: bytes cut short are a peer that went away mid-frame, which the server must close on, not wait out.
    socket.end(bytes);
  });
}

const PROCESS_HEADERS = encodeHeaderBlock([
  [':method', 'POST'],
  [':scheme', 'http'],
  [':path', '/envoy.service.ext_proc.v3.ExternalProcessor/Process'],
  [':authority', 'epp'],
  ['content-type', 'application/grpc'],
  ['te', 'trailers'],
]);

/** A connection's bytes: the preface, SETTINGS, one Process call whose gRPC messages carry `messages`. */
function processCall(messages: Buffer[], r: () => number): Buffer {
  const grpc = messages.map((m) => {
    const prefix = Buffer.alloc(5);
    // Now and then a compressed flag (no compression was negotiated) or a length that is not the message's.
    prefix[0] = r() < 0.05 ? 1 : 0;
    prefix.writeUInt32BE(r() < 0.1 ? Math.floor(r() * 0xffffffff) : m.length, 1);
    return Buffer.concat([prefix, m]);
  });
  return Buffer.concat([
    CONNECTION_PREFACE,
    encodeFrame(0x4, 0, 0),
    encodeFrame(0x1, 0x4, 1, PROCESS_HEADERS),
    encodeFrame(0x0, 0x1, 1, Buffer.concat(grpc)),
  ]);
}

test('HTTP/2 and gRPC framing: random and mutated frames end in a clean error or a served call, and the EPP stays up', async () => {
  const r = rng(11);
  const outcomes = new Map<Outcome, number>();
  for (let i = 0; i < 150; i++) {
    const call = processCall(
      Array.from({ length: 1 + Math.floor(r() * 3) }, () =>
        r() < 0.5 ? mutate(r, encodedRequest(r)) : encodedRequest(r),
      ),
      r,
    );
    let bytes: Buffer;
    switch (i % 4) {
      case 0:
        bytes = call; // well-framed, the messages maybe malformed
        break;
      case 1:
        bytes = Buffer.concat([
          call.subarray(0, CONNECTION_PREFACE.length),
          mutate(r, call.subarray(CONNECTION_PREFACE.length)),
        ]);
        break;
      case 2: {
        // Random frames (any type, flags, stream id, payload) after a valid preface and SETTINGS.
        const frames = Array.from({ length: 1 + Math.floor(r() * 6) }, () =>
          encodeFrame(
            Math.floor(r() * 12),
            Math.floor(r() * 256),
            Math.floor(r() * 8),
            Buffer.from(Array.from({ length: Math.floor(r() * 40) }, () => Math.floor(r() * 256))),
          ),
        );
        bytes = Buffer.concat([
          CONNECTION_PREFACE,
          encodeFrame(0x4, 0, 0),
          ...frames,
          encodeFrame(0x7, 0, 0, Buffer.alloc(8)),
        ]);
        break;
      }
      default:
        bytes = mutate(r, call); // the preface itself may break
    }
    const outcome = await exchange(bytes).catch((e: Error) => {
      throw new Error(`case ${i % 4} (#${i}): ${e.message}`);
    });
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }
  assert.ok(
    (outcomes.get('grpc-status') ?? 0) > 0,
    `some calls were served: ${JSON.stringify([...outcomes])}`,
  );
  assert.ok(
    (outcomes.get('goaway') ?? 0) > 0,
    `some connections were refused: ${JSON.stringify([...outcomes])}`,
  );
  await stillRouting();
});
