/**
 * The controller's reconcile against an in-memory API and a fake engine: what it applies, prunes and reports for
 * what the engine renders, in milliseconds. (test/controller-*.test.ts run the real engine on a real API server.)
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { MemoryKubeApi } from '../../test/harness/memory-kube-api.js';
import { LlmisvcError } from '../errors/index.js';
import { CORE_RESOURCES, KubeClient, type KubeObject, type ResourceRef } from '../kube/index.js';
import { waitFor } from '../process/index.js';
import { PART_OF_LABEL, PART_OF_VALUE } from './children.js';
import type { Condition } from './conditions.js';
import {
  CONFIG_RESOURCE,
  Controller,
  SERVICE_RESOURCE,
  STOP_ANNOTATION,
  type RenderOutcome,
  type ServiceEngine,
} from './controller.js';

const DEPLOYMENTS: ResourceRef = {
  group: 'apps',
  version: 'v1',
  kind: 'Deployment',
  plural: 'deployments',
  namespaced: true,
};
const RESOURCES: ResourceRef[] = [
  SERVICE_RESOURCE,
  CONFIG_RESOURCE,
  DEPLOYMENTS,
  CORE_RESOURCES.event,
  CORE_RESOURCES.crd,
  { group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true },
];

type Service = KubeObject & { status?: { observedGeneration?: number; conditions?: Condition[] } };

const running: Controller[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.stop()));
});

/** A Deployment child of `service`, as render/ would label and own it. */
function deployment(service: KubeObject, name: string, replicas = 1): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name,
      namespace: service.metadata.namespace,
      labels: { [PART_OF_LABEL]: PART_OF_VALUE },
      ownerReferences: [
        {
          apiVersion: service.apiVersion,
          kind: 'LLMInferenceService',
          name: service.metadata.name,
          uid: service.metadata.uid!,
          controller: true,
        },
      ],
    },
    spec: { replicas },
  };
}

/** An API holding service ns/a, a controller over it with the given engine (no workers: the test reconciles). */
async function setUp(render: ServiceEngine['render']) {
  const api = new MemoryKubeApi(RESOURCES);
  const service = api.put({
    apiVersion: 'serving.kserve.io/v1alpha2',
    kind: 'LLMInferenceService',
    metadata: { name: 'a', namespace: 'ns' },
    spec: { model: { uri: 'hf://org/model' } },
  }) as Service;
  api.put({
    apiVersion: 'serving.kserve.io/v1alpha2',
    kind: 'LLMInferenceServiceConfig',
    metadata: { name: 'preset', namespace: 'sys' },
    spec: {},
  });
  const renders: { service: KubeObject; configs: string[] }[] = [];
  const controller = new Controller({
    client: KubeClient.forTransport(api.transport),
    engine: {
      render(s, configs, apiVersions) {
        renders.push({
          service: s,
          configs: configs.map((c) => `${c.metadata.namespace}/${c.metadata.name}`),
        });
        assert.ok(apiVersions.has('apps/v1'));
        return render(s, configs, apiVersions);
      },
    },
    logger: pino({ level: 'silent' }),
    namespace: 'ns',
    systemNamespace: 'sys',
    workers: 0,
    resyncMs: 0,
  });
  running.push(controller);
  await controller.start();
  /** The controller's cached copy of ns/a. */
  const cached = (): Service | undefined => controller.informers()[0]!.get('ns', 'a');
  return { api, service, controller, renders, cached };
}

const outcome = (children: KubeObject[]): RenderOutcome => ({ children, shared: [], missing: [] });
const condition = (s: Service | undefined, type: string) =>
  s?.status?.conditions?.find((c) => c.type === type);

test('a pass applies what the engine rendered, writes the status and an Event; the next pass writes nothing', async () => {
  const { api, controller, renders, cached } = await setUp((s) => outcome([deployment(s, 'a-kserve')]));
  await controller.reconcile('ns/a');

  assert.deepEqual(
    renders[0]!.configs,
    ['sys/preset'],
    'the presets of the system namespace reach the engine',
  );
  assert.deepEqual(
    api.writes.map((w) => `${w.method} ${w.target.startsWith('Event') ? 'Event' : w.target}`),
    ['PATCH Deployment ns/a-kserve', 'POST Event', 'PATCH LLMInferenceService ns/a/status'],
  );
  assert.equal(api.get(DEPLOYMENTS, 'ns', 'a-kserve')?.['spec']?.['replicas' as never], 1);
  const created = api.writes.find((w) => w.method === 'POST')!.body as KubeObject & {
    reason?: string;
    message?: string;
  };
  assert.equal(created.reason, 'Created');
  assert.match(created.message ?? '', /Deployment a-kserve/);
  const status = api.get(SERVICE_RESOURCE, 'ns', 'a') as Service;
  assert.equal(status.status?.observedGeneration, 1);
  assert.equal(condition(status, 'PresetsCombined')?.status, 'True');

  // Level-triggered and idempotent: once the caches hold what was written, a pass changes nothing.
  await waitFor(() => cached()?.status?.observedGeneration === 1, { what: 'the status in the cache' });
  await waitFor(() => controller.informers().some((i) => i.get('ns', 'a-kserve')), {
    what: 'the child in the cache',
  });
  const before = api.writes.length;
  await controller.reconcile('ns/a');
  assert.deepEqual(api.writes.slice(before), [], 'a steady-state pass writes nothing');
});

test('a render error becomes PresetsCombined False with its reason; nothing is applied and nothing is retried', async () => {
  const { api, controller } = await setUp(() => {
    throw new LlmisvcError('LLMISVC_ERR_TEMPLATE', 'template {{ .Bad }} in preset sys/preset');
  });
  await controller.reconcile('ns/a'); // resolves: retrying cannot fix bad input
  assert.ok(!api.writes.some((w) => w.target.startsWith('Deployment')));
  const presets = condition(api.get(SERVICE_RESOURCE, 'ns', 'a'), 'PresetsCombined');
  assert.equal(presets?.status, 'False');
  assert.equal(presets?.reason, 'InvalidTemplate');
  assert.match(presets?.message ?? '', /template \{\{ \.Bad \}\}/);
});

test('a child the API refuses does not stop the others: the pass applies them, reports it, and throws to retry', async () => {
  const { api, controller } = await setUp((s) =>
    outcome([deployment(s, 'a-refused'), deployment(s, 'a-fine')]),
  );
  api.refuse = (w) =>
    w.target === 'Deployment ns/a-refused'
      ? { code: 422, reason: 'Invalid', message: 'spec.replicas: Invalid value' }
      : undefined;
  await assert.rejects(controller.reconcile('ns/a'), /spec\.replicas: Invalid value/);
  assert.ok(api.get(DEPLOYMENTS, 'ns', 'a-fine'), 'the other child is applied');
  const status = api.get(SERVICE_RESOURCE, 'ns', 'a') as Service;
  assert.equal(condition(status, 'Ready')?.status, 'False');
  assert.match(JSON.stringify(status.status?.conditions), /a-refused/);
  const warning = api.writes
    .filter((w) => w.method === 'POST')
    .map((w) => w.body as KubeObject & { type?: string; message?: string })
    .find((e) => e.type === 'Warning');
  assert.match(warning?.message ?? '', /a-refused/);
});

test('stopping a service deletes its children; a child it never owned stays', async () => {
  const { api, controller, cached } = await setUp((s) => outcome([deployment(s, 'a-kserve')]));
  const stranger = api.put({
    ...deployment(
      {
        apiVersion: 'x/v1',
        kind: 'Other',
        metadata: { name: 'b', namespace: 'ns', uid: 'other' },
      },
      'b-kserve',
    ),
  });
  await controller.reconcile('ns/a');
  await waitFor(() => controller.informers().some((i) => i.get('ns', 'a-kserve')), {
    what: 'the child in the cache',
  });

  const live = api.get(SERVICE_RESOURCE, 'ns', 'a')!;
  api.put({ ...live, metadata: { ...live.metadata, annotations: { [STOP_ANNOTATION]: 'true' } } });
  await waitFor(() => cached()?.metadata.annotations?.[STOP_ANNOTATION] === 'true', {
    what: 'the annotation in the cache',
  });
  await controller.reconcile('ns/a');
  assert.equal(api.get(DEPLOYMENTS, 'ns', 'a-kserve'), undefined, 'the child is deleted');
  assert.ok(api.get(DEPLOYMENTS, 'ns', stranger.metadata.name), 'what another owner owns stays');
});

test('a service that is gone is a no-op: its children go with it by garbage collection', async () => {
  const { api, controller } = await setUp((s) => outcome([deployment(s, 'a-kserve')]));
  const before = api.writes.length;
  await controller.reconcile('ns/missing');
  assert.equal(api.writes.length, before);
});

test('an image volume the API server drops fails DependenciesReady once, with a Warning Event; later passes write nothing', async () => {
  const withModel = (s: KubeObject): KubeObject => {
    const d = deployment(s, 'a-kserve');
    d['spec'] = {
      replicas: 1,
      template: {
        spec: {
          containers: [{ name: 'main', volumeMounts: [{ name: 'model', mountPath: '/mnt/models' }] }],
          volumes: [
            { name: 'model', image: { reference: 'registry.example/m:1', pullPolicy: 'IfNotPresent' } },
          ],
        },
      },
    };
    return d;
  };
  const { api, controller, cached } = await setUp((s) => outcome([withModel(s)]));
  // What kube-apiserver does with the ImageVolume feature gate off: the volume and its mount are gone.
  api.alter = (o) => {
    if (o.kind !== 'Deployment') return o;
    const copy = structuredClone(o) as KubeObject & {
      spec: { template: { spec: { volumes?: unknown[]; containers: { volumeMounts?: unknown[] }[] } } };
    };
    delete copy.spec.template.spec.volumes;
    for (const c of copy.spec.template.spec.containers) delete c.volumeMounts;
    return copy;
  };
  await controller.reconcile('ns/a');
  const status = api.get(SERVICE_RESOURCE, 'ns', 'a') as Service;
  const dependencies = condition(status, 'DependenciesReady');
  assert.equal(dependencies?.status, 'False');
  assert.equal(dependencies?.reason, 'ImageVolumeUnsupported');
  assert.match(
    dependencies?.message ?? '',
    /image volume "model" from Deployment a-kserve of LLMInferenceService ns\/a/,
  );
  assert.equal(condition(status, 'Ready')?.status, 'False');
  const warnings = api.writes
    .filter((w) => w.method === 'POST' && w.target.startsWith('Event'))
    .map((w) => w.body as KubeObject & { type?: string; reason?: string })
    .filter((e) => e.type === 'Warning');
  assert.deepEqual(
    warnings.map((e) => e.reason),
    ['ImageVolumeUnsupported'],
  );

  await waitFor(() => condition(cached(), 'DependenciesReady')?.status === 'False', {
    what: 'the status in the cache',
  });
  await waitFor(() => controller.informers().some((i) => i.get('ns', 'a-kserve')), {
    what: 'the child in the cache',
  });
  const before = api.writes.length;
  await controller.reconcile('ns/a');
  await controller.reconcile('ns/a');
  assert.deepEqual(api.writes.slice(before), [], 'the dropped volume is not written again and again');
});

test('an image volume the API server keeps leaves DependenciesReady True', async () => {
  const { api, controller } = await setUp((s) => {
    const d = deployment(s, 'a-kserve');
    d['spec'] = { template: { spec: { volumes: [{ name: 'model', image: { reference: 'r/m:1' } }] } } };
    return outcome([d]);
  });
  await controller.reconcile('ns/a');
  assert.equal(condition(api.get(SERVICE_RESOURCE, 'ns', 'a'), 'DependenciesReady')?.status, 'True');
});
