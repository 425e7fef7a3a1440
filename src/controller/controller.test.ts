import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LlmisvcError } from '../errors/index.js';
import type { KubeObject } from '../kube/index.js';
import type { Condition } from './conditions.js';
import { eventWorthy, needsReconcile, renderProblem } from './controller.js';

const c = (type: string, status: Condition['status']): Condition => ({ type, status });

test('events for changes users care about, not for a new service that is simply not ready yet', () => {
  const fresh = [
    c('PresetsCombined', 'True'),
    c('DependenciesReady', 'True'),
    c('Ready', 'False'),
    c('WorkloadsReady', 'False'),
  ];
  assert.deepEqual(eventWorthy(fresh, []), []);
  assert.deepEqual(eventWorthy([c('DependenciesReady', 'False')], []), [c('DependenciesReady', 'False')]);
  assert.deepEqual(eventWorthy([c('Ready', 'True')], [c('Ready', 'False')]), [c('Ready', 'True')]);
  assert.deepEqual(eventWorthy([c('MainWorkloadReady', 'True')], [c('MainWorkloadReady', 'False')]), []);
});

test('only changes besides status need a pass (the controller’s own status writes must not re-queue)', () => {
  const svc = (extra: Record<string, unknown> = {}, meta: Record<string, unknown> = {}) =>
    ({
      apiVersion: 'serving.kserve.io/v1alpha2',
      kind: 'LLMInferenceService',
      metadata: { name: 's', namespace: 'n', uid: 'u', generation: 1, resourceVersion: '1', ...meta },
      spec: { model: { uri: 'hf://x' } },
      ...extra,
    }) as KubeObject;
  const old = svc();
  assert.equal(needsReconcile(old, svc({ status: { conditions: [] } }, { resourceVersion: '2' })), false);
  assert.equal(needsReconcile(old, svc({}, { generation: 2 })), true);
  assert.equal(needsReconcile(old, svc({}, { annotations: { 'serving.kserve.io/stop': 'true' } })), true);
  assert.equal(needsReconcile(old, svc({}, { deletionTimestamp: 'now' })), true);
  assert.equal(needsReconcile(old, svc({}, { finalizers: ['x'] })), true);
  assert.equal(needsReconcile(old, svc({ spec: { model: { uri: 'hf://y' } } })), true);
});

test('render errors become PresetsCombined reasons; a non-llmisvc error is reported as a bug, not thrown', () => {
  assert.equal(renderProblem(new LlmisvcError('LLMISVC_ERR_TEMPLATE', 'x')).reason, 'InvalidTemplate');
  assert.equal(renderProblem(new LlmisvcError('LLMISVC_ERR_NOT_FOUND', 'x')).reason, 'ConfigNotFound');
  assert.equal(renderProblem(new LlmisvcError('LLMISVC_ERR_INVALID', 'x', { hint: 'h' })).message, 'x (h)');
  const bug = renderProblem(new SyntaxError('Bad escaped character'));
  assert.equal(bug.reason, 'InternalError');
  assert.match(bug.message, /Bad escaped character.*bug in llmisvc/);
});
