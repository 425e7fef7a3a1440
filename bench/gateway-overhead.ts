/**
 * @module bench/gateway-overhead
 * `npm run bench:gateway-overhead`: what the builtin gateway of `llmisvc up` adds to a request on loopback. The
 * upstream is a trivial HTTP server in its own process answering a small OpenAI-shaped JSON at once, so every
 * microsecond measured is the path in front of it: (1) direct to the upstream, (2) the builtin gateway as a plain
 * proxy (round robin, no EPP), (3) the builtin gateway asking the Endpoint Picker over ext_proc (gRPC) first, (4) the
 * same with the EPP in the gateway's process, its request sessions called directly, as `llmisvc up` runs them.
 * Sequential requests (concurrency 1) give the added latency; concurrency 16 gives throughput. The loop below is
 * closed (each worker sends its next request when the last one ends), unlike src/bench `runLoad`'s open loop: the
 * question is what one request pays for the hop, not how a queue grows under a rate. Writes
 * bench/out/gateway-overhead/report.md (raw; curated summary in bench/results/gateway-overhead/README.md) with the
 * machine, date, load average and command.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { Pool } from 'undici';
import { loadAverage, machineDescription, summarize } from '../src/bench/index.js';
import { startAnnouncing } from '../src/process/index.js';
import { startEpp } from '../src/epp/index.js';
import { inProcessPicker, startBuiltinGateway, type GatewayRoute } from '../src/gateway/index.js';
import { rawOutputDir } from './output.js';

const out = rawOutputDir('gateway-overhead');
const requests = Number(process.env['REQUESTS'] ?? 3000);
const warmup = 300;

const UPSTREAM = `
const http = require('node:http');
const body = JSON.stringify({ id: 'x', object: 'chat.completion', model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }] });
const server = http.createServer((req, res) => { req.resume(); req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-inference-pod': 'upstream-0' }); res.end(body); }); });
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
`;

const payload = JSON.stringify({
  model: 'm',
  messages: [{ role: 'user', content: 'Hello there, how are you?' }],
});

async function run(
  origin: string,
  path: string,
  concurrency: number,
): Promise<{ p50: number; p99: number; rps: number }> {
  const pool = new Pool(origin, { connections: concurrency });
  const one = async () => {
    const t = performance.now();
    const res = await pool.request({
      method: 'POST',
      path,
      headers: { 'content-type': 'application/json' },
      body: payload,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}: ${text}`);
    return performance.now() - t;
  };
  for (let i = 0; i < warmup; i++) await one();
  const latencies: number[] = [];
  let issued = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (issued < requests) {
        issued += 1;
        latencies.push(await one());
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  await pool.close();
  const { p50, p99 } = summarize(latencies);
  return { p50, p99, rps: latencies.length / seconds };
}

// Tracked by process/: the upstream does not outlive a failed run.
const upstream = await startAnnouncing({
  command: process.execPath,
  args: ['-e', UPSTREAM],
  announced: (out) => (out.includes('\n') ? Number(out.trim()) : undefined),
});
const upstreamPort = upstream.value;
const address = `127.0.0.1:${upstreamPort}`;
const routes: GatewayRoute[] = [
  { prefix: '/ns/m/v1/chat/completions', rewrite: '/v1/chat/completions', backend: 'pool' },
];
const epp = await startEpp({
  grpcPort: 0,
  grpcHealthPort: 0,
  metricsPort: 0,
  host: '127.0.0.1',
  endpoints: [{ address, name: 'upstream-0' }],
  logger: pino({ level: 'silent' }),
});
const plain = await startBuiltinGateway({ port: 0, routes, serviceEndpoints: [address] });
const withEpp = await startBuiltinGateway({
  port: 0,
  routes,
  serviceEndpoints: [address],
  eppAddress: `127.0.0.1:${epp.grpcPort}`,
});
// As `llmisvc up` runs it: the EPP in this process, no gRPC hop and no ext_proc messages.
const withEppInProcess = await startBuiltinGateway({
  port: 0,
  routes,
  serviceEndpoints: [address],
  eppPicker: inProcessPicker(epp.openSession),
});

const rows: string[] = [];
const results: Record<string, Record<number, { p50: number; p99: number; rps: number }>> = {};
for (const [name, origin, path] of [
  ['direct to the upstream', `http://${address}`, '/v1/chat/completions'],
  ['builtin gateway, plain proxy', plain.url, '/ns/m/v1/chat/completions'],
  ['builtin gateway + EPP (ext_proc over gRPC)', withEpp.url, '/ns/m/v1/chat/completions'],
  ['builtin gateway + EPP in process (as `up`)', withEppInProcess.url, '/ns/m/v1/chat/completions'],
] as const) {
  results[name] = {};
  for (const concurrency of [1, 16]) {
    const r = await run(origin, path, concurrency);
    results[name][concurrency] = r;
    console.log(
      `${name} c=${concurrency}: p50 ${r.p50.toFixed(3)} ms, p99 ${r.p99.toFixed(3)} ms, ${r.rps.toFixed(0)} req/s`,
    );
  }
}
const direct = results['direct to the upstream']!;
for (const [name, byC] of Object.entries(results)) {
  const c1 = byC[1]!;
  const c16 = byC[16]!;
  rows.push(
    `| ${name} | ${c1.p50.toFixed(3)} | ${c1.p99.toFixed(3)} | ${(c1.p50 - direct[1]!.p50).toFixed(3)} | ${c16.rps.toFixed(0)} | ${c16.p50.toFixed(2)} |`,
  );
}
await plain.close();
await withEpp.close();
await withEppInProcess.close();
await epp.close();
await upstream.stop();

const report = [
  '# Builtin gateway overhead on loopback',
  '',
  `- Machine: ${machineDescription()}`,
  `- Date: ${new Date().toISOString()}`,
  `- Load average at the end (other work on the machine): ${loadAverage()}`,
  `- Command: \`npm run bench:gateway-overhead\` (REQUESTS=${requests} per row, ${warmup} warm-up requests)`,
  '- Upstream: a trivial Node HTTP server in its own process answering a small chat-completion JSON at once.',
  '- The gateway, the EPP and the load generator share one Node process (as in `llmisvc up`, where the gateway and',
  '  the EPP share the `up` process).',
  '',
  '| Path | p50 ms (c=1) | p99 ms (c=1) | added p50 ms (c=1) | req/s (c=16) | p50 ms (c=16) |',
  '| --- | ---: | ---: | ---: | ---: | ---: |',
  ...rows,
  '',
  '"Added" is the p50 latency over the direct path at concurrency 1: what one request pays for the hop.',
  '',
].join('\n');
await mkdir(out, { recursive: true });
await writeFile(join(out, 'report.md'), report);
console.log(report);
