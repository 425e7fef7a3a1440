/**
 * Integration: flow control (feature gate `flowControl`) in the EPP behind a real Envoy and behind the builtin
 * gateway, over model-server fixtures whose scraped queue the test sets. A request beyond saturation waits in the
 * EPP and is dispatched when capacity frees; its TTL ends in 429 with the dropped reason; an empty pool ends in 503
 * with `rejected-no-endpoints`; higher priority goes first; flows take turns; a client that disconnects leaves the
 * queue at once. Waits are on conditions (queue sizes, received requests), not on sleeps.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { request } from 'undici';
import { startEpp, type RunningEpp } from '../src/epp/index.js';
import {
  startBuiltinGateway,
  startEnvoy,
  type RunningEnvoy,
  type RunningGateway,
} from '../src/gateway/index.js';
import { startModelServerFixture, type ModelServerFixture } from '../src/bench/index.js';
import { waitFor } from '../src/process/index.js';

const ENVOY_BIN = process.env['ENVOY_BIN'];
const quiet = pino({ level: 'silent' });
const REASON = 'x-llm-d-request-dropped-reason';

const CONFIG = `apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
featureGates: [flowControl]
plugins:
- type: queue-scorer
- name: detector
  type: utilization-detector
  parameters: {queueDepthThreshold: 1, metricsStalenessThreshold: 5s}
- type: round-robin-fairness-policy
flowControl:
  saturationDetector: {pluginRef: detector}
  defaultRequestTTL: 60s
  noEndpointRequestTTL: 300ms
  defaultPriorityBand: {fairnessPolicyRef: round-robin-fairness-policy, maxRequests: 50}
  priorityBands:
  - {priority: 10, fairnessPolicyRef: round-robin-fairness-policy}
  - {priority: 0, fairnessPolicyRef: round-robin-fairness-policy, maxRequests: 50}
`;
const SHORT_TTL = CONFIG.replace('defaultRequestTTL: 60s', 'defaultRequestTTL: 400ms');

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  json: Record<string, unknown>;
}

async function post(
  port: number,
  prompt: string,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<Reply> {
  const res = await request(`http://127.0.0.1:${port}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'test-model', prompt, max_tokens: 1 }),
    signal,
  });
  const text = await res.body.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text);
  } catch {
    json = { raw: text };
  }
  return { status: res.statusCode, headers: res.headers, json };
}

async function until(what: string, condition: () => boolean): Promise<void> {
  await waitFor(condition, { what, timeoutMs: 15_000, intervalMs: 10 });
}

async function metric(epp: RunningEpp, line: RegExp): Promise<number> {
  const text = await (await request(`http://127.0.0.1:${epp.metricsPort}/metrics`)).body.text();
  const found = text.split('\n').find((l) => line.test(l));
  return found ? Number(found.split(' ').at(-1)) : 0;
}

describe(
  'flow control in the EPP',
  { skip: ENVOY_BIN ? false : 'ENVOY_BIN not set (run through npm test)' },
  () => {
    let fixture: ModelServerFixture;
    let epp: RunningEpp;
    let shortTtl: RunningEpp;
    let emptyPool: RunningEpp;
    const envoys: RunningEnvoy[] = [];
    const gateways: RunningGateway[] = [];
    const ports: Record<string, { main: number; shortTtl: number; empty: number }> = {};

    before(async () => {
      fixture = await startModelServerFixture('a');
      const start = (configText: string, endpoints: { address: string }[]) =>
        startEpp({
          host: '127.0.0.1',
          grpcPort: 0,
          grpcHealthPort: 0,
          metricsPort: 0,
          endpoints,
          refreshMetricsIntervalMs: 20,
          configText,
          directory: { models: new Map(), objectives: new Map([['critical', 10]]) },
          logger: quiet,
        });
      epp = await start(CONFIG, [{ address: fixture.address }]);
      shortTtl = await start(SHORT_TTL, [{ address: fixture.address }]);
      emptyPool = await start(CONFIG, []);
      const envoyFor = async (e: RunningEpp) => {
        const envoy = await startEnvoy(ENVOY_BIN!, { eppHost: '127.0.0.1', eppPort: e.grpcPort });
        envoys.push(envoy);
        return envoy.port;
      };
      const builtinFor = async (e: RunningEpp) => {
        const gateway = await startBuiltinGateway({
          port: 0,
          routes: [{ prefix: '/', backend: 'pool' }],
          eppAddress: `127.0.0.1:${e.grpcPort}`,
          serviceEndpoints: [],
        });
        gateways.push(gateway);
        return gateway.port;
      };
      ports['envoy'] = {
        main: await envoyFor(epp),
        shortTtl: await envoyFor(shortTtl),
        empty: await envoyFor(emptyPool),
      };
      ports['builtin'] = {
        main: await builtinFor(epp),
        shortTtl: await builtinFor(shortTtl),
        empty: await builtinFor(emptyPool),
      };
    });

    after(async () => {
      for (const e of envoys) await e.close();
      for (const g of gateways) await g.close();
      for (const e of [epp, shortTtl, emptyPool]) await e?.close();
      await fixture?.close();
    });

    /** Makes the pool look saturated (or not) and waits until both EPPs have scraped it. */
    async function saturate(on: boolean): Promise<void> {
      fixture.state.waiting = on ? 10 : 0;
      await until('the EPPs scraped the queue', () =>
        [epp, shortTtl].every((e) => {
          const s = e.datastore.get(fixture.address)!;
          return !s.stale && s.metrics.waitingQueueSize === fixture.state.waiting;
        }),
      );
    }

    function prompts(): string[] {
      return fixture.received.map((r) => String(JSON.parse(r.body).prompt));
    }

    for (const via of ['envoy', 'builtin'] as const) {
      test(`${via}: a request beyond saturation waits in the EPP and is dispatched when capacity frees`, async () => {
        await saturate(true);
        const reply = post(ports[via]!.main, `${via}-queued`);
        await until('the request waits in flow control', () => epp.flowControl!.size === 1);
        assert.equal(prompts().includes(`${via}-queued`), false, 'not sent while the pool is saturated');
        await saturate(false);
        const r = await reply;
        assert.equal(r.status, 200);
        assert.equal(epp.flowControl!.size, 0);
      });

      test(`${via}: past its TTL a waiting request gets 429 with the dropped reason`, async () => {
        await saturate(true);
        const r = await post(ports[via]!.shortTtl, `${via}-expires`);
        assert.equal(r.status, 429);
        assert.equal(r.headers[REASON], 'rejected-ttl-expired');
        assert.match(String((r.json['error'] as { message?: string })?.message), /timed out in queue/);
        assert.equal(shortTtl.flowControl!.size, 0);
        assert.equal(prompts().includes(`${via}-expires`), false);
        await saturate(false);
      });

      test(`${via}: with no endpoint in the pool the answer is 503 with rejected-no-endpoints`, async () => {
        const r = await post(ports[via]!.empty, `${via}-nobody`);
        assert.equal(r.status, 503);
        assert.equal(r.headers[REASON], 'rejected-no-endpoints');
        assert.equal(emptyPool.flowControl!.size, 0);
      });
    }

    test('higher priority is dispatched first; flows in a band take turns', async () => {
      // One slot: the detector's in-flight credit keeps the pool saturated while one held response is in flight.
      fixture.state.holdBodies = true;
      await saturate(true);
      const base = fixture.received.length;
      const port = ports['envoy']!.main;
      const replies: Promise<Reply>[] = [];
      for (let i = 0; i < 3; i++) {
        // One at a time, so their arrival order (FCFS within the flow) is known.
        replies.push(post(port, `noisy-${i}`, { 'x-gateway-inference-fairness-id': 'noisy' }));
        await until(`${i + 1} wait`, () => epp.flowControl!.size === i + 1);
      }
      replies.push(post(port, 'quiet-0', { 'x-llm-d-inference-fairness-id': 'quiet' }));
      await until('four wait', () => epp.flowControl!.size === 4);
      replies.push(post(port, 'critical-0', { 'x-gateway-inference-objective': 'critical' }));
      await until('five wait', () => epp.flowControl!.size === 5);
      await saturate(false);
      for (let n = 1; n <= 5; n++) {
        await until(`request ${n} reached the model server`, () => fixture.received.length === base + n);
        fixture.releaseBodies();
      }
      fixture.state.holdBodies = false;
      fixture.releaseBodies();
      for (const r of await Promise.all(replies)) assert.equal(r.status, 200);
      assert.deepEqual(prompts().slice(base), ['critical-0', 'noisy-0', 'quiet-0', 'noisy-1', 'noisy-2']);
    });

    for (const via of ['envoy', 'builtin'] as const) {
      test(`${via}: a client that disconnects leaves the queue at once`, async () => {
        await saturate(true);
        const before = await metric(
          epp,
          /^llm_d_epp_flow_control_requests_total\{outcome="EvictedContextCancelled"/,
        );
        const abort = new AbortController();
        const reply = post(ports[via]!.main, `gone-${via}`, {}, abort.signal).catch((error: Error) => error);
        await until('the request waits', () => epp.flowControl!.size === 1);
        abort.abort();
        await reply;
        await until(
          'the queue is empty again',
          () => epp.flowControl!.size === 0 && epp.flowControl!.bytes === 0,
        );
        assert.equal(
          await metric(epp, /^llm_d_epp_flow_control_requests_total\{outcome="EvictedContextCancelled"/),
          before + 1,
        );
        await saturate(false);
        assert.equal(prompts().includes(`gone-${via}`), false, 'a cancelled request is never dispatched');
      });
    }

    test('hostile: an overlong fairness id is refused with 400 naming the header; a full band refuses with 429', async () => {
      const r = await post(ports['envoy']!.main, 'long-id', {
        'x-gateway-inference-fairness-id': 'x'.repeat(5000),
      });
      assert.equal(r.status, 400);
      assert.match(String((r.json['error'] as { message?: string })?.message), /fairness id/);
      await saturate(true);
      const port = ports['builtin']!.main;
      const waiting = Array.from({ length: 50 }, (_, i) =>
        post(port, `flood-${i}`, { 'x-gateway-inference-fairness-id': `tenant-${i}` }),
      );
      await until('the band is full', () => epp.flowControl!.size === 50);
      const refused = await post(port, 'one-too-many', { 'x-gateway-inference-fairness-id': 'tenant-x' });
      assert.equal(refused.status, 429);
      assert.equal(refused.headers[REASON], 'rejected-saturated');
      await saturate(false);
      for (const w of await Promise.all(waiting)) assert.equal(w.status, 200);
      assert.equal(epp.flowControl!.size, 0);
    });
  },
);
