/**
 * Regression: Envoy's ext_proc client ends every stream with RST_STREAM, and nghttp2 in Node ≤ 22.9 answers more than
 * 1000 resets on one connection (refilled at 33/s) with GOAWAY, refusing the streams Envoy had opened meanwhile: a
 * few HTTP 500s per thousand requests. Our bootstrap recycles EPP connections (`max_requests_per_connection`) before
 * that limit. Here 1,500 requests run through the real Envoy → EPP → fixture at concurrency 8, as fast as they go:
 * every one must be a 200, and Envoy's own counters must show no EPP connection closed under it and no failed
 * ext_proc stream.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { request } from 'undici';
import { startEpp, type RunningEpp } from '../src/epp/index.js';
import { startEnvoy, type RunningEnvoy } from '../src/gateway/index.js';
import { startModelServerFixture, type ModelServerFixture } from '../src/bench/index.js';

const ENVOY_BIN = process.env['ENVOY_BIN'];
const REQUESTS = 1500;
const CONCURRENCY = 8;

let fixture: ModelServerFixture;
let epp: RunningEpp;
let envoy: RunningEnvoy;

function stat(stats: Map<string, number>, name: string): number {
  const value = stats.get(name);
  assert.notEqual(value, undefined, `Envoy has no stat ${name}`);
  return value!;
}

function assertZero(stats: Map<string, number>, name: string, meaning: string): void {
  assert.equal(stat(stats, name), 0, `${name}: ${meaning}`);
}

before(async () => {
  if (!ENVOY_BIN) return;
  fixture = await startModelServerFixture('resets');
  epp = await startEpp({
    host: '127.0.0.1',
    grpcPort: 0,
    grpcHealthPort: 0,
    metricsPort: 0,
    endpoints: [{ address: fixture.address }],
    logger: pino({ level: 'silent' }),
  });
  envoy = await startEnvoy(ENVOY_BIN, { eppHost: '127.0.0.1', eppPort: epp.grpcPort });
});

after(async () => {
  await envoy?.close();
  await epp?.close();
  await fixture?.close();
});

test(
  `${REQUESTS} requests at concurrency ${CONCURRENCY} through Envoy and the EPP: all 200, no EPP connection lost`,
  { skip: ENVOY_BIN ? false : 'ENVOY_BIN not set (run through npm test)' },
  async () => {
    const statuses = new Map<number, number>();
    let next = 0;
    const body = JSON.stringify({ model: 'test-model', prompt: 'reset storm', max_tokens: 1 });
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < REQUESTS) {
          next++;
          const res = await request(`http://127.0.0.1:${envoy.port}/v1/completions`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body,
          });
          await res.body.dump();
          statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        }
      }),
    );
    assert.deepEqual([...statuses], [[200, REQUESTS]]);
    // The fixture keeps every request it served: all of them reached a model server.
    assert.equal(fixture.received.length, REQUESTS);

    const stats = await envoy.counters();
    assertZero(
      stats,
      'cluster.epp.upstream_cx_destroy_remote_with_active_rq',
      'the EPP closed a connection that carried streams',
    );
    // Not asserted: `upstream_cx_close_notify` (GOAWAYs from the EPP). Node answers the end of a connection Envoy
    // retires with a graceful GOAWAY of its own, which Envoy counts when its side is still open (seen under load);
    // harmless, unlike a GOAWAY with streams in flight, which the stat above and the statuses catch.
    assertZero(
      stats,
      'cluster.epp.upstream_rq_pending_failure_eject',
      'streams refused or lost with their connection',
    );
    assertZero(stats, 'http.gateway.ext_proc.streams_failed', 'ext_proc streams that failed');
    assert.equal(stat(stats, 'http.gateway.ext_proc.streams_started'), REQUESTS);
    // A GOAWAY with streams in flight also shows as a local destroy (Envoy flags the connection's protocol error).
    assertZero(
      stats,
      'cluster.epp.upstream_cx_destroy_with_active_rq',
      'an EPP connection was destroyed with streams in flight',
    );
  },
);
