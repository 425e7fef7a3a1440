import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LLMInferenceService } from '../api/index.js';
import { DEFAULT_API_VERSIONS, DEFAULT_RENDER_OPTIONS, renderService } from './index.js';

type Loose = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function render(spec: LLMInferenceService['spec']) {
  const service: LLMInferenceService = {
    apiVersion: 'serving.kserve.io/v1alpha2',
    kind: 'LLMInferenceService',
    metadata: { name: 'svc', namespace: 'ns' },
    spec: { model: { uri: 'hf://org/model' }, ...spec },
  };
  return renderService({
    service,
    configs: [],
    apiVersions: DEFAULT_API_VERSIONS,
    options: DEFAULT_RENDER_OPTIONS,
  }).children as Loose[];
}

const main = (pod: Loose) => pod['containers'].find((c: Loose) => c.name === 'main');
const env = (pod: Loose) =>
  Object.fromEntries(
    (main(pod).env ?? [])
      .filter((e: Loose) => e.name.startsWith('OTEL_'))
      .map((e: Loose) => [e.name, e.value]),
  );

describe('tracing', () => {
  it('`{}` means the defaults, on the model server and the scheduler, each with its own service name', () => {
    const children = render({ tracing: {}, router: { scheduler: {} } });
    const [server, scheduler] = ['svc-kserve', 'svc-kserve-router-scheduler'].map((name) =>
      children.find((c) => c['kind'] === 'Deployment' && c['metadata'].name === name)!,
    );
    const defaults = {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector:4317',
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.05',
    };
    assert.deepEqual(env(server!['spec'].template.spec), { OTEL_SERVICE_NAME: 'svc-kserve', ...defaults });
    assert.deepEqual(env(scheduler!['spec'].template.spec), {
      OTEL_SERVICE_NAME: 'svc-kserve-router-scheduler',
      ...defaults,
    });
    const args: string[] = main(server!['spec'].template.spec).args;
    assert.deepEqual(
      args.slice(args.indexOf('--otlp-traces-endpoint'), args.indexOf('--otlp-traces-endpoint') + 2),
      ['--otlp-traces-endpoint', 'http://otel-collector:4317'],
    );
    assert.equal(main(scheduler!['spec'].template.spec).args.includes('--otlp-traces-endpoint'), false);
  });

  it('names LeaderWorkerSet workers apart from their leader and keeps a variable the template sets', () => {
    const children = render({
      tracing: { sampler: 'always_on' },
      worker: { containers: [{ name: 'main', env: [{ name: 'OTEL_SERVICE_NAME', value: 'mine' }] }] },
      parallelism: { data: 4, dataLocal: 2 },
    });
    const lws = children.find((c) => c['kind'] === 'LeaderWorkerSet')!['spec'].leaderWorkerTemplate;
    assert.equal(env(lws.leaderTemplate.spec).OTEL_SERVICE_NAME, 'svc-kserve-mn');
    assert.equal(env(lws.workerTemplate.spec).OTEL_SERVICE_NAME, 'mine');
    assert.equal(env(lws.workerTemplate.spec).OTEL_TRACES_SAMPLER, 'always_on');
  });

  it('passes no OTLP flag to vLLM when the exporter is not otlp, and nothing without tracing', () => {
    const none = render({ tracing: { exporter: 'none' } }).find((c) => c['kind'] === 'Deployment')!;
    assert.equal(main(none['spec'].template.spec).args.includes('--otlp-traces-endpoint'), false);
    assert.equal(env(none['spec'].template.spec).OTEL_TRACES_EXPORTER, 'none');
    const plain = render({}).find((c) => c['kind'] === 'Deployment')!;
    assert.deepEqual(env(plain['spec'].template.spec), {});
  });
});
