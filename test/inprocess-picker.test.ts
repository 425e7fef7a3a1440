/**
 * Integration: the builtin gateway's in-process picker (what `llmisvc up` uses: the EPP's request sessions called
 * directly) gets from the EPP exactly what a gRPC client gets over the wire — the same endpoint, header mutations,
 * forwarded body and immediate answers — and keeps the in-flight accounting: a request counts until the gateway says
 * it is done, one that timed out or whose client left is released, and a stopped picker fails at once instead of
 * hanging.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { decodeJsonBody, startEpp, type RunningEpp } from '../src/epp/index.js';
import {
  createExtProcClient,
  extProcPicker,
  inProcessPicker,
  type EndpointPicker,
  type PickRequest,
  type PickResult,
} from '../src/gateway/index.js';
import { startModelServerFixture, type ModelServerFixture } from '../src/bench/index.js';
import { waitFor } from '../src/process/index.js';

let fixtures: ModelServerFixture[] = [];
let epp: RunningEpp;
let grpcClient: EndpointPicker;
let inProcess: EndpointPicker;

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
  grpcClient = extProcPicker(createExtProcClient(`127.0.0.1:${epp.grpcPort}`));
  inProcess = inProcessPicker(epp.openSession);
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
  ['a body without a model (400)', { path: '/v1/completions', body: Buffer.from('{"prompt":"p"}') }],
  [
    'a model the EPP rewrites in the body',
    {
      path: '/v1/completions',
      body: Buffer.from('{"model":"m","prompt":"p","kv_transfer_params":{"remote_host":"10.6.6.6"}}'),
    },
  ],
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
    const overGrpc = await grpcClient.pick(request);
    overGrpc.done();
    await waitFor(() => inFlight() === 0, { what: 'the gRPC pick released', timeoutMs: 5000 });
    const direct = await inProcess.pick(request);
    direct.done();
    assert.deepEqual(decided(direct), decided(overGrpc));
    await waitFor(() => inFlight() === 0, { what: 'the in-process pick released', timeoutMs: 5000 });
    // As the builtin gateway calls it: with the body it decoded already (to read the model for its routes).
    let json: Record<string, unknown> | undefined;
    try {
      json = request.body && decodeJsonBody(request.body);
    } catch {
      return; // not JSON: the gateway answered 400 itself
    }
    const decoded = await inProcess.pick({ ...request, json });
    decoded.done();
    assert.deepEqual(decided(decoded), decided(overGrpc));
    await waitFor(() => inFlight() === 0, { what: 'the decoded pick released', timeoutMs: 5000 });
  });
}

test('an in-process pick counts in flight until the gateway says it is done', async () => {
  const pick = await inProcess.pick({
    path: '/v1/completions',
    body: Buffer.from('{"model":"m","prompt":"held"}'),
  });
  assert.ok(pick.endpoint);
  assert.equal(epp.datastore.get(pick.endpoint)!.inFlight, 1);
  pick.done();
  await waitFor(() => inFlight() === 0, { what: 'released after done()', timeoutMs: 5000 });
});

test('a pick past its timeout fails and is released; one whose client left is released', async () => {
  // A preparer that never returns holds the decision, as a model server that does not answer would.
  const config = epp.config;
  const stuck = { name: 'stuck', prepareRequestData: () => new Promise<void>(() => {}) };
  (config.preparers as unknown[]).push(stuck);
  try {
    const body = Buffer.from('{"model":"m","prompt":"waits"}');
    await assert.rejects(
      inProcess.pick({ path: '/v1/completions', body }, { timeoutMs: 50 }),
      /within 50 ms/,
    );
    const gone = new AbortController();
    const pending = inProcess.pick({ path: '/v1/completions', body }, { signal: gone.signal });
    gone.abort();
    await assert.rejects(pending, /went away/);
  } finally {
    (config.preparers as unknown[]).pop();
  }
  assert.equal(inFlight(), 0);
  // A session answered after its pick gave up routes nothing: the in-flight counts stay at 0.
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(inFlight(), 0);
});

test('a stopped in-process picker fails a pick at once', async () => {
  const stopped = inProcessPicker(epp.openSession);
  stopped.close();
  await assert.rejects(
    stopped.pick({ path: '/v1/completions', body: Buffer.from('{"model":"m","prompt":"x"}') }),
    /stopped/,
  );
});

test('the pick timeout bounds the decision, not the response: a long response stays in flight until done()', async () => {
  for (const [name, channel] of [
    ['gRPC', grpcClient],
    ['in process', inProcess],
  ] as const) {
    const pick = await channel.pick(
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
      const pick = await channel.pick({
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

test('a header value with bytes above 0x7f reaches the EPP as those bytes, in process as over gRPC', async () => {
  // Node hands the gateway a header value as Latin-1: "café" sent as UTF-8 is "cafÃ©", one character per byte. Over
  // gRPC the EPP decodes the bytes of raw_value as Latin-1 (transport/header-record); in process it gets the value.
  const sent = Buffer.from('café', 'utf8').toString('latin1');
  const seen: string[] = [];
  const recorder = {
    name: 'recorder',
    prepareRequestData: (input: { headers: Record<string, string> }) => {
      seen.push(input.headers['x-team'] ?? '');
      return Promise.resolve();
    },
  };
  const preparers = epp.config.preparers as unknown[];
  preparers.push(recorder);
  try {
    for (const picker of [grpcClient, inProcess]) {
      const pick = await picker.pick({
        path: '/v1/completions',
        headers: { 'x-team': sent },
        body: Buffer.from('{"model":"m","prompt":"p"}'),
      });
      pick.done();
    }
  } finally {
    preparers.pop();
  }
  assert.deepEqual(seen, [sent, sent]);
  assert.deepEqual(Buffer.from(seen[1]!, 'latin1'), Buffer.from('café', 'utf8'));
});
