import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LlmisvcError } from '../errors/index.js';
import { KubeApiError } from '../kube/index.js';
import { describeFailure, failedConditions, formatDelay, missingNamespace, retryNote } from './failures.js';

const context = {
  systemNamespace: 'llmisvc-system',
  object: 'the default Gateway llmisvc-system/llmisvc-gateway',
};
const noNamespace = (name: string, details = true) =>
  new KubeApiError(
    404,
    'NotFound',
    `POST /apis/gateway.networking.k8s.io/v1/namespaces/${name}/gateways: 404 NotFound: namespaces "${name}" not found`,
    details ? { kind: 'namespaces', name } : undefined,
  );

test('a missing system namespace names it and says how to create it or pick another', () => {
  const p = describeFailure(noNamespace('llmisvc-system'), context);
  assert.equal(p.reason, 'SystemNamespaceNotFound');
  assert.match(p.message, /^the default Gateway llmisvc-system\/llmisvc-gateway: /);
  assert.match(p.message, /kubectl create namespace llmisvc-system/);
  assert.match(p.message, /--system-namespace/);
  assert.equal(
    missingNamespace(noNamespace('x', false)),
    'x',
    'found in the message when details are absent',
  );
  assert.equal(describeFailure(noNamespace('other'), context).reason, 'NamespaceNotFound');
});

test('every kind of error gets a reason for kubectl get and a message that says what to do', () => {
  const forbidden = describeFailure(
    new KubeApiError(403, 'Forbidden', 'PATCH …: 403 Forbidden: no'),
    context,
  );
  assert.equal(forbidden.reason, 'Forbidden');
  assert.match(forbidden.message, /deploy\/controller\/rbac.yaml/);
  assert.equal(describeFailure(new KubeApiError(422, 'Invalid', 'x'), context).reason, 'Invalid');
  assert.equal(describeFailure(new KubeApiError(500, '500', 'x'), context).reason, 'APIError');
  const unreachable = describeFailure(
    new LlmisvcError('LLMISVC_ERR_KUBE', 'GET /api: connect ECONNREFUSED', {
      hint: 'is the API server reachable?',
    }),
    context,
  );
  assert.equal(unreachable.reason, 'APIUnavailable');
  assert.match(unreachable.message, /ECONNREFUSED \(is the API server reachable\?\)$/);
  const bug = describeFailure(new TypeError('x is undefined'), context);
  assert.equal(bug.reason, 'InternalError');
  assert.match(bug.message, /bug in llmisvc/);
});

test('the retry note says when, which attempt, and that it backs off', () => {
  assert.deepEqual([formatDelay(200), formatDelay(1600), formatDelay(300_000)], ['200ms', '1.6s', '5m']);
  assert.match(
    retryNote(4, 800, 300_000),
    /^retrying in 800ms \(attempt 4; .*backs off exponentially, up to every 5m/,
  );
});

test('a failed pass keeps the other conditions and makes Ready False with the problem and the retry', () => {
  const conditions = failedConditions(
    [
      { type: 'PresetsCombined', status: 'True', reason: 'Combined', lastTransitionTime: 't' },
      { type: 'Ready', status: 'True', reason: 'Ready' },
    ],
    { reason: 'SystemNamespaceNotFound', message: 'create it' },
    'retrying in 1s',
  );
  assert.deepEqual(conditions, [
    { type: 'PresetsCombined', status: 'True', reason: 'Combined' },
    {
      type: 'Ready',
      status: 'False',
      reason: 'SystemNamespaceNotFound',
      message: 'create it; retrying in 1s',
    },
  ]);
});
