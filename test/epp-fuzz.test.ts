/**
 * Integration: the EPP survives a fuzzed stream of ext_proc messages — messages out of order, repeated, with random
 * headers and bodies, streams cancelled half-way, and bytes that are not protobuf at all — and keeps routing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
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
    await new Promise((resolve) => setTimeout(resolve, 10));
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
  for (let i = 0; i < 200 && epp.datastore.endpoints().some((e) => e.inFlight > 0); i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  for (const e of epp.datastore.endpoints()) assert.equal(e.inFlight, 0, `${e.address} in-flight`);
  assert.equal(BodySendMode.FULL_DUPLEX_STREAMED, 4);
});
