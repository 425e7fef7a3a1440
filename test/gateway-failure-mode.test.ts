// An Endpoint Picker that answers late or not at all, behind both gateways: the gateway's timeout ends the wait, and
// the InferencePool's failureMode decides what the client gets — an error (FailClose) or the request served by a
// pool member all the same (FailOpen). With fail-open on, a client's own destination header still reaches nothing.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import {
  startBodyRouter,
  startBuiltinGateway,
  type RunningBodyRouter,
  type RunningGateway,
  startEnvoy,
  type RunningEnvoy,
} from '../src/gateway/index.js';
import { startModelServerFixture, type ModelServerFixture } from '../src/bench/index.js';
import { startAttackerTarget, type AttackerTarget } from './harness/attacker.js';

const ENVOY_BIN = process.env['ENVOY_BIN'];
const TIMEOUT_MS = 300;

/** A TCP server that accepts connections and never says a word: an EPP that hangs. */
async function hangingServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets: Socket[] = [];
  const server = createServer((socket) => sockets.push(socket.on('error', () => undefined)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function complete(port: number, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'test-model', prompt: 'hello' }),
  });
}

let fixtures: ModelServerFixture[] = [];
let hangingEpp: Awaited<ReturnType<typeof hangingServer>>;
let attacker: AttackerTarget;

before(async () => {
  fixtures = [await startModelServerFixture('a'), await startModelServerFixture('b')];
  hangingEpp = await hangingServer();
  attacker = await startAttackerTarget();
});
after(async () => {
  for (const f of fixtures) await f.close();
  await hangingEpp.close();
  await attacker.close();
});

describe('builtin gateway, EPP hanging', () => {
  const start = (failureMode: 'FailOpen' | 'FailClose') =>
    startBuiltinGateway({
      port: 0,
      routes: [{ prefix: '/', backend: 'pool' }],
      eppAddress: `127.0.0.1:${hangingEpp.port}`,
      serviceEndpoints: fixtures.map((f) => f.address),
      eppTimeoutMs: TIMEOUT_MS,
      failureMode,
    });

  it('FailClose: 503 once the EPP timeout passes', async () => {
    const gateway: RunningGateway = await start('FailClose');
    try {
      const response = await complete(gateway.port);
      assert.equal(response.status, 503);
      assert.match(
        ((await response.json()) as { error: { message: string } }).error.message,
        /endpoint picker/,
      );
    } finally {
      await gateway.close();
    }
  });

  it('FailOpen: served by a pool member, round robin', async () => {
    const gateway = await start('FailOpen');
    try {
      const servedBy = [];
      for (let i = 0; i < 4; i++) {
        const response = await complete(gateway.port, {
          'x-gateway-destination-endpoint': attacker.address,
        });
        assert.equal(response.status, 200);
        servedBy.push(((await response.json()) as { served_by: string }).served_by);
      }
      assert.deepEqual(servedBy.sort(), ['a', 'a', 'b', 'b']);
      assert.equal(attacker.connections(), 0, 'a client-chosen destination is never dialled');
    } finally {
      await gateway.close();
    }
  });
});

describe(
  'Envoy, EPP hanging',
  { skip: ENVOY_BIN ? false : 'ENVOY_BIN not set (run through npm test)' },
  () => {
    const start = (failureMode: 'FailOpen' | 'FailClose'): Promise<RunningEnvoy> =>
      startEnvoy(ENVOY_BIN!, {
        eppHost: '127.0.0.1',
        eppPort: hangingEpp.port,
        messageTimeoutMs: TIMEOUT_MS,
        poolEndpoints: fixtures.map((f) => {
          const [host, port] = f.address.split(':');
          return { host: host!, port: Number(port) };
        }),
        failureMode,
      });

    it('FailClose: an error, not a hang, once message_timeout passes', async () => {
      const envoy = await start('FailClose');
      const served = () => fixtures.reduce((n, f) => n + f.received.length, 0);
      const before = served();
      try {
        const response = await complete(envoy.port);
        assert.ok(response.status >= 500, `status ${response.status}`);
        assert.equal(served(), before, 'nothing reached a model server');
      } finally {
        await envoy.close();
      }
    });

    it("FailOpen: served by a pool member; a client's destination header reaches nothing", async () => {
      const envoy = await start('FailOpen');
      try {
        const servedBy: string[] = [];
        for (let i = 0; i < 4; i++) {
          const response = await complete(envoy.port, {
            'x-gateway-destination-endpoint': attacker.address,
          });
          assert.equal(response.status, 200, await response.clone().text());
          servedBy.push(((await response.json()) as { served_by: string }).served_by);
        }
        assert.deepEqual([...new Set(servedBy)].sort(), ['a', 'b'], 'round robin over the pool');
        assert.equal(attacker.connections(), 0, 'a client-chosen destination is never dialled');
      } finally {
        await envoy.close();
      }
    });
  },
);

// Several services behind one Envoy (`llmisvc up` with a routing group): each service's failureMode travels in its
// routes' per-route EPP override, so one member fails open while another fails closed — also on a weighted rule.
describe(
  'Envoy, several services, every EPP hanging',
  { skip: ENVOY_BIN ? false : 'ENVOY_BIN not set (run through npm test)' },
  () => {
    let envoy: RunningEnvoy;
    let bodyRouter: RunningBodyRouter;
    const post = (port: number, path: string) =>
      fetch(`http://127.0.0.1:${port}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'test-model', prompt: 'hello' }),
      });
    before(async () => {
      bodyRouter = await startBodyRouter('127.0.0.1', 0);
      const pool = (f: ModelServerFixture) => {
        const [host, port] = f.address.split(':');
        return [{ host: host!, port: Number(port) }];
      };
      envoy = await startEnvoy(ENVOY_BIN!, {
        eppHost: '127.0.0.1',
        eppPort: hangingEpp.port,
        messageTimeoutMs: TIMEOUT_MS,
        bodyRouter: { host: '127.0.0.1', port: bodyRouter.port },
        services: [
          {
            name: 'closed',
            eppHost: '127.0.0.1',
            eppPort: hangingEpp.port,
            poolEndpoints: pool(fixtures[0]!),
          },
          {
            name: 'open',
            eppHost: '127.0.0.1',
            eppPort: hangingEpp.port,
            poolEndpoints: pool(fixtures[1]!),
            failureMode: 'FailOpen',
          },
        ],
        routes: [
          { prefix: '/closed', rewrite: '/', target: 'closed' },
          { prefix: '/open', rewrite: '/', target: 'open' },
          {
            prefix: '/v1/completions',
            headers: [{ name: 'X-Gateway-Model-Name', value: 'test-model' }],
            split: [
              { target: 'closed', weight: 0 },
              { target: 'open', weight: 1 },
            ],
          },
        ],
      });
    });
    after(async () => {
      await envoy?.close();
      await bodyRouter?.close();
    });

    it("each service's failure mode: FailOpen served by its own pool, FailClose an error", async () => {
      const served = () => fixtures[0]!.received.length;
      const before = served();
      const closed = await post(envoy.port, '/closed/v1/completions');
      assert.ok(closed.status >= 500, `status ${closed.status}`);
      await closed.arrayBuffer();
      assert.equal(served(), before, "nothing reached the fail-closed service's model server");
      for (const path of ['/open/v1/completions', '/v1/completions']) {
        const open = await post(envoy.port, path);
        assert.equal(open.status, 200, path);
        assert.equal(((await open.json()) as { served_by: string }).served_by, 'b', path);
      }
    });
  },
);
