/**
 * Integration: `llmisvc epp --transport node` (node:http2 under the gRPC servers) behind a real Envoy, run by a
 * Node 22 from the npm registry (NODE22_BIN, provisioned), as the existing transport is in epp-envoy.test.ts; and the
 * clear refusal on a Node older than 22.10 (this machine's Node 20).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { request } from 'undici';
import * as grpc from '@grpc/grpc-js';
import { loadProtos, startEnvoy, type RunningEnvoy } from '../src/gateway/index.js';
import { startModelServerFixture, type ModelServerFixture } from '../src/bench/index.js';
import { startAnnouncing, type AnnouncingProcess } from '../src/process/index.js';
import { nodeTransportSupported } from '../src/transport/index.js';
import { CLI } from './harness/repo.js';

const ENVOY_BIN = process.env['ENVOY_BIN'];
const NODE22_BIN = process.env['NODE22_BIN'];

test('--transport node on a Node older than 22.10 is refused before anything starts, saying why', () => {
  assert.equal(nodeTransportSupported('20.19.0'), false);
  assert.equal(nodeTransportSupported('22.9.0'), false);
  assert.equal(nodeTransportSupported('22.10.0'), true);
  assert.equal(nodeTransportSupported('24.1.0'), true);
  const run = spawnSync(
    process.execPath,
    [
      CLI,
      'epp',
      '--transport',
      'node',
      '--endpoints',
      '127.0.0.1:1',
      '--grpc-port',
      '0',
      '--metrics-port',
      '0',
    ],
    { encoding: 'utf8', timeout: 20_000 },
  );
  if (nodeTransportSupported(process.versions.node)) return; // a newer runner: nothing to refuse here
  assert.notEqual(run.status, 0);
  assert.match(run.stderr, /--transport node needs Node >= 22\.10\.0; this is Node 20/);
  assert.match(run.stderr, /--transport ours/);
  const bad = spawnSync(
    process.execPath,
    [CLI, 'epp', '--transport', 'nghttp2', '--endpoints', '127.0.0.1:1'],
    {
      encoding: 'utf8',
      timeout: 20_000,
    },
  );
  assert.match(bad.stderr, /--transport nghttp2: expected ours or node/);
});

describe(
  'EPP on node:http2 (--transport node, Node 22) behind a real Envoy',
  { skip: ENVOY_BIN && NODE22_BIN ? false : 'ENVOY_BIN or NODE22_BIN not set (run through npm test)' },
  () => {
    const fixtures: ModelServerFixture[] = [];
    let epp: AnnouncingProcess<{ grpcPort: number; healthPort: number }>;
    let envoy: RunningEnvoy;

    before(async () => {
      for (const name of ['a', 'b']) fixtures.push(await startModelServerFixture(name));
      epp = await startAnnouncing({
        command: NODE22_BIN!,
        args: [
          CLI,
          'epp',
          '--transport',
          'node',
          '--endpoints',
          fixtures.map((f) => f.address).join(','),
          '--host',
          '127.0.0.1',
          '--grpc-port',
          '0',
          '--grpc-health-port',
          '0',
          '--metrics-port',
          '0',
          '--refresh-metrics-interval',
          '25ms',
        ],
        announced: (out) => {
          const line = out.split('\n').find((l) => l.includes('endpoint picker listening'));
          return line ? (JSON.parse(line) as { grpcPort: number; healthPort: number }) : undefined;
        },
      });
      envoy = await startEnvoy(ENVOY_BIN!, { eppHost: '127.0.0.1', eppPort: epp.value.grpcPort });
    });

    after(async () => {
      await envoy?.close();
      await epp?.stop();
      for (const f of fixtures) await f.close();
    });

    test('routes through Envoy past the 1,000 stream resets that end a connection on Node < 22.10', async () => {
      // Envoy resets every ext_proc stream it is done with: 1,500 requests, 8 at a time (far above 33 a second),
      // all on Envoy's one connection to the EPP.
      const served = new Map<string, number>();
      let next = 0;
      const worker = async () => {
        while (next < 1500) {
          const i = next++;
          const res = await request(`http://127.0.0.1:${envoy.port}/v1/completions`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              model: 'test-model',
              prompt: `request ${i} ${'x'.repeat(200)}`,
              max_tokens: 4,
            }),
          });
          const text = await res.body.text();
          assert.equal(res.statusCode, 200, `request ${i}: ${text}`);
          const by = (JSON.parse(text) as { served_by: string }).served_by;
          served.set(by, (served.get(by) ?? 0) + 1);
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
      assert.equal(
        [...served.values()].reduce((a, b) => a + b, 0),
        1500,
      );
      assert.deepEqual([...served.keys()].sort(), ['a', 'b']);
      // The EPP's answers: a request it refuses (bad JSON) comes back as its immediate 400.
      const bad = await request(`http://127.0.0.1:${envoy.port}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{',
      });
      await bad.body.text();
      assert.equal(bad.statusCode, 400);
    });

    test('gRPC health on node:http2; a call past its deadline ends with DEADLINE_EXCEEDED', async () => {
      const { HealthClient, ExtProcClient } = loadProtos();
      const health = new HealthClient(
        `127.0.0.1:${epp.value.healthPort}`,
        grpc.credentials.createInsecure(),
      ) as unknown as grpc.Client & {
        Check(req: object, cb: (e: Error | null, r: { status: string }) => void): void;
      };
      const reply = await new Promise<{ status: string }>((resolve, reject) =>
        health.Check({ service: 'readiness' }, (e, r) => (e ? reject(e) : resolve(r))),
      );
      health.close();
      assert.equal(reply.status, 'SERVING');
      // A stream that never sends its body ends with DEADLINE_EXCEEDED at the client's deadline.
      const client = new ExtProcClient(`127.0.0.1:${epp.value.grpcPort}`, grpc.credentials.createInsecure());
      const stream = (
        client as unknown as { Process(o: grpc.CallOptions): grpc.ClientDuplexStream<object, object> }
      ).Process({ deadline: Date.now() + 300 });
      const status = await new Promise<number>((resolve) => {
        stream.on('data', () => undefined);
        stream.on('error', (e: grpc.ServiceError) => resolve(e.code));
        stream.write({
          request_headers: {
            headers: { headers: [{ key: ':path', raw_value: Buffer.from('/v1/completions') }] },
            end_of_stream: false,
          },
        });
      });
      client.close();
      assert.equal(status, grpc.status.DEADLINE_EXCEEDED);
    });
  },
);
