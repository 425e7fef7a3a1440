/**
 * @module test/epp-metrics-data-source
 * A config's `metrics-data-source` (GIE's chart passes `scheme`, `path`, `insecureSkipVerify`) decides where the EPP
 * scrapes: a model server whose metrics are at another path is read there, on a real HTTP server on loopback. A
 * scheme the EPP does not scrape, or a path that is not a request target, is refused naming the field.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { loadEndpointPickerConfig, startEpp, type RunningEpp } from '../src/epp/index.js';
import { waitFor } from '../src/process/index.js';
import { problemsOf } from './harness/picker-config.js';

const quiet = pino({ level: 'silent' });

const EXPOSITION = [
  '# TYPE vllm:num_requests_waiting gauge',
  'vllm:num_requests_waiting{model_name="m"} 7',
  '# TYPE vllm:num_requests_running gauge',
  'vllm:num_requests_running{model_name="m"} 2',
  '# TYPE vllm:kv_cache_usage_perc gauge',
  'vllm:kv_cache_usage_perc{model_name="m"} 0.5',
  '',
].join('\n');

const config = (parameters: string) =>
  `apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: metrics-data-source
  parameters: ${parameters}
- type: queue-scorer
`;

describe('metrics-data-source', () => {
  let server: Server;
  const paths: string[] = [];
  let epp: RunningEpp;

  before(async () => {
    server = createServer((req, res) => {
      paths.push(req.url ?? '');
      if (req.url === '/custom/metrics') res.end(EXPOSITION);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    epp = await startEpp({
      host: '127.0.0.1',
      grpcPort: 0,
      grpcHealthPort: 0,
      metricsPort: 0,
      endpoints: [{ address: `127.0.0.1:${port}` }],
      refreshMetricsIntervalMs: 20,
      configText: config('{scheme: http, path: /custom/metrics, insecureSkipVerify: true}'),
      logger: quiet,
    });
  });

  after(async () => {
    await epp?.close();
    await new Promise((resolve) => server.close(resolve));
  });

  it('scrapes the path the config names, and nothing else', async () => {
    await waitFor(
      () => {
        const [endpoint] = epp.datastore.endpoints();
        return endpoint !== undefined && !endpoint.stale && endpoint.metrics.waitingQueueSize === 7;
      },
      { what: 'the endpoint to carry the scraped queue' },
    );
    assert.ok(paths.length > 0);
    assert.deepEqual([...new Set(paths)], ['/custom/metrics']);
  });

  it('refuses a scheme the EPP does not scrape and a path that is not a request target, naming the field', () => {
    const problems = (parameters: string) => problemsOf(config(parameters));
    assert.match(
      problems('{scheme: https}').find((p) => p.path === 'plugins[0].parameters.scheme')?.message ?? '',
      /over plain HTTP; use http/,
    );
    for (const path of ['"/m\\r\\nHost: evil"', 'metrics', '"/a b"', `"/${'x'.repeat(3000)}"`])
      assert.match(
        problems(`{path: ${path}}`).find((p) => p.path === 'plugins[0].parameters.path')?.message ?? '',
        /must be an absolute path/,
        path,
      );
    assert.equal(loadEndpointPickerConfig(config('{scheme: http, path: /metrics}')).plugins.size, 2);
  });
});
