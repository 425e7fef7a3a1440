import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject } from '../kube/index.js';
import { droppedImageVolumes, imageVolumeNames, imageVolumeProblem } from './image-volumes.js';

const model = {
  name: 'model',
  image: { reference: 'registry.example/org/model:1', pullPolicy: 'IfNotPresent' },
};
const scratch = { name: 'scratch', emptyDir: {} };

const deployment = (volumes: unknown[]): KubeObject => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'm-kserve', namespace: 'ns' },
  spec: { template: { spec: { containers: [{ name: 'main' }], volumes } } },
});
const leaderWorkerSet = (leader: unknown[], worker: unknown[]): KubeObject => ({
  apiVersion: 'leaderworkerset.x-k8s.io/v1',
  kind: 'LeaderWorkerSet',
  metadata: { name: 'm-kserve-mn', namespace: 'ns' },
  spec: {
    leaderWorkerTemplate: {
      leaderTemplate: { spec: { volumes: leader } },
      workerTemplate: { spec: { volumes: worker } },
    },
  },
});

test('image volumes the API server kept, dropped, or stripped of their source', () => {
  const cases: { what: string; sent: KubeObject; stored: KubeObject; dropped: string[] }[] = [
    { what: 'kept', sent: deployment([model, scratch]), stored: deployment([scratch, model]), dropped: [] },
    {
      what: 'volume gone (ImageVolume off)',
      sent: deployment([model, scratch]),
      stored: deployment([scratch]),
      dropped: ['model'],
    },
    { what: 'no volumes left at all', sent: deployment([model]), stored: deployment([]), dropped: ['model'] },
    {
      what: 'kept without a source',
      sent: deployment([model]),
      stored: deployment([{ name: 'model' }]),
      dropped: ['model'],
    },
    { what: 'no image volume sent', sent: deployment([scratch]), stored: deployment([]), dropped: [] },
    {
      what: 'LeaderWorkerSet workers lost it, the leader kept it',
      sent: leaderWorkerSet([model], [model]),
      stored: leaderWorkerSet([model], []),
      dropped: ['model'],
    },
    {
      what: 'a stored object without any spec',
      sent: deployment([model]),
      stored: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'm-kserve' } },
      dropped: ['model'],
    },
  ];
  for (const c of cases) assert.deepEqual(droppedImageVolumes(c.sent, c.stored), c.dropped, c.what);
});

test('the image volumes a workload asks for, over all its pod templates, once each', () => {
  assert.deepEqual(imageVolumeNames(deployment([model, scratch])), ['model']);
  assert.deepEqual(imageVolumeNames(leaderWorkerSet([model], [model])), ['model']);
  assert.deepEqual(imageVolumeNames(deployment([scratch])), []);
  assert.deepEqual(imageVolumeNames({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's' } }), []);
});

test('the problem names the service, the workload, the volume and what to do', () => {
  const problem = imageVolumeProblem({ namespace: 'ns', name: 'm' }, 'Deployment m-kserve', ['model']);
  assert.equal(problem.reason, 'ImageVolumeUnsupported');
  for (const part of [
    /image volume "model" from Deployment m-kserve of LLMInferenceService ns\/m/,
    /--feature-gates=ImageVolume=true/,
    /1\.35/,
    /hf:\/\/, pvc:\/\/ or s3:\/\//,
    /restart the llmisvc controller or change the service/,
  ])
    assert.match(problem.message, part);
});
