import { request } from 'undici';
import { pino } from 'pino';
import { startEpp } from '../dist/src/epp/index.js';
import { startBuiltinGateway, inProcessExtProcChannel } from '../dist/src/gateway/index.js';
const sim = process.argv[2] ?? '127.0.0.1:18601';
const epp = await startEpp({ host: '127.0.0.1', grpcPort: 0, grpcHealthPort: 0, metricsPort: 0, endpoints: [{ address: sim }], logger: pino({ level: 'silent' }) });
const gws = {
  rr: await startBuiltinGateway({ port: 0, routes: [{ prefix: '/', backend: 'pool' }], serviceEndpoints: [sim] }),
  inproc: await startBuiltinGateway({ port: 0, routes: [{ prefix: '/', backend: 'pool' }], serviceEndpoints: [sim], eppChannel: inProcessExtProcChannel(epp.processStream) }),
  grpc: await startBuiltinGateway({ port: 0, routes: [{ prefix: '/', backend: 'pool' }], serviceEndpoints: [sim], eppAddress: `127.0.0.1:${epp.grpcPort}` }),
};
const body = JSON.stringify({ model: 'Qwen/Qwen2.5-0.5B-Instruct', prompt: 'x '.repeat(1000), max_tokens: 4, stream: true });
async function ttft(base) {
  const t0 = performance.now();
  const res = await request(`${base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  let first = 0;
  for await (const chunk of res.body) { if (!first && chunk.toString().includes('data:')) first = performance.now() - t0; }
  return first;
}
const urls = { direct: `http://${sim}`, rr: gws.rr.url, inproc: gws.inproc.url, grpc: gws.grpc.url };
const samples = Object.fromEntries(Object.keys(urls).map((k) => [k, []]));
for (let i = 0; i < 20; i++) for (const u of Object.values(urls)) await ttft(u);
const N = Number(process.argv[3] ?? 150);
for (let i = 0; i < N; i++) for (const [k, u] of Object.entries(urls)) samples[k].push(await ttft(u));
const q = (a, p) => [...a].sort((x, y) => x - y)[Math.floor(p * (a.length - 1))];
for (const [k, a] of Object.entries(samples)) console.log(k.padEnd(8), 'p50', q(a, 0.5).toFixed(2), 'p90', q(a, 0.9).toFixed(2), 'p99', q(a, 0.99).toFixed(2), 'added p50', (q(a, 0.5) - q(samples.direct, 0.5)).toFixed(2));
for (const g of Object.values(gws)) await g.close();
await epp.close();
