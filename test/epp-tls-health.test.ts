/**
 * Integration: the EPP serving TLS (self-signed, as GIE EPPs do) behind a real Envoy that connects without
 * verifying it, and its gRPC health service.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { request } from 'undici';
import { startEpp, type RunningEpp } from '../src/epp/index.js';
import {
  createExtProcClient,
  envoyBootstrap,
  loadProtos,
  pickEndpoint,
  startEnvoy,
  startEnvoyWithBootstrap,
  type RunningEnvoy,
} from '../src/gateway/index.js';
import { waitFor } from '../src/process/index.js';
import { startModelServerFixture, type ModelServerFixture } from '../src/bench/index.js';

const ENVOY_BIN = process.env['ENVOY_BIN'];
let fixture: ModelServerFixture;
let epp: RunningEpp;
let envoy: RunningEnvoy | undefined;

before(async () => {
  fixture = await startModelServerFixture('tls');
  epp = await startEpp({
    host: '127.0.0.1',
    grpcPort: 0,
    grpcHealthPort: 0,
    metricsPort: 0,
    endpoints: [{ address: fixture.address }],
    tls: {},
    logger: pino({ level: 'silent' }),
  });
  if (ENVOY_BIN)
    envoy = await startEnvoy(ENVOY_BIN, { eppHost: '127.0.0.1', eppPort: epp.grpcPort, eppTls: true });
});

after(async () => {
  await envoy?.close();
  await epp?.close();
  await fixture?.close();
});

test('health: SERVING over grpc.health.v1', async () => {
  const { HealthClient } = loadProtos();
  const health = new HealthClient(
    `127.0.0.1:${epp.healthPort}`,
    grpc.credentials.createInsecure(),
  ) as unknown as grpc.Client & {
    Check(req: object, cb: (e: Error | null, r: { status: string }) => void): void;
  };
  const reply = await new Promise<{ status: string }>((resolve, reject) =>
    health.Check({ service: '' }, (e, r) => (e ? reject(e) : resolve(r))),
  );
  health.close();
  assert.equal(reply.status, 'SERVING');
});

test(
  'TLS: the ext_proc client and Envoy reach a self-signed EPP',
  { skip: ENVOY_BIN ? false : 'ENVOY_BIN not set' },
  async () => {
    const client = createExtProcClient(`127.0.0.1:${epp.grpcPort}`, { tls: true });
    const pick = await pickEndpoint(client, {
      path: '/v1/completions',
      body: Buffer.from('{"model":"m","prompt":"tls"}'),
    });
    assert.equal(pick.endpoint, fixture.address);
    pick.done();
    client.close();
    const plain = createExtProcClient(`127.0.0.1:${epp.grpcPort}`);
    await assert.rejects(pickEndpoint(plain, { path: '/v1/models' }, { timeoutMs: 2000 }));
    plain.close();
    const res = await request(`http://127.0.0.1:${envoy!.port}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', prompt: 'through TLS' }),
    });
    const json = (await res.body.json()) as { served_by: string };
    assert.equal(res.statusCode, 200);
    assert.equal(json.served_by, 'tls');
  },
);

test(
  "health on the ext_proc port itself, over its TLS: an Envoy that checks the EPP's cluster as GIE's standalone chart does finds it healthy",
  { skip: ENVOY_BIN ? false : 'ENVOY_BIN not set' },
  async () => {
    const bootstrap = envoyBootstrap({
      listenPort: 0,
      eppHost: '127.0.0.1',
      eppPort: epp.grpcPort,
      eppTls: true,
    });
    const clusters = (bootstrap['static_resources'] as { clusters: Record<string, unknown>[] }).clusters;
    const eppCluster = clusters.find((c) => c['name'] === 'epp')!;
    // GIE v1.5.0's standalone chart checks the ext_proc cluster's endpoint, on its one port, for this service.
    eppCluster['health_checks'] = [
      {
        timeout: '1s',
        interval: '0.2s',
        // Without traffic Envoy checks at this pace (60 s by default), not at `interval`.
        no_traffic_interval: '0.2s',
        unhealthy_threshold: 1,
        healthy_threshold: 1,
        grpc_health_check: { service_name: 'envoy.service.ext_proc.v3.ExternalProcessor' },
        tls_options: { alpn_protocols: ['h2'] },
      },
    ];
    const checking = await startEnvoyWithBootstrap(ENVOY_BIN!, bootstrap);
    try {
      const counters = await waitFor(
        async () => {
          const c = await checking.counters();
          return (c.get('cluster.epp.health_check.attempt') ?? 0) >= 3 ? c : undefined;
        },
        { what: "three health checks of the EPP's cluster", timeoutMs: 10_000, intervalMs: 100 },
      );
      assert.equal(counters.get('cluster.epp.health_check.failure') ?? 0, 0, 'no check failed');
      assert.ok((counters.get('cluster.epp.health_check.success') ?? 0) >= 3);
      const res = await request(`http://127.0.0.1:${checking.port}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', prompt: 'checked' }),
      });
      assert.equal(res.statusCode, 200);
      await res.body.text();
      const after = await checking.counters();
      assert.equal(
        after.get('cluster.epp.lb_healthy_panic') ?? 0,
        0,
        'routed to a healthy EPP, not in panic',
      );
    } finally {
      await checking.close();
    }
  },
);

type HealthStub = grpc.Client & {
  Check(req: object, cb: (e: Error | null, r: { status: string }) => void): void;
  Watch(req: object): grpc.ClientReadableStream<{ status: string }>;
};

function healthClient(): HealthStub {
  const { HealthClient } = loadProtos();
  return new HealthClient(
    `127.0.0.1:${epp.healthPort}`,
    grpc.credentials.createInsecure(),
  ) as unknown as HealthStub;
}

function check(health: HealthStub, service = ''): Promise<string> {
  return new Promise((resolve, reject) =>
    health.Check({ service }, (e, r) => (e ? reject(e) : resolve(r.status))),
  );
}

/** The first status a Watch sends, then cancels it (the server must take the cancel as the end of the watch). */
function firstWatched(health: HealthStub): Promise<string> {
  return new Promise((resolve, reject) => {
    const watch = health.Watch({ service: '' });
    watch.on('error', (error: grpc.ServiceError) => {
      if (error.code !== grpc.status.CANCELLED) reject(error);
    });
    watch.once('data', (reply: { status: string }) => {
      resolve(reply.status);
      watch.cancel();
    });
  });
}

test('health: a Watch is pushed each change of status, and only changes', async () => {
  const health = healthClient();
  const watch = health.Watch({ service: '' });
  const seen: string[] = [];
  const next = () =>
    new Promise<string>((resolve, reject) => {
      watch.once('data', (reply: { status: string }) => resolve(reply.status));
      watch.once('error', reject);
    });
  try {
    seen.push(await next());
    epp.datastore.setEndpoints([{ address: fixture.address }]); // same set: no change to push
    epp.datastore.setEndpoints([]);
    seen.push(await next());
    epp.datastore.setEndpoints([{ address: fixture.address }]);
    seen.push(await next());
    assert.deepEqual(seen, ['SERVING', 'NOT_SERVING', 'SERVING']);
  } finally {
    epp.datastore.setEndpoints([{ address: fixture.address }]);
    watch.cancel();
    health.close();
  }
});

test('health: NOT_SERVING without endpoints; Watch sends the current status', async () => {
  const health = healthClient();
  try {
    assert.equal(await firstWatched(health), 'SERVING');
    epp.datastore.setEndpoints([]);
    assert.equal(await check(health), 'NOT_SERVING');
    assert.equal(await firstWatched(health), 'NOT_SERVING');
  } finally {
    epp.datastore.setEndpoints([{ address: fixture.address }]);
    health.close();
  }
  const again = healthClient();
  assert.equal(await check(again), 'SERVING');
  again.close();
});

test('health: liveness stays SERVING while no endpoint is ready; readiness does not; unknown names fail', async () => {
  const health = healthClient();
  try {
    epp.datastore.setEndpoints([]);
    // What the rendered EPP Deployment's probes ask (deploy/presets/config-llm-scheduler.yaml), and the ext_proc
    // service name KServe's own preset probes liveness with.
    assert.equal(await check(health, 'liveness'), 'SERVING');
    assert.equal(await check(health, 'envoy.service.ext_proc.v3.ExternalProcessor'), 'SERVING');
    assert.equal(await check(health, 'readiness'), 'NOT_SERVING');
    assert.equal(await check(health, 'no-such-service'), 'SERVICE_UNKNOWN');
    epp.datastore.setEndpoints([{ address: fixture.address }]);
    assert.equal(await check(health, 'readiness'), 'SERVING');
  } finally {
    epp.datastore.setEndpoints([{ address: fixture.address }]);
    health.close();
  }
});
