import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configMap, FakeKubeApi, listOf } from '../../test/harness/fake-kube-api.js';
import {
  isConflict,
  isGone,
  isNotFound,
  KubeApiError,
  KubeClient,
  retryAfterMs,
  type WatchEvent,
} from './client.js';
import type { ResourceRef } from './resources.js';

const CONFIG_MAPS: ResourceRef = {
  group: '',
  version: 'v1',
  kind: 'ConfigMap',
  plural: 'configmaps',
  namespaced: true,
};

test('list sends its query and counts the request by verb', async () => {
  const api = new FakeKubeApi();
  const client = KubeClient.forTransport(api.transport);
  const listed = client.list(CONFIG_MAPS, 'ns', { labelSelector: 'app=x', limit: 2 });
  const request = await api.next();
  assert.equal(request.method, 'GET');
  assert.equal(request.param('labelSelector'), 'app=x');
  assert.equal(request.param('limit'), '2');
  request.json(200, listOf([configMap('a', '1')], '7'));
  assert.equal((await listed).metadata.resourceVersion, '7');
  assert.equal(client.counts.get('list'), 1);
  assert.equal(client.writes(), 0);
});

test('a non-2xx answer is a KubeApiError carrying the Status reason and message', async () => {
  const api = new FakeKubeApi();
  const client = KubeClient.forTransport(api.transport);
  const got = client.get(CONFIG_MAPS, 'ns', 'missing');
  (await api.next()).json(404, {
    kind: 'Status',
    code: 404,
    reason: 'NotFound',
    message: 'configmaps "missing" not found',
  });
  await assert.rejects(
    got,
    (error) => isNotFound(error) && /configmaps "missing" not found/.test((error as Error).message),
  );
  const created = client.create(CONFIG_MAPS, configMap('a', ''));
  (await api.next()).json(409, { kind: 'Status', code: 409, reason: 'AlreadyExists' });
  await assert.rejects(created, isConflict);
  assert.equal(client.writes(), 1, 'a failed create still counts as a write sent');
});

test('watch reassembles events split across chunks and ends when the server ends the stream', async () => {
  const api = new FakeKubeApi();
  const client = KubeClient.forTransport(api.transport);
  const seen: WatchEvent[] = [];
  const watching = client.watch('/api/v1/namespaces/ns/configmaps', { resourceVersion: '5' }, (e) =>
    seen.push(e),
  );
  const request = await api.next();
  assert.equal(request.param('watch'), 'true');
  assert.equal(request.param('resourceVersion'), '5');
  const stream = request.stream();
  const line = JSON.stringify({ type: 'ADDED', object: configMap('a', '6') });
  stream.raw(line.slice(0, 10));
  stream.raw(line.slice(10) + '\n\n');
  stream.send('MODIFIED', configMap('a', '7'));
  stream.end();
  await watching;
  assert.deepEqual(
    seen.map((e) => `${e.type} ${e.object.metadata.resourceVersion}`),
    ['ADDED 6', 'MODIFIED 7'],
  );
});

test('watch rejects with 410 on an ERROR event, with the status on a refused watch, and resolves on abort', async () => {
  const api = new FakeKubeApi();
  const client = KubeClient.forTransport(api.transport);
  const expired = client.watch('/api/v1/configmaps', {}, () => undefined);
  (await api.next()).stream().error(410, 'Expired');
  await assert.rejects(expired, isGone);

  const refused = client.watch('/api/v1/configmaps', {}, () => undefined);
  (await api.next()).json(403, { kind: 'Status', code: 403, reason: 'Forbidden', message: 'no' });
  await assert.rejects(refused, (error) => error instanceof KubeApiError && error.status === 403);

  const abort = new AbortController();
  const aborted = client.watch('/api/v1/configmaps', {}, () => undefined, { signal: abort.signal });
  (await api.next()).stream();
  abort.abort();
  await aborted;

  const dropped = client.watch('/api/v1/configmaps', {}, () => undefined);
  (await api.next()).stream().drop();
  await assert.rejects(dropped, /connection reset/);
});

test('a 429 is retried after its Retry-After, a few times, before the caller sees it', async () => {
  const api = new FakeKubeApi();
  const client = KubeClient.forTransport(api.transport);
  const initializing = {
    kind: 'Status',
    code: 429,
    reason: 'TooManyRequests',
    message: 'storage is (re)initializing',
  };
  const got = client.get(CONFIG_MAPS, 'ns', 'a');
  (await api.next()).json(429, initializing, { 'retry-after': '0' });
  (await api.next()).json(200, configMap('a', '3'));
  assert.equal((await got).metadata.resourceVersion, '3');

  const refused = client.get(CONFIG_MAPS, 'ns', 'a');
  for (let i = 0; i < 5; i++) (await api.next()).json(429, initializing, { 'retry-after': '0' });
  await assert.rejects(
    refused,
    (error) => error instanceof KubeApiError && /initializing/.test(error.message),
  );
  assert.equal(api.seen.length, 7, 'one retry, then five attempts and no more');

  assert.equal(retryAfterMs(undefined), 1000);
  assert.equal(retryAfterMs('2'), 2000);
  assert.equal(retryAfterMs('3600'), 10_000, 'a hostile Retry-After is capped');
  assert.equal(retryAfterMs('soon'), 1000);
});
