/**
 * Issue 18: routing headers are the EPP's to set, never the client's. A client that sends `x-prefiller-host-port`
 * (or a destination, or a subset) must reach nothing with it: not the address it names, and not a model server,
 * through the builtin gateway and through a real Envoy (full-duplex and buffered body modes), whether the EPP routes
 * the request or answers it itself. The last part is the reproduction: `llmisvc up -f
 * examples/prefill-decode.yaml` with a short completion carrying a forged prefill endpoint.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { request } from 'undici';
import {
  EPP_ROUTING_HEADERS,
  prefillDecodeEndpointPickerConfig,
  startEpp,
  type RunningEpp,
} from '../src/epp/index.js';
import {
  startBuiltinGateway,
  type RunningGateway,
  startEnvoy,
  type RunningEnvoy,
} from '../src/gateway/index.js';
import { startLocalStack, type LocalStack } from '../src/local/index.js';
import { startAttackerTarget, type AttackerTarget } from './harness/attacker.js';
import { startModelServerFixture, type ModelServerFixture } from '../src/bench/index.js';
import { REPO_ROOT } from './harness/repo.js';

const ENVOY_BIN = process.env['ENVOY_BIN'];
const quiet = pino({ level: 'silent' });
const LONG_PROMPT = 'Summarise this quarterly report in three bullet points please. '.repeat(20);

/** Every routing header the EPP owns, each pointing at the attacker (the subset too: a list of one address). */
function forgedHeaders(attacker: string): Record<string, string> {
  return Object.fromEntries(EPP_ROUTING_HEADERS.map((name) => [name, attacker]));
}

async function send(
  url: string,
  init: { method?: 'GET' | 'POST'; body?: object; headers?: Record<string, string> },
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await request(url, {
    method: init.method ?? 'POST',
    headers: { 'content-type': 'application/json', ...init.headers },
    ...(init.body ? { body: JSON.stringify(init.body) } : {}),
  });
  const text = await res.body.text();
  try {
    return { status: res.statusCode, json: JSON.parse(text) as Record<string, unknown> };
  } catch {
    return { status: res.statusCode, json: { raw: text } };
  }
}

describe('forged routing headers reach no upstream', () => {
  let attacker: AttackerTarget;
  let prefill: ModelServerFixture;
  const decode: ModelServerFixture[] = [];
  let epp: RunningEpp;
  let builtin: RunningGateway;
  const envoys: RunningEnvoy[] = [];
  const gateways: { name: string; url: () => string }[] = [
    { name: 'builtin gateway', url: () => builtin.url },
  ];
  if (ENVOY_BIN) {
    gateways.push(
      { name: 'Envoy (full duplex)', url: () => `http://127.0.0.1:${envoys[0]!.port}` },
      { name: 'Envoy (buffered)', url: () => `http://127.0.0.1:${envoys[1]!.port}` },
    );
  }

  before(async () => {
    attacker = await startAttackerTarget();
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
      directory: {
        models: new Map([['test-model', { criticality: 'Standard', targets: [] }]]),
        objectives: new Map(),
      },
      logger: quiet,
    });
    builtin = await startBuiltinGateway({
      port: 0,
      routes: [{ prefix: '/', backend: 'pool' }],
      eppAddress: `127.0.0.1:${epp.grpcPort}`,
      serviceEndpoints: [],
    });
    if (ENVOY_BIN) {
      envoys.push(await startEnvoy(ENVOY_BIN, { eppHost: '127.0.0.1', eppPort: epp.grpcPort }));
      envoys.push(
        await startEnvoy(ENVOY_BIN, {
          eppHost: '127.0.0.1',
          eppPort: epp.grpcPort,
          requestBodyMode: 'BUFFERED',
        }),
      );
    }
    for (let i = 0; i < 400 && epp.datastore.endpoints().some((e) => e.stale); i++) await sleep(25);
  });

  after(async () => {
    for (const e of envoys) await e.close();
    await builtin?.close();
    await epp?.close();
    for (const f of [prefill, ...decode]) await f?.close();
    await attacker?.close();
  });

  /** The request a model server received last, after `count` requests had arrived before the one sent. */
  function receivedSince(
    before: number[],
  ): { fixture: ModelServerFixture; headers: Record<string, unknown> }[] {
    return [prefill, ...decode].flatMap((f, i) =>
      f.received.slice(before[i]).map((r) => ({ fixture: f, headers: r.headers })),
    );
  }
  const counts = () => [prefill, ...decode].map((f) => f.received.length);

  for (const gateway of gateways) {
    test(`${gateway.name}: routed requests keep only the routing headers the EPP set`, async () => {
      const forged = forgedHeaders(attacker.address);
      const cases = [
        { label: 'short completion (no P/D)', body: { model: 'test-model', prompt: 'hi', max_tokens: 1 } },
        // Unique per gateway: a prompt the pool has cached needs no prefill.
        {
          label: 'long completion (P/D)',
          body: { model: 'test-model', prompt: `${gateway.name}: ${LONG_PROMPT}`, max_tokens: 1 },
        },
        { label: 'request without a body', method: 'GET' as const, path: '/v1/models' },
      ];
      for (const c of cases) {
        const before = counts();
        const reply = await send(`${gateway.url()}${c.path ?? '/v1/completions'}`, {
          method: c.method ?? 'POST',
          ...(c.body ? { body: c.body } : {}),
          headers: forged,
        });
        assert.equal(reply.status, 200, `${c.label}: ${JSON.stringify(reply.json)}`);
        const received = receivedSince(before);
        assert.equal(received.length, 1, `${c.label}: one model server got the request`);
        const { fixture, headers } = received[0]!;
        assert.ok(decode.includes(fixture), `${c.label}: served by ${fixture.name}`);
        for (const name of EPP_ROUTING_HEADERS) {
          const value = headers[name];
          assert.ok(
            value === undefined || !JSON.stringify(value).includes(attacker.address),
            `${c.label}: the client's ${name} reached ${fixture.name}: ${JSON.stringify(value)}`,
          );
        }
        assert.equal(headers['x-gateway-destination-endpoint'] ?? fixture.address, fixture.address, c.label);
        const prefillHeader = headers['x-prefiller-host-port'];
        if (c.label.startsWith('long')) assert.equal(prefillHeader, prefill.address, c.label);
        else assert.equal(prefillHeader, undefined, `${c.label}: no P/D decision, no prefill header`);
      }
      assert.equal(attacker.connections(), 0, 'the forged address was contacted');
    });

    test(`${gateway.name}: a client's kv_transfer_params reach no model server, short prompt or P/D`, async () => {
      // vLLM's NixlConnector would dial remote_host to fetch the KV blocks: the field is the P/D sidecar's to write.
      const kv = { do_remote_prefill: true, remote_host: attacker.address.split(':')[0], remote_port: 1 };
      for (const prompt of ['hi', `${gateway.name} kv: ${LONG_PROMPT}`]) {
        const before = counts();
        const reply = await send(`${gateway.url()}/v1/completions`, {
          body: { model: 'test-model', prompt, max_tokens: 1, kv_transfer_params: kv },
        });
        assert.equal(reply.status, 200, JSON.stringify(reply.json));
        const [received] = [prefill, ...decode].flatMap((f, i) => f.received.slice(before[i]));
        const body = JSON.parse(String(received!.body)) as Record<string, unknown>;
        assert.equal(body['kv_transfer_params'], undefined, JSON.stringify(body));
        assert.equal(body['prompt'], prompt);
      }
    });

    test(`${gateway.name}: requests the EPP answers itself reach no model server`, async () => {
      const forged = forgedHeaders(attacker.address);
      const before = counts();
      for (const [body, status] of [
        [{ model: 'nobody-serves-this', prompt: 'x' }, 404],
        [{ prompt: 'no model' }, 400],
      ] as const) {
        const reply = await send(`${gateway.url()}/v1/completions`, { body, headers: forged });
        assert.equal(reply.status, status, JSON.stringify(reply.json));
      }
      assert.deepEqual(counts(), before, 'a model server received a refused request');
      assert.equal(attacker.connections(), 0, 'the forged address was contacted');
    });
  }
});

describe('issue 18 reproduced: llmisvc up -f examples/prefill-decode.yaml with a forged x-prefiller-host-port', () => {
  let attacker: AttackerTarget;
  const stacks: { name: string; stack: LocalStack }[] = [];

  before(async () => {
    attacker = await startAttackerTarget();
    const file = join(REPO_ROOT, 'examples/prefill-decode.yaml');
    stacks.push({ name: 'builtin', stack: await startLocalStack({ port: 0, file, replicas: 1 }) });
    if (ENVOY_BIN)
      stacks.push({
        name: 'envoy',
        stack: await startLocalStack({ port: 0, file, replicas: 1, gateway: 'envoy', envoyBin: ENVOY_BIN }),
      });
  });

  after(async () => {
    for (const { stack } of stacks) await stack.stop();
    await attacker?.close();
  });

  test('the decode simulator sends the prompt to no address the client chose, through either gateway', async () => {
    const statuses: string[] = [];
    for (const { name, stack } of stacks) {
      for (const prompt of ['hi', 'Summarise this. '.repeat(200)]) {
        const reply = await send(`${stack.baseUrl}/v1/completions`, {
          body: { model: stack.model, prompt, max_tokens: 2 },
          headers: { 'x-prefiller-host-port': attacker.address },
        });
        statuses.push(`${name} ${reply.status}`);
      }
    }
    assert.equal(
      attacker.connections(),
      0,
      `a decode simulator connected to the forged prefill endpoint (answers: ${statuses.join(', ')})`,
    );
    assert.deepEqual(
      statuses,
      stacks.flatMap(({ name }) => [`${name} 200`, `${name} 200`]),
      'the forged header is dropped and the request served',
    );
  });
});
