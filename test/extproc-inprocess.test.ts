/**
 * Integration: the builtin gateway's in-process ext_proc channel (what `llmisvc up` uses) gets from the EPP exactly
 * what a gRPC client gets over the wire — the same endpoint, header mutations, forwarded body and immediate answers —
 * and keeps the in-flight accounting: a stream counts until the gateway ends it, a cancelled or timed-out one is
 * released, and a stopped channel fails at once instead of hanging.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { startEpp, type RunningEpp } from '../src/epp/index.js';
import {
  createExtProcClient,
  inProcessExtProcChannel,
  pickEndpoint,
  type ExtProcChannel,
  type ExtProcClient,
  type PickRequest,
  type PickResult,
} from '../src/gateway/index.js';
import { startModelServerFixture, type ModelServerFixture } from '../src/bench/index.js';
import { waitFor } from '../src/process/index.js';

let fixtures: ModelServerFixture[] = [];
let epp: RunningEpp;
let grpcClient: ExtProcClient;
let inProcess: ExtProcChannel;

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
  grpcClient = createExtProcClient(`127.0.0.1:${epp.grpcPort}`);
  inProcess = inProcessExtProcChannel(epp.processStream);
});

after(async () => {
  grpcClient?.close();
  inProcess?.close();
  await epp?.close();
  for (const f of fixtures) await f.close();
});

const inFlight = () => epp.datastore.endpoints().reduce((n, e) => n + e.inFlight, 0);

/** What a pick decided, without its `done`. */
function decided(pick: PickResult): Omit<PickResult, 'done'> {
  const { done: _done, ...rest } = pick;
  return rest;
}

const CASES: [string, PickRequest][] = [
  [
    'a routed completion',
    {
      path: '/v1/completions',
      headers: { 'content-type': 'application/json', 'x-request-id': 'same' },
      body: Buffer.from('{"model":"m","prompt":"the same prompt either way"}'),
    },
  ],
  [
    'forged routing headers of the client',
    {
      path: '/v1/completions',
      headers: { 'x-gateway-destination-endpoint': '10.6.6.6:80', 'x-prefiller-host-port': '10.6.6.6:81' },
      body: Buffer.from('{"model":"m","prompt":"forged"}'),
    },
  ],
  ['a request without a body', { method: 'GET', path: '/v1/models' }],
  ['a malformed body (400)', { path: '/v1/completions', body: Buffer.from('{') }],
  ['an oversized body (413)', { path: '/v1/completions', body: Buffer.alloc(5000, 'x') }],
  [
    'a subset hint no endpoint matches (503)',
    { path: '/v1/completions', subsetHint: ['10.9.9.9:80'], body: Buffer.from('{"model":"m","prompt":"p"}') },
  ],
];

for (const [name, routed] of CASES) {
  test(`in process and over gRPC the EPP decides the same: ${name}`, async () => {
    // Ties between equal endpoints break at random: a hint for one endpoint makes the choice comparable.
    const request = { subsetHint: [fixtures[0]!.address], ...routed };
    const overGrpc = await pickEndpoint(grpcClient, request);
    overGrpc.done();
    await waitFor(() => inFlight() === 0, { what: 'the gRPC pick released', timeoutMs: 5000 });
    const direct = await pickEndpoint(inProcess, request);
    direct.done();
    assert.deepEqual(decided(direct), decided(overGrpc));
    await waitFor(() => inFlight() === 0, { what: 'the in-process pick released', timeoutMs: 5000 });
  });
}

test('an in-process stream counts in flight until the gateway ends it', async () => {
  const pick = await pickEndpoint(inProcess, {
    path: '/v1/completions',
    body: Buffer.from('{"model":"m","prompt":"held"}'),
  });
  assert.ok(pick.endpoint);
  assert.equal(epp.datastore.get(pick.endpoint)!.inFlight, 1);
  pick.done();
  await waitFor(() => inFlight() === 0, { what: 'released after done()', timeoutMs: 5000 });
});

test('a stream past its deadline fails and is released; a cancelled one is released', async () => {
  const stream = inProcess.Process({ deadline: Date.now() + 50 });
  const failed = new Promise<Error>((resolve) => stream.on('error', resolve));
  // Headers that announce a body which never comes: the EPP waits, the deadline ends it.
  stream.write({
    request_headers: {
      headers: { headers: [{ key: ':path', raw_value: Buffer.from('/v1/completions') }] },
      end_of_stream: false,
    },
  });
  assert.match((await failed).message, /deadline/);
  const cancelled = inProcess.Process();
  cancelled.write({
    request_headers: {
      headers: { headers: [{ key: ':path', raw_value: Buffer.from('/v1/completions') }] },
      end_of_stream: true,
    },
  });
  cancelled.cancel();
  await waitFor(() => inFlight() === 0, { what: 'every in-flight count back to 0', timeoutMs: 5000 });
});

test('a stopped in-process channel fails a pick at once', async () => {
  const stopped = inProcessExtProcChannel(epp.processStream);
  stopped.close();
  await assert.rejects(
    pickEndpoint(stopped, { path: '/v1/completions', body: Buffer.from('{"model":"m","prompt":"x"}') }),
    /stopped/,
  );
});

test('the pick timeout bounds the decision, not the response: a long response stays in flight until done()', async () => {
  for (const [name, channel] of [
    ['gRPC', grpcClient],
    ['in process', inProcess],
  ] as const) {
    const pick = await pickEndpoint(
      channel,
      { path: '/v1/completions', body: Buffer.from('{"model":"m","prompt":"a long answer"}') },
      // Roomy enough for a loaded machine (CI once took over 100 ms to decide over gRPC).
      { timeoutMs: 1000 },
    );
    assert.ok(pick.endpoint, name);
    // Longer than the timeout: a response still streaming.
    await new Promise((resolve) => setTimeout(resolve, 1200));
    assert.equal(
      epp.datastore.get(pick.endpoint)!.inFlight,
      1,
      `${name}: released while the response streams`,
    );
    pick.done();
    await waitFor(() => inFlight() === 0, { what: `${name}: released after done()`, timeoutMs: 5000 });
  }
});

test("done(status) tells the EPP the upstream's answer: none or a 5xx marks that server for a prompt scrape", async () => {
  for (const [name, channel] of [
    ['gRPC', grpcClient],
    ['in process', inProcess],
  ] as const) {
    for (const [status, trouble] of [
      [200, false],
      [429, false],
      [503, true],
      [0, true],
    ] as const) {
      const pick = await pickEndpoint(channel, {
        path: '/v1/completions',
        body: Buffer.from('{"model":"m","prompt":"p"}'),
      });
      const endpoint = pick.endpoint!;
      const before = epp.datastore.lastTroubleAt(endpoint);
      pick.done(status);
      await waitFor(() => inFlight() === 0, { what: `${name} ${status}: released`, timeoutMs: 5000 });
      assert.equal(epp.datastore.lastTroubleAt(endpoint) !== before, trouble, `${name}, upstream ${status}`);
    }
  }
});

test('a header value with bytes above 0x7f reaches the EPP as those bytes, as behind Envoy', async () => {
  // Node hands the gateway a header value as Latin-1: "café" sent as UTF-8 is "cafÃ©", one character per byte.
  const sent = Buffer.from('café', 'utf8').toString('latin1');
  const seen: Record<string, string>[] = [];
  const channel = inProcessExtProcChannel((call) => ({
    message(message) {
      const headers = message['request_headers']?.['headers'] as Record<string, string> | undefined;
      if (!headers) return;
      seen.push(headers);
      call.send({ immediate_response: { status: { code: 403 }, body: Buffer.from('no') } });
      call.end();
    },
    end() {},
    abort() {},
  }));
  const pick = await pickEndpoint(channel, {
    method: 'GET',
    path: '/v1/models',
    headers: { 'x-team': sent },
  });
  assert.equal(pick.immediateResponse?.status, 403);
  assert.equal(seen[0]?.['x-team'], sent);
  // Over gRPC the EPP decodes the same bytes (transport/header-record: raw_value as Latin-1).
  assert.deepEqual(Buffer.from(seen[0]['x-team'], 'latin1'), Buffer.from('café', 'utf8'));
});
