/**
 * @module test/ipv6
 * IPv6 end to end, as on an IPv6-only cluster whose pod IPs have colons: simulators on `::1`, the EPP picking among
 * `[::1]:port` endpoints (scraping them, naming them in `x-gateway-destination-endpoint`), and in front a real Envoy —
 * whose ORIGINAL_DST cluster and override-host policy must parse the bracketed address the EPP writes — and the
 * builtin gateway, listening on `::1` and reaching the EPP at `[::1]:port`. A client's own destination header naming
 * another IPv6 address steers nothing.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { request } from 'undici';
import { startEpp, type RunningEpp } from '../src/epp/index.js';
import {
  startBuiltinGateway,
  startEnvoy,
  type RunningEnvoy,
  type RunningGateway,
} from '../src/gateway/index.js';
import { waitFor } from '../src/process/index.js';
import { startSimulator, type RunningSimulator } from '../src/sim/index.js';

const ENVOY_BIN = process.env['ENVOY_BIN'];

async function complete(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; pod: string }> {
  const res = await request(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'm', prompt: `ipv6 ${Math.random()}`, max_tokens: 2 }),
  });
  const text = await res.body.text();
  assert.equal(res.statusCode, 200, text);
  return { status: res.statusCode, pod: String(res.headers['x-inference-pod']) };
}

describe('IPv6 end to end: simulators on ::1, the EPP, Envoy and the builtin gateway', () => {
  const sims: RunningSimulator[] = [];
  let epp: RunningEpp;
  /** An IPv6 listener a forged destination header names: it counts what reaches it. */
  let decoy: Server;
  let decoyConnections = 0;

  before(async () => {
    for (const podName of ['six-a', 'six-b'])
      sims.push(await startSimulator({ host: '::1', port: 0, model: 'm', podName, timeScale: 0.001 }));
    epp = await startEpp({
      host: '::1',
      grpcPort: 0,
      grpcHealthPort: 0,
      metricsPort: 0,
      endpoints: sims.map((s) => ({ address: `[::1]:${s.port}` })),
      refreshMetricsIntervalMs: 25,
      logger: pino({ level: 'silent' }),
    });
    await waitFor(() => sims.every((s) => epp.datastore.get(`[::1]:${s.port}`)?.stale === false), {
      what: 'the EPP to scrape both simulators over IPv6',
      timeoutMs: 10_000,
    });
    decoy = createServer((socket) => {
      decoyConnections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => decoy.listen(0, '::1', resolve));
  });

  after(async () => {
    decoy?.close();
    await epp?.close();
    for (const s of sims) await s.close();
  });

  const decoyHeader = () => ({
    'x-gateway-destination-endpoint': `[::1]:${(decoy.address() as { port: number }).port}`,
  });
  const simPods = () => sims.map((s) => s.podName);

  for (const mode of ['ORIGINAL_DST', 'override-host policy'] as const) {
    it(
      `behind a real Envoy (${mode}): routed to a pod the EPP named by its bracketed address`,
      { skip: ENVOY_BIN ? false : 'ENVOY_BIN not set (run through npm test)' },
      async () => {
        let envoy: RunningEnvoy | undefined;
        try {
          envoy = await startEnvoy(ENVOY_BIN!, {
            eppHost: '::1',
            eppPort: epp.grpcPort,
            ...(mode === 'override-host policy'
              ? { poolEndpoints: sims.map((s) => ({ host: '::1', port: s.port })) }
              : {}),
          });
          const url = `http://127.0.0.1:${envoy.port}`;
          const seen = new Set<string>();
          for (let i = 0; i < 6; i++) seen.add((await complete(url)).pod);
          assert.ok(
            [...seen].every((p) => simPods().includes(p)),
            [...seen].join(', '),
          );
          await complete(url, decoyHeader());
          assert.equal(decoyConnections, 0, 'a client-named IPv6 destination was reached');
        } finally {
          await envoy?.close();
        }
      },
    );
  }

  it('behind the builtin gateway listening on ::1, asking the EPP at [::1]:port', async () => {
    let gateway: RunningGateway | undefined;
    try {
      gateway = await startBuiltinGateway({
        host: '::1',
        port: 0,
        routes: [{ prefix: '/', backend: 'pool' }],
        eppAddress: `[::1]:${epp.grpcPort}`,
        serviceEndpoints: sims.map((s) => `[::1]:${s.port}`),
      });
      assert.match(gateway.url, /^http:\/\/\[::1\]:\d+$/);
      const { pod } = await complete(gateway.url, decoyHeader());
      assert.ok(simPods().includes(pod), pod);
      assert.equal(decoyConnections, 0);
      // A Host that names ::1 is a loopback name: answered (DNS-rebinding protection lets it through).
      const res = await request(`${gateway.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', host: `[::1]:${gateway.port}` },
        body: JSON.stringify({ model: 'm', prompt: 'x', max_tokens: 1 }),
      });
      assert.equal(res.statusCode, 200);
      await res.body.text();
    } finally {
      await gateway?.close();
    }
  });
});
