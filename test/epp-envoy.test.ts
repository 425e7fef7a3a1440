/**
 * Integration: real Envoy (ext_proc filter + ORIGINAL_DST cluster, as GIE gateways configure it) in front of the
 * EPP, in front of small model-server fixtures. Asserts where requests really land.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { request } from 'undici';
import { prefillDecodeEndpointPickerConfig, startEpp, type RunningEpp } from '../src/epp/index.js';
import { startEnvoy, type RunningEnvoy } from '../src/gateway/index.js';
import { startModelServerFixture, type ModelServerFixture } from '../src/bench/index.js';
import { waitFor } from '../src/process/index.js';

const ENVOY_BIN = process.env['ENVOY_BIN'];
const quiet = pino({ level: 'silent' });

interface Reply {
  status: number;
  json: Record<string, unknown>;
}

async function post(
  port: number,
  path: string,
  body: string | object,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const res = await request(`http://127.0.0.1:${port}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.body.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text);
  } catch {
    json = { raw: text };
  }
  return { status: res.statusCode, json };
}

/** Waits (polling a condition, not a timing assertion) until the EPP has scraped or counted something. */
async function until(what: string, condition: () => boolean): Promise<void> {
  await waitFor(condition, { what, timeoutMs: 10_000, intervalMs: 25 });
}

/** The routing filter's counters are `http.gateway.ext_proc.*`, the response observer's `…ext_proc.response_observer.*`. */
const OBSERVER_STATS = 'http.gateway.ext_proc.response_observer';

function randomPrompt(): string {
  return `${Math.random().toString(36)} `.repeat(40);
}

describe(
  'EPP behind a real Envoy',
  { skip: ENVOY_BIN ? false : 'ENVOY_BIN not set (run through npm test)' },
  () => {
    const fixtures: ModelServerFixture[] = [];
    let epp: RunningEpp;
    let envoy: RunningEnvoy;
    let buffered: RunningEnvoy;

    before(async () => {
      for (const name of ['a', 'b', 'c']) fixtures.push(await startModelServerFixture(name));
      epp = await startEpp({
        host: '127.0.0.1',
        grpcPort: 0,
        grpcHealthPort: 0,
        metricsPort: 0,
        endpoints: fixtures.map((f) => ({ address: f.address })),
        refreshMetricsIntervalMs: 25,
        bodyLimitBytes: 64 * 1024,
        directory: {
          models: new Map([
            ['test-model', { criticality: 'Standard', targets: [] }],
            ['chat', { criticality: 'Critical', targets: [{ name: 'chat-lora-v2', weight: 1 }] }],
          ]),
          objectives: new Map([['batch', -1]]),
        },
        logger: quiet,
      });
      envoy = await startEnvoy(ENVOY_BIN!, { eppHost: '127.0.0.1', eppPort: epp.grpcPort });
      buffered = await startEnvoy(ENVOY_BIN!, {
        eppHost: '127.0.0.1',
        eppPort: epp.grpcPort,
        requestBodyMode: 'BUFFERED',
      });
    });

    after(async () => {
      await envoy?.close();
      await buffered?.close();
      await epp?.close();
      for (const f of fixtures) await f.close();
    });

    function reset(): void {
      for (const f of fixtures)
        Object.assign(f.state, {
          waiting: 0,
          running: 0,
          kvCacheUsage: 0,
          failMetrics: false,
          holdBodies: false,
        });
    }

    async function settled(): Promise<void> {
      await until('every fixture is scraped fresh', () =>
        fixtures.every((f) => {
          const e = epp.datastore.get(f.address)!;
          return (
            !e.stale &&
            e.metrics.waitingQueueSize === f.state.waiting &&
            e.metrics.kvCacheUsage === f.state.kvCacheUsage
          );
        }),
      );
    }

    test('routes an OpenAI request to the endpoint named in x-gateway-destination-endpoint', async () => {
      reset();
      await settled();
      const reply = await post(envoy.port, '/v1/completions', {
        model: 'test-model',
        prompt: 'hello',
        max_tokens: 1,
      });
      assert.equal(reply.status, 200);
      const served = fixtures.find((f) => f.name === reply.json['served_by'])!;
      const last = served.received.at(-1)!;
      assert.equal(last.headers['x-gateway-destination-endpoint'], served.address);
      assert.equal(JSON.parse(last.body).prompt, 'hello', 'the body reaches the model server unchanged');
    });

    test('an endpoint counts a request in flight until its response body has ended, not just its headers', async () => {
      reset();
      await settled();
      for (const f of fixtures) f.state.holdBodies = true;
      const observed = async () => (await envoy.counters()).get(`${OBSERVER_STATS}.streams_closed`) ?? 0;
      const observedBefore = await observed();
      const prompt = randomPrompt();
      const res = await request(`http://127.0.0.1:${envoy.port}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'test-model', prompt, max_tokens: 1 }),
      });
      assert.equal(res.statusCode, 200);
      const served = fixtures.find((f) => f.name === res.headers['x-served-by'])!;
      const inFlight = () => epp.datastore.get(served.address)!.inFlight;
      const inFlightTokens = () => epp.datastore.get(served.address)!.inFlightTokens;
      // The headers are here and the body is held back by the fixture. The response observer has heard them (Envoy
      // sends them to it as it forwards them): a release at the headers would show once the EPP has taken that in.
      await waitFor(async () => (await observed()) > observedBefore, {
        what: 'the EPP has heard the response headers and ended the observer stream',
      });
      assert.equal(inFlight(), 1, 'released before the response ended');
      // Its prompt tokens too (4 characters a token), what token-load-scorer and prefix-cache-affinity-filter read.
      assert.equal(inFlightTokens(), Math.ceil(prompt.length / 4));
      served.releaseBodies();
      await res.body.text();
      await until('the finished request is released', () => inFlight() === 0);
      assert.equal(inFlightTokens(), 0, 'its tokens are released with it, once');
      reset();
    });

    test('requests sharing a long prefix stick to one endpoint', async () => {
      reset();
      await settled();
      const system = 'You are a meticulous assistant that answers in haiku. '.repeat(30);
      const servedBy = new Set<unknown>();
      for (let i = 0; i < 12; i++) {
        const reply = await post(envoy.port, '/v1/completions', {
          model: 'test-model',
          prompt: `${system}Question ${i}?`,
        });
        assert.equal(reply.status, 200);
        servedBy.add(reply.json['served_by']);
      }
      assert.equal(servedBy.size, 1, `served by ${[...servedBy].join(', ')}`);
    });

    test('load spreads away from endpoints whose queues grow', async () => {
      reset();
      fixtures[0]!.state.waiting = 20;
      await settled();
      const counts = new Map<unknown, number>();
      for (let i = 0; i < 12; i++) {
        const reply = await post(envoy.port, '/v1/completions', {
          model: 'test-model',
          prompt: randomPrompt(),
        });
        counts.set(reply.json['served_by'], (counts.get(reply.json['served_by']) ?? 0) + 1);
      }
      assert.equal(counts.get('a'), undefined, JSON.stringify([...counts]));
      fixtures[1]!.state.waiting = 20;
      await settled();
      for (let i = 0; i < 6; i++) {
        const reply = await post(envoy.port, '/v1/completions', {
          model: 'test-model',
          prompt: randomPrompt(),
        });
        assert.equal(reply.json['served_by'], 'c');
      }
    });

    test('stale or failing endpoints are avoided', async () => {
      reset();
      await settled();
      fixtures[2]!.state.failMetrics = true;
      await until('c is marked stale', () => epp.datastore.get(fixtures[2]!.address)!.stale);
      for (let i = 0; i < 12; i++) {
        const reply = await post(envoy.port, '/v1/completions', {
          model: 'test-model',
          prompt: randomPrompt(),
        });
        assert.equal(reply.status, 200);
        assert.notEqual(reply.json['served_by'], 'c');
      }
    });

    test('sheddable requests get 429 while saturated; critical and standard ones still run', async () => {
      reset();
      for (const f of fixtures) f.state.waiting = 50;
      await settled();
      const shed = await post(
        envoy.port,
        '/v1/completions',
        { model: 'test-model', prompt: 'x' },
        { 'x-gateway-inference-objective': 'batch' },
      );
      assert.equal(shed.status, 429);
      assert.equal((shed.json['error'] as { type: string }).type, 'rate_limit_exceeded');
      const standard = await post(envoy.port, '/v1/completions', { model: 'test-model', prompt: 'x' });
      assert.equal(standard.status, 200);
      reset();
      await settled();
      const relieved = await post(
        envoy.port,
        '/v1/completions',
        { model: 'test-model', prompt: 'x' },
        { 'x-gateway-inference-objective': 'batch' },
      );
      assert.equal(relieved.status, 200);
    });

    test('malformed bodies get 400, unknown models 404, oversized bodies 413 — as OpenAI errors', async () => {
      reset();
      await settled();
      const cases: [string, number][] = [
        ['{"model": "test-model", "prompt": ', 400],
        ['{"prompt": "no model"}', 400],
        ['not json at all', 400],
        [JSON.stringify({ model: 'nobody-serves-this', prompt: 'x' }), 404],
        [JSON.stringify({ model: 'test-model', prompt: 'x'.repeat(100 * 1024) }), 413],
      ];
      for (const [body, status] of cases) {
        const reply = await post(envoy.port, '/v1/completions', body);
        assert.equal(reply.status, status, body.slice(0, 40));
        assert.equal(typeof (reply.json['error'] as { message?: unknown } | undefined)?.message, 'string');
      }
    });

    test('an InferenceModel mapping rewrites the model the server sees', async () => {
      reset();
      await settled();
      const reply = await post(envoy.port, '/v1/chat/completions', {
        model: 'chat',
        messages: [{ role: 'user', content: 'hi' }],
      });
      assert.equal(reply.status, 200);
      assert.equal(reply.json['model'], 'chat-lora-v2');
    });

    test("requestHandler.propagatePriority: the server sees the objective's priority, not the client's", async () => {
      reset();
      await settled();
      const prioritised = await startEpp({
        host: '127.0.0.1',
        grpcPort: 0,
        grpcHealthPort: 0,
        metricsPort: 0,
        endpoints: fixtures.map((f) => ({ address: f.address })),
        refreshMetricsIntervalMs: 25,
        configText:
          'apiVersion: llm-d.ai/v1\nkind: EndpointPickerConfig\nplugins:\n- type: queue-scorer\nrequestHandler: {propagatePriority: true}\n',
        directory: { models: new Map(), objectives: new Map([['batch', -1]]) },
        logger: quiet,
      });
      const gateway = await startEnvoy(ENVOY_BIN!, { eppHost: '127.0.0.1', eppPort: prioritised.grpcPort });
      try {
        const sent = async (headers: Record<string, string>) => {
          const reply = await post(
            gateway.port,
            '/v1/completions',
            { model: 'test-model', prompt: 'urgent, says the client', priority: 1000 },
            headers,
          );
          assert.equal(reply.status, 200);
          const served = fixtures.find((f) => f.name === reply.json['served_by'])!;
          return JSON.parse(served.received.at(-1)!.body) as Record<string, unknown>;
        };
        const batch = await sent({ 'x-gateway-inference-objective': 'batch' });
        assert.equal(batch['priority'], -1);
        assert.equal(batch['prompt'], 'urgent, says the client', "the rest of the body is the client's");
        assert.equal((await sent({}))['priority'], 0);
      } finally {
        await gateway.close();
        await prioritised.close();
      }
    });

    test('buffered body mode (older gateways) routes too', async () => {
      reset();
      await settled();
      const reply = await post(buffered.port, '/v1/completions', { model: 'test-model', prompt: 'buffered' });
      assert.equal(reply.status, 200);
      const bad = await post(buffered.port, '/v1/completions', '{"model":');
      assert.equal(bad.status, 400);
      const mapped = await post(buffered.port, '/v1/chat/completions', { model: 'chat', messages: [] });
      assert.equal(mapped.json['model'], 'chat-lora-v2');
    });

    test('requests without a body are routed on headers alone', async () => {
      reset();
      await settled();
      const res = await request(`http://127.0.0.1:${envoy.port}/v1/models`);
      await res.body.text();
      assert.equal(res.statusCode, 200);
      assert.ok(['a', 'b', 'c'].includes(String(res.headers['x-served-by'])));
    });

    test('the EPP exports its own metrics', async () => {
      const res = await request(`http://127.0.0.1:${epp.metricsPort}/metrics`);
      const text = await res.body.text();
      assert.match(text, /llmisvc_epp_requests_total\{model="test-model",outcome="routed"\} \d+/);
      assert.match(text, /llmisvc_epp_requests_total\{model="test-model",outcome="429"\} 1/);
      assert.match(text, /llmisvc_epp_shed_requests_total\{model="test-model"\} 1/);
      assert.match(text, /llmisvc_epp_scheduling_duration_seconds_count \d+/);
      assert.match(text, /llmisvc_epp_endpoint_waiting_requests\{endpoint="127\.0\.0\.1:\d+"\}/);
    });
  },
);

describe(
  'the response observer behind a real Envoy: the response headers reach the EPP without waiting for it',
  { skip: ENVOY_BIN ? false : 'ENVOY_BIN not set (run through npm test)' },
  () => {
    const fixtures: ModelServerFixture[] = [];
    let epp: RunningEpp;
    let envoy: RunningEnvoy;

    before(async () => {
      for (const name of ['a', 'b']) fixtures.push(await startModelServerFixture(name));
      epp = await startEpp({
        host: '127.0.0.1',
        grpcPort: 0,
        grpcHealthPort: 0,
        metricsPort: 0,
        // Pods named apart from the fixtures' own x-served-by, so the header is seen to be the gateway's.
        endpoints: fixtures.map((f) => ({ address: f.address, name: `pod-${f.name}` })),
        refreshMetricsIntervalMs: 25,
        servedByHeader: true,
        logger: quiet,
      });
      envoy = await startEnvoy(ENVOY_BIN!, { eppHost: '127.0.0.1', eppPort: epp.grpcPort });
      await until('both fixtures scraped', () => epp.datastore.endpoints().every((e) => !e.stale));
    });

    after(async () => {
      await envoy?.close();
      await epp?.close();
      for (const f of fixtures) await f.close();
    });

    const completion = () => ({ model: 'test-model', prompt: randomPrompt(), max_tokens: 1 });

    test('x-served-by names the pod from the routing answer; the routing stream carries the request only', async () => {
      const before = await envoy.counters();
      const replies: Reply[] = [];
      const headers: unknown[] = [];
      for (let i = 0; i < 4; i++) {
        // Headers-only requests: one message each to the routing stream, so what else it carried shows.
        const res = await request(`http://127.0.0.1:${envoy.port}/v1/models`);
        replies.push({ status: res.statusCode, json: JSON.parse(await res.body.text()) });
        headers.push(res.headers['x-served-by']);
      }
      assert.deepEqual(
        headers,
        replies.map((r) => `pod-${String(r.json['served_by'])}`),
      );
      const after = await envoy.counters();
      const delta = (name: string) => after.get(name)! - (before.get(name) ?? 0);
      // The request's headers to the routing stream, nothing of the response (its end closes that stream).
      assert.equal(delta('http.gateway.ext_proc.stream_msgs_sent'), 4);
      assert.equal(delta(`${OBSERVER_STATS}.stream_msgs_sent`), 4);
      assert.equal(delta(`${OBSERVER_STATS}.streams_failed`), 0);
      await until('both streams of each request are over', () =>
        epp.datastore.endpoints().every((e) => e.inFlight === 0),
      );
    });

    test("a model server's 5xx reaches the EPP: counted as its error and its server marked for a scrape; a 200 is not", async () => {
      const metrics = async () => (await request(`http://127.0.0.1:${epp.metricsPort}/metrics`)).body.text();
      const errors = (text: string) =>
        Number(
          /^inference_objective_request_error_total\{[^}]*error_code="ModelServerError"\} (\d+)$/m.exec(
            text,
          )?.[1] ?? 0,
        );
      const troubleBefore = epp.datastore.endpoints().map((e) => epp.datastore.lastTroubleAt(e.address));
      const ok = await post(envoy.port, '/v1/completions', completion());
      assert.equal(ok.status, 200);
      await until('the 200 is over', () => epp.datastore.endpoints().every((e) => e.inFlight === 0));
      assert.deepEqual(
        epp.datastore.endpoints().map((e) => epp.datastore.lastTroubleAt(e.address)),
        troubleBefore,
        'a 200 heard through the observer marks nothing (an unknown status would)',
      );
      const errorsBefore = errors(await metrics());
      for (const f of fixtures) f.state.completionStatus = 500;
      try {
        const failed = await post(envoy.port, '/v1/completions', completion());
        assert.equal(failed.status, 500);
        const server = fixtures.find((f) => f.name === failed.json['served_by'])!;
        await until('the 500 is counted', () => epp.datastore.get(server.address)!.inFlight === 0);
        assert.notEqual(epp.datastore.lastTroubleAt(server.address), -Infinity);
        await waitFor(async () => errors(await metrics()) === errorsBefore + 1, {
          what: 'inference_objective_request_error_total{error_code="ModelServerError"} counts the 500',
        });
      } finally {
        for (const f of fixtures) f.state.completionStatus = 200;
      }
    });
  },
);

describe(
  'prefill/decode behind a real Envoy',
  { skip: ENVOY_BIN ? false : 'ENVOY_BIN not set (run through npm test)' },
  () => {
    let prefill: ModelServerFixture;
    const decode: ModelServerFixture[] = [];
    let epp: RunningEpp;
    let envoy: RunningEnvoy;

    before(async () => {
      prefill = await startModelServerFixture('prefill');
      for (const name of ['decode-1', 'decode-2']) decode.push(await startModelServerFixture(name));
      epp = await startEpp({
        host: '127.0.0.1',
        grpcPort: 0,
        grpcHealthPort: 0,
        metricsPort: 0,
        endpoints: [
          { address: prefill.address, role: 'prefill' },
          ...decode.map((d) => ({ address: d.address, role: 'decode' as const })),
        ],
        configText: prefillDecodeEndpointPickerConfig,
        logger: quiet,
      });
      envoy = await startEnvoy(ENVOY_BIN!, { eppHost: '127.0.0.1', eppPort: epp.grpcPort });
    });

    after(async () => {
      await envoy?.close();
      await epp?.close();
      for (const f of [prefill, ...decode]) await f?.close();
    });

    test('long uncached prompts name the prefill endpoint; the decode endpoint serves', async () => {
      const long = 'Summarise this quarterly report in three bullet points please. '.repeat(20);
      const reply = await post(envoy.port, '/v1/completions', { model: 'test-model', prompt: long });
      assert.equal(reply.status, 200);
      const served = decode.find((d) => d.name === reply.json['served_by']);
      assert.ok(served, `served by ${String(reply.json['served_by'])}, not a decode endpoint`);
      assert.equal(served.received.at(-1)!.headers['x-prefiller-host-port'], prefill.address);
      assert.equal(
        prefill.received.length,
        0,
        'the gateway sends the request to decode; decode pulls from prefill',
      );
      const short = await post(envoy.port, '/v1/completions', { model: 'test-model', prompt: 'hi' });
      const shortServed = decode.find((d) => d.name === short.json['served_by'])!;
      assert.equal(shortServed.received.at(-1)!.headers['x-prefiller-host-port'], undefined);
    });
  },
);

describe(
  'EPP over TLS behind a real Envoy',
  { skip: ENVOY_BIN ? false : 'ENVOY_BIN not set (run through npm test)' },
  () => {
    const fixtures: ModelServerFixture[] = [];
    let epp: RunningEpp;
    let envoy: RunningEnvoy;

    before(async () => {
      for (const name of ['tls-a', 'tls-b']) fixtures.push(await startModelServerFixture(name));
      epp = await startEpp({
        host: '127.0.0.1',
        grpcPort: 0,
        grpcHealthPort: 0,
        metricsPort: 0,
        endpoints: fixtures.map((f) => ({ address: f.address })),
        tls: {}, // self-signed, as --secure-serving without --cert-path
        logger: quiet,
      });
      envoy = await startEnvoy(ENVOY_BIN!, { eppHost: '127.0.0.1', eppPort: epp.grpcPort, eppTls: true });
    });

    after(async () => {
      await envoy?.close();
      await epp?.close();
      for (const f of fixtures) await f.close();
    });

    test('1,200 requests over one gateway connection all succeed (more than the 1,000 resets Node 20 allowed)', async () => {
      // Envoy's ext_proc client resets every stream it is done with; Node 20's own HTTP/2 dropped the connection
      // after 1,000 of them, failing the requests in flight. The EPP's HTTP/2 layer has no such limit, and the
      // gateway no longer recycles its EPP connection.
      const statuses = new Map<number, number>();
      let next = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < 1200) {
            next++;
            const { status } = await post(envoy.port, '/v1/completions', {
              model: 'm',
              prompt: randomPrompt(),
            });
            statuses.set(status, (statuses.get(status) ?? 0) + 1);
          }
        }),
      );
      assert.deepEqual([...statuses], [[200, 1200]]);
      const stats = await (
        await fetch(`http://127.0.0.1:${envoy.adminPort}/stats?filter=^cluster\\.epp\\.upstream_cx_total$`)
      ).text();
      assert.match(
        stats,
        /^cluster\.epp\.upstream_cx_total: 1$/m,
        'one connection to the EPP for all of them',
      );
    });

    test('a 3 MB prompt streams through the EPP whole (past its 1 MiB stream window)', async () => {
      const prompt = 'The quick brown fox jumps over the lazy dog. '.repeat(70_000);
      const reply = await post(envoy.port, '/v1/completions', { model: 'm', prompt });
      assert.equal(reply.status, 200);
      const served = fixtures.find((f) => f.name === reply.json['served_by'])!;
      assert.equal(JSON.parse(served.received.at(-1)!.body).prompt, prompt);
    });
  },
);
