import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Logger } from 'pino';
import { configMap, FakeKubeApi, listOf } from '../../test/harness/fake-kube-api.js';
import { waitFor } from '../process/index.js';
import { KubeClient } from './client.js';
import { Informer, type InformerOptions } from './informer.js';
import type { KubeObject, ResourceRef } from './resources.js';

const CONFIG_MAPS: ResourceRef = {
  group: '',
  version: 'v1',
  kind: 'ConfigMap',
  plural: 'configmaps',
  namespaced: true,
};

/** An informer over a fake API, with every handler call written down as "add a@1", "update a@2", "delete b@1". */
function setUp(options: InformerOptions = {}) {
  const api = new FakeKubeApi();
  const informer = new Informer(KubeClient.forTransport(api.transport), CONFIG_MAPS, {
    namespace: 'ns',
    minBackoffMs: 1,
    ...options,
  });
  const calls: string[] = [];
  const at = (o: KubeObject) => `${o.metadata.name}@${o.metadata.resourceVersion}`;
  informer.addHandlers({
    add: (o) => calls.push(`add ${at(o)}`),
    update: (o, old) => calls.push(`update ${at(old)}->${at(o)}`),
    delete: (o) => calls.push(`delete ${at(o)}`),
  });
  informer.start();
  return { api, informer, calls };
}

test('lists page by page, then watches from the list resourceVersion and applies each event', async () => {
  const { api, informer, calls } = setUp();
  const page1 = await api.next();
  assert.equal(page1.watch, false);
  assert.equal(page1.url.pathname, '/api/v1/namespaces/ns/configmaps');
  assert.equal(page1.param('limit'), '500');
  page1.json(200, listOf([configMap('a', '1')], '10', 'token'));
  const page2 = await api.next();
  assert.equal(page2.param('continue'), 'token');
  page2.json(200, listOf([configMap('b', '2')], '11'));
  await informer.waitForSync();
  assert.deepEqual(calls, ['add a@1', 'add b@2']);
  // List items arrive without apiVersion/kind; the cache restores them.
  assert.equal(informer.get('ns', 'b')?.kind, 'ConfigMap');

  const watch = await api.next();
  assert.equal(watch.watch, true);
  assert.equal(watch.param('resourceVersion'), '11');
  assert.equal(watch.param('allowWatchBookmarks'), 'true');
  const events = watch.stream();
  events.send('MODIFIED', configMap('a', '12'));
  events.send('ADDED', configMap('c', '13'));
  events.send('DELETED', configMap('b', '14'));
  events.send('BOOKMARK', {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { resourceVersion: '15' },
  } as KubeObject);
  events.end();

  // A watch the server ends (its timeout) is resumed from the bookmark, without a list.
  const resumed = await api.next();
  assert.equal(resumed.watch, true);
  assert.equal(resumed.param('resourceVersion'), '15');
  assert.deepEqual(calls, ['add a@1', 'add b@2', 'update a@1->a@12', 'add c@13', 'delete b@2']);
  assert.deepEqual(
    informer.list().map((o) => o.metadata.name),
    ['a', 'c'],
  );
  assert.equal(informer.stats.lists, 1);
  await informer.stop();
});

test('410 Gone relists, and the relist turns into the adds, updates and deletes that were missed', async () => {
  const { api, informer, calls } = setUp();
  (await api.next()).json(200, listOf([configMap('a', '1'), configMap('b', '1'), configMap('c', '1')], '5'));
  const watch = (await api.next()).stream();
  watch.error(410, 'Expired');

  const relist = await api.next();
  assert.equal(relist.watch, false, 'an expired resourceVersion is answered with a fresh list');
  relist.json(200, listOf([configMap('a', '1'), configMap('c', '7'), configMap('d', '8')], '9'));
  const next = await api.next();
  assert.equal(next.param('resourceVersion'), '9');
  assert.deepEqual(calls.slice(3), ['delete b@1', 'update c@1->c@7', 'add d@8']);
  assert.equal(informer.stats.relistsAfterGone, 1);
  assert.equal(informer.stats.errors, 0);
  await informer.stop();
});

test('a dropped watch resumes from the last resourceVersion it saw, without a list', async () => {
  const { api, informer, calls } = setUp();
  (await api.next()).json(200, listOf([], '3'));
  const watch = (await api.next()).stream();
  watch.send('ADDED', configMap('a', '4'));
  // Dropped once the event is in: bytes a broken connection delivered before the break are read, not lost.
  await waitFor(() => calls.length === 1, { what: 'the event' });
  watch.drop();

  const resumed = await api.next();
  assert.equal(resumed.watch, true);
  assert.equal(resumed.param('resourceVersion'), '4');
  assert.deepEqual(calls, ['add a@4']);
  assert.equal(informer.stats.lists, 1);
  assert.equal(informer.stats.errors, 1);
  await informer.stop();
});

test('failures back off exponentially up to the cap, and a watch that worked starts the back-off afresh', async () => {
  const retries: number[] = [];
  const logger = {
    info: () => undefined,
    warn: (fields: { retryInMs?: number }) => retries.push(fields.retryInMs ?? -1),
  } as unknown as Logger;
  const { api, informer } = setUp({ minBackoffMs: 1, maxBackoffMs: 4, logger });
  const failedList = await api.next();
  failedList.json(500, { kind: 'Status', code: 500, reason: 'InternalError', message: 'etcd is down' });
  const list = await api.next();
  assert.equal(list.watch, false, 'a failed list is retried as a list: there is nothing to resume from');
  list.json(200, listOf([], '1'));
  for (let i = 0; i < 3; i++) (await api.next()).fail();
  (await api.next()).stream().end();
  (await api.next()).json(503, { kind: 'Status', code: 503, reason: 'ServiceUnavailable' });
  const last = await api.next();
  assert.deepEqual(retries, [1, 2, 4, 4, 1]);
  assert.equal(last.param('resourceVersion'), '1');
  assert.equal(informer.stats.errors, 5);
  await informer.stop();
});

test('a watch answered 404 (the resource went away) relists once it is back', async () => {
  const { api, informer } = setUp();
  (await api.next()).json(200, listOf([], '1'));
  (await api.next()).json(404, { kind: 'Status', code: 404, reason: 'NotFound' });
  const relist = await api.next();
  assert.equal(relist.watch, false);
  relist.json(200, listOf([configMap('a', '2')], '2'));
  await api.next();
  assert.equal(informer.size, 1);
  await informer.stop();
});

test('stop ends a watch in progress and resolves', async () => {
  const { api, informer } = setUp();
  (await api.next()).json(200, listOf([], '1'));
  const watch = await api.next();
  watch.stream();
  await informer.stop();
  assert.equal(api.seen.length, 2, 'nothing is requested after stop');
});

test('a list answered 404 (no CRD serves the resource) is said once at info, not warned on every retry, and its arrival is said', async () => {
  const lines: string[] = [];
  const record = (level: string) => (_fields: unknown, msg: string) => lines.push(`${level} ${msg}`);
  const logger = { info: record('info'), warn: record('warn'), debug: record('debug') } as unknown as Logger;
  const { api, informer, calls } = setUp({ minBackoffMs: 1, maxBackoffMs: 2, logger });
  for (let i = 0; i < 4; i++) {
    const list = await api.next();
    assert.equal(list.watch, false, 'a resource not served is listed again, not watched');
    list.json(404, {
      kind: 'Status',
      code: 404,
      reason: 'NotFound',
      message: 'the server could not find the requested resource',
    });
  }
  (await api.next()).json(200, listOf([configMap('a', '1')], '1'));
  await api.next();
  assert.deepEqual(lines, [
    'info not served by the API server (no CRD installs this version): watching for it',
    'debug still not served',
    'debug still not served',
    'debug still not served',
    'info now served',
  ]);
  assert.deepEqual(calls, ['add a@1']);
  await informer.stop();
});

test('keep: objects it refuses are never cached, and one that stops qualifying is deleted', async () => {
  const { api, informer, calls } = setUp({ keep: (o) => o.metadata.labels?.['owned'] === 'yes' });
  const owned = (name: string, rv: string, yes = true) => ({
    ...configMap(name, rv),
    metadata: { ...configMap(name, rv).metadata, labels: { owned: yes ? 'yes' : 'no' } },
  });
  (await api.next()).json(200, listOf([owned('a', '1'), owned('stranger', '2', false)], '3'));
  await informer.waitForSync();
  const events = (await api.next()).stream();
  events.send('ADDED', owned('other', '4', false));
  events.send('MODIFIED', owned('other', '5', false));
  events.send('MODIFIED', owned('a', '6', false));
  events.send('ADDED', owned('b', '7'));
  events.end();
  await api.next();
  assert.deepEqual(calls, ['add a@1', 'delete a@1', 'add b@7']);
  assert.deepEqual(
    informer.list().map((o) => o.metadata.name),
    ['b'],
  );
  await informer.stop();
});

test('slim: the cache holds what slim keeps of each object, from the list and from the watch', async () => {
  const { api, informer, calls } = setUp({
    slim: (o) => ({ ...o, metadata: { ...o.metadata, annotations: undefined } }),
  });
  const annotated = (name: string, rv: string) => ({
    ...configMap(name, rv),
    metadata: { ...configMap(name, rv).metadata, annotations: { filler: 'x'.repeat(1000) } },
  });
  (await api.next()).json(200, listOf([annotated('a', '1')], '2'));
  await informer.waitForSync();
  const events = (await api.next()).stream();
  events.send('ADDED', annotated('b', '3'));
  await waitFor(() => informer.get('ns', 'b') !== undefined, { timeoutMs: 5000, what: 'b cached' });
  for (const name of ['a', 'b']) {
    assert.equal(informer.get('ns', name)?.metadata.annotations, undefined, name);
    assert.equal(informer.get('ns', name)?.metadata.name, name);
  }
  assert.deepEqual(calls, ['add a@1', 'add b@3']);
  events.end();
  await informer.stop();
});
