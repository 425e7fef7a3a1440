import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  ALL_CRD_SETS,
  DEFAULT_CRD_SETS,
  DEPENDENCY_CRD_SETS,
  cachedDependencyCrds,
  projectCrdManifests,
  selectCrdSets,
} from './crd-sets.js';

describe('CRD sets', () => {
  it('selects the default sets, none, or the named sets in install order; an optional set only by name', () => {
    assert.deepEqual(selectCrdSets(true), [...DEFAULT_CRD_SETS]);
    assert.deepEqual(
      ALL_CRD_SETS.filter((name) => !DEFAULT_CRD_SETS.includes(name)),
      ['istio'],
    );
    assert.deepEqual(selectCrdSets(['istio', 'llmisvc']), ['llmisvc', 'istio']);
    assert.deepEqual(selectCrdSets(false), []);
    assert.deepEqual(selectCrdSets(['leader-worker-set', 'llmisvc']), ['llmisvc', 'leader-worker-set']);
  });

  it('refuses an unknown set name and lists the known ones', () => {
    assert.throws(
      () => selectCrdSets(['gateway']),
      (error: { code: string; hint: string }) => {
        assert.equal(error.code, 'LLMISVC_ERR_CONFIG');
        assert.match(error.hint, /gateway-api/);
        return true;
      },
    );
  });

  it('cover every API the project depends on', () => {
    const files = DEPENDENCY_CRD_SETS.flatMap((s) => s.files.map((f) => f.slice(f.lastIndexOf('/') + 1)));
    for (const expected of [
      'gateway.networking.k8s.io_gateways.yaml',
      'gateway.networking.k8s.io_httproutes.yaml',
      'inference.networking.k8s.io_inferencepools.yaml',
      'inference.networking.x-k8s.io_inferencepools.yaml',
      'inference.networking.x-k8s.io_inferencemodels.yaml',
      'leaderworkerset.x-k8s.io_leaderworkersets.yaml',
    ]) {
      assert.ok(files.includes(expected), expected);
    }
    // Two sets may come from one module, but no file name may be installed twice.
    assert.equal(new Set(files).size, files.length);
  });

  it("reads the project's CRDs from deploy/crds, sorted, and none while the folder is missing", async () => {
    const root = await mkdtemp(join(tmpdir(), 'llmisvc-crd-sets-test-'));
    try {
      assert.deepEqual((await projectCrdManifests(root)).files, []);
      await mkdir(join(root, 'deploy', 'crds'), { recursive: true });
      for (const name of ['b.yaml', 'a.yml', 'README.md'])
        await writeFile(join(root, 'deploy', 'crds', name), '');
      assert.deepEqual((await projectCrdManifests(root)).files, [
        join(root, 'deploy', 'crds', 'a.yml'),
        join(root, 'deploy', 'crds', 'b.yaml'),
      ]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('counts a cached set only once its copy is complete and has every file of the set', async () => {
    const cache = await mkdtemp(join(tmpdir(), 'llmisvc-crd-cache-test-'));
    try {
      const set = DEPENDENCY_CRD_SETS.find((s) => s.name === 'leader-worker-set')!;
      const dir = join(cache, 'crds', `sigs.k8s.io_lws@${set.version}`);
      await mkdir(dir, { recursive: true });
      assert.equal(cachedDependencyCrds(cache, set), undefined);
      await writeFile(join(dir, '.complete'), '');
      // Complete, but made when the set had other files: fetched again.
      assert.equal(cachedDependencyCrds(cache, set), undefined);
      const file = join(dir, 'leaderworkerset.x-k8s.io_leaderworkersets.yaml');
      await writeFile(file, '');
      assert.deepEqual(cachedDependencyCrds(cache, set)?.files, [file]);
    } finally {
      await rm(cache, { recursive: true, force: true });
    }
  });
});
