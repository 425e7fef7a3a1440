import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  acquireLock,
  ensureKubeAssets,
  goDirectives,
  kubeAssetsGoMod,
  KUBE_ASSET_PACKAGES,
  kubernetesLdflags,
  stagingModulesFromGoMod,
  stagingVersion,
} from './kube-assets.js';
import { toolsGo } from './go.js';
import { waitFor } from '../process/index.js';

const upstreamGoMod = `module k8s.io/kubernetes

go 1.24.0

godebug default=go1.24

require (
\tgithub.com/spf13/cobra v1.9.1
\tk8s.io/api v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tgithub.com/example/fork => github.com/example/fork v1.2.3
)

replace k8s.io/kubectl => ./staging/src/k8s.io/kubectl
`;

describe('the kube-assets build module', () => {
  it('reads the staging modules from the replace lines that point into ./staging', () => {
    assert.deepEqual(stagingModulesFromGoMod(upstreamGoMod), [
      'k8s.io/api',
      'k8s.io/client-go',
      'k8s.io/kubectl',
    ]);
  });

  it('maps a Kubernetes version to the version its staging modules are published with', () => {
    assert.equal(stagingVersion('v1.34.4'), 'v0.34.4');
    assert.equal(stagingVersion('v1.36.0-rc.1'), 'v0.36.0-rc.1');
    assert.throws(() => stagingVersion('1.34'), { code: 'LLMISVC_ERR_CONFIG' });
  });

  it('keeps the go and godebug directives of the upstream module', () => {
    assert.deepEqual(goDirectives(upstreamGoMod), { go: '1.24.0', godebug: ['default=go1.24'] });
  });

  it('writes a go.mod that requires k8s.io/kubernetes and replaces each staging module with its published version', () => {
    const goMod = kubeAssetsGoMod({
      kubernetesVersion: 'v1.34.4',
      go: '1.24.0',
      godebug: ['default=go1.24'],
      stagingModules: ['k8s.io/api', 'k8s.io/client-go'],
    });
    assert.match(goMod, /^go 1\.24\.0$/m);
    assert.match(goMod, /^godebug default=go1\.24$/m);
    assert.match(goMod, /^require k8s\.io\/kubernetes v1\.34\.4$/m);
    assert.match(goMod, /^\tk8s\.io\/api => k8s\.io\/api v0\.34\.4$/m);
    assert.match(goMod, /^\tk8s\.io\/client-go => k8s\.io\/client-go v0\.34\.4$/m);
  });

  it('pins every built main package in tools.go', () => {
    const tools = toolsGo(KUBE_ASSET_PACKAGES);
    for (const pkg of [
      'k8s.io/kubernetes/cmd/kube-apiserver',
      'k8s.io/kubernetes/cmd/kubectl',
      'go.etcd.io/etcd/server/v3',
    ]) {
      assert.ok(tools.includes(`_ "${pkg}"`), pkg);
    }
  });

  it('stamps the release version into the binaries', () => {
    const flags = kubernetesLdflags('v1.34.4');
    assert.ok(flags.includes('-X k8s.io/component-base/version.gitVersion=v1.34.4'));
    assert.ok(flags.includes('-X k8s.io/component-base/version.gitMinor=34'));
    assert.ok(flags.includes('-X k8s.io/client-go/pkg/version.gitVersion=v1.34.4'));
  });
});

describe('KUBEBUILDER_ASSETS', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'llmisvc-kube-assets-test-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  async function executable(path: string): Promise<void> {
    await writeFile(path, '#!/bin/sh\n');
    await chmod(path, 0o755);
  }

  it('is used as is when it holds kube-apiserver and etcd; kubectl is optional', async () => {
    const assets = join(dir, 'complete');
    await mkdir(assets);
    await executable(join(assets, 'kube-apiserver'));
    await executable(join(assets, 'etcd'));
    const found = await ensureKubeAssets({
      kubebuilderAssets: assets,
      cacheDir: join(dir, 'unused-cache'),
      go: { env: {}, log: () => {} },
    });
    assert.equal(found.source, 'KUBEBUILDER_ASSETS');
    assert.equal(found.kubeApiserver, join(assets, 'kube-apiserver'));
    assert.equal(found.etcd, join(assets, 'etcd'));
    assert.equal(found.kubectl, undefined);
  });

  it('is refused with a hint when a binary is missing', async () => {
    const assets = join(dir, 'incomplete');
    await mkdir(assets);
    await executable(join(assets, 'kube-apiserver'));
    await assert.rejects(
      ensureKubeAssets({
        kubebuilderAssets: assets,
        cacheDir: join(dir, 'unused'),
        go: { env: {}, log: () => {} },
      }),
      (error: { code: string; message: string; hint: string }) => {
        assert.equal(error.code, 'LLMISVC_ERR_DEPENDENCY');
        assert.match(error.message, /has no executable etcd/);
        assert.match(error.hint, /KUBEBUILDER_ASSETS/);
        return true;
      },
    );
  });
});

describe('the build lock', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'llmisvc-lock-test-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('lets one holder in at a time', async () => {
    const lock = join(dir, 'one.lock');
    const order: string[] = [];
    const releaseFirst = await acquireLock(lock, () => {});
    const second = acquireLock(lock, () => order.push('second waits')).then((release) => {
      order.push('second holds');
      return release;
    });
    // Released only once the second has found the lock taken (it says so), however long that takes here.
    await waitFor(() => order.includes('second waits'), { what: 'the second to wait' });
    order.push('first releases');
    await releaseFirst();
    await (
      await second
    )();
    assert.deepEqual(order, ['second waits', 'first releases', 'second holds']);
  });

  it('takes over a lock whose owner has exited', async () => {
    const lock = join(dir, 'stale.lock');
    const exited = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    });
    await mkdir(lock);
    await writeFile(join(lock, 'pid'), exited.stdout);
    const messages: string[] = [];
    const release = await acquireLock(lock, (m) => messages.push(m));
    assert.equal(await readFile(join(lock, 'pid'), 'utf8'), String(process.pid));
    assert.match(messages.join('\n'), /taking over/);
    await release();
  });
});
