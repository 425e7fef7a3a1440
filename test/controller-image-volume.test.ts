/**
 * An `oci+native://` model is a Kubernetes image volume. kube-apiserver with the ImageVolume feature gate off (1.33
 * and 1.34's default) accepts the Deployment but silently drops that volume and its mount; the controller must say so
 * (DependenciesReady False, ImageVolumeUnsupported, a Warning Event) without writing the Deployment again and again.
 * Two real API servers: one of our own with the gate off, and the shared one of `npm test` with it on (the dev API
 * server's default, as in Kubernetes 1.35).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Condition, RunningController } from '../src/controller/index.js';
import type { KubeClient, KubeObject } from '../src/kube/index.js';
import { CORE_RESOURCES, KubeClient as Client } from '../src/kube/index.js';
import { startDevApiServer, type DevApiServer } from '../src/dev/index.js';
import {
  apply,
  client,
  createNamespace,
  DEPLOYMENT,
  installProject,
  SERVICE,
  skip,
  startController,
  waitFor,
} from './controller-support.js';

type Service = KubeObject & { status?: { conditions?: Condition[] } };
type Deployment = KubeObject & {
  spec: {
    template: {
      spec: {
        volumes?: { name: string; image?: unknown }[];
        containers: { volumeMounts?: { name: string }[] }[];
      };
    };
  };
};

const service = (uri: string): KubeObject => ({
  apiVersion: 'serving.kserve.io/v1alpha2',
  kind: 'LLMInferenceService',
  metadata: { name: 'oci-model' },
  spec: { model: { uri, name: 'org/model' }, replicas: 1 },
});
const OCI = 'oci+native://registry.example.com/models/model:1.0';

const condition = (s: Service, type: string) => s.status?.conditions?.find((c) => c.type === type);

/** The controller's total reconciles, to know that a pass ran. */
async function reconciles(running: RunningController): Promise<number> {
  return (await running.controller.metrics.reconciles.get()).values.reduce((a, v) => a + v.value, 0);
}

/** Applies the oci:// service in a fresh namespace under a controller; resolves with its settled status. */
async function deploy(c: KubeClient, kubeconfig: string | undefined, prefix: string) {
  const sys = await createNamespace(c, `${prefix}-sys`);
  const ns = await createNamespace(c, prefix);
  await installProject(c, sys);
  const running = await startController({
    ...(kubeconfig ? { kubeconfig } : {}),
    namespace: ns,
    systemNamespace: sys,
  });
  await apply(c, [service(OCI)], ns);
  const settled = await waitFor('DependenciesReady', async () => {
    const s = await c.get<Service>(SERVICE, ns, 'oci-model');
    return condition(s, 'DependenciesReady') && s.status ? s : undefined;
  });
  return { ns, sys, running, settled };
}

describe('kube-apiserver with the ImageVolume feature gate off', { skip }, () => {
  let dir: string;
  let server: DevApiServer;
  let c: KubeClient;
  let running: RunningController | undefined;
  let ns: string;
  let sys: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'llmisvc-image-volume-off-'));
    server = await startDevApiServer({
      dir,
      crds: false,
      env: process.env,
      apiServerArgs: ['--feature-gates=ImageVolume=false'],
    });
    c = await Client.create({ kubeconfig: server.kubeconfigPath, qps: 1000, burst: 1000 });
  });

  after(async () => {
    await running?.stop();
    c?.close();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('the dropped model volume is reported under DependenciesReady, once, and not written again', async () => {
    const deployed = await deploy(c, server.kubeconfigPath, 'ivoff');
    ({ running, ns, sys } = deployed);
    const s = await waitFor('ImageVolumeUnsupported', async () => {
      const got = await c.get<Service>(SERVICE, ns, 'oci-model');
      return condition(got, 'DependenciesReady')?.reason === 'ImageVolumeUnsupported' ? got : undefined;
    });
    // The server really dropped it (else this test would prove nothing): the volume and its mount are gone.
    const stored = await c.get<Deployment>(DEPLOYMENT, ns, 'oci-model-kserve');
    const podSpec = stored.spec.template.spec;
    assert.equal(
      podSpec.volumes?.find((v) => v.image !== undefined),
      undefined,
    );

    const dependencies = condition(s, 'DependenciesReady')!;
    assert.equal(dependencies.status, 'False');
    for (const part of [
      new RegExp(
        `image volume "[a-z-]+" from Deployment oci-model-kserve of LLMInferenceService ${ns}/oci-model`,
      ),
      /ImageVolume feature gate is off/,
      /--feature-gates=ImageVolume=true/,
      /hf:\/\/, pvc:\/\/ or s3:\/\//,
    ])
      assert.match(dependencies.message!, part);
    assert.equal(condition(s, 'Ready')?.status, 'False');
    assert.match(condition(s, 'Ready')!.message!, /dropped the image volume/);

    const events = await waitFor('the Warning Event', async () => {
      const list = await c.list<KubeObject & { type?: string; reason?: string; message?: string }>(
        CORE_RESOURCES.event,
        ns,
      );
      const found = list.items.filter((e) => e.reason === 'ImageVolumeUnsupported');
      return found.length ? found : undefined;
    });
    assert.equal(events[0]!.type, 'Warning');
    assert.match(events[0]!.message!, /oci-model-kserve/);

    // Level-triggered, and quiet: passes over the unchanged service write nothing (no fight with the API server).
    await waitFor('queue idle', () => running!.controller.queue.length === 0);
    const deploymentVersion = stored.metadata.resourceVersion;
    await waitFor('quiet', async () => {
      const before = running!.client.writes();
      const r = await reconciles(running!);
      running!.controller.enqueueAll();
      await waitFor(
        'pass done',
        async () => (await reconciles(running!)) > r && running!.controller.queue.length === 0,
      );
      return running!.client.writes() === before;
    });
    const writes = running.client.writes();
    for (let i = 0; i < 3; i++) {
      const r = await reconciles(running);
      running.controller.enqueueAll();
      await waitFor(
        'pass done',
        async () => (await reconciles(running!)) > r && running!.controller.queue.length === 0,
      );
    }
    assert.equal(running.client.writes(), writes, 'passes over the dropped volume wrote to the API');
    const again = await c.get<Deployment>(DEPLOYMENT, ns, 'oci-model-kserve');
    assert.equal(again.metadata.resourceVersion, deploymentVersion, 'the Deployment was not written again');

    // The fix the message names: a model the cluster can mount. DependenciesReady comes back.
    await c.mergePatch(SERVICE, ns, 'oci-model', { spec: { model: { uri: 'hf://org/model' } } });
    const fixed = await waitFor('DependenciesReady True', async () => {
      const got = await c.get<Service>(SERVICE, ns, 'oci-model');
      return condition(got, 'DependenciesReady')?.status === 'True' ? got : undefined;
    });
    assert.equal(condition(fixed, 'DependenciesReady')?.reason, 'Available');
  });

  test('the other fix it names: the gate turned on, then the controller restarted', async () => {
    await c.mergePatch(SERVICE, ns, 'oci-model', { spec: { model: { uri: OCI } } });
    await waitFor('ImageVolumeUnsupported again', async () => {
      const got = await c.get<Service>(SERVICE, ns, 'oci-model');
      return condition(got, 'DependenciesReady')?.reason === 'ImageVolumeUnsupported' ? got : undefined;
    });
    await running?.stop();
    running = undefined;
    c.close();
    await server.stop();
    // The same folder keeps etcd's data: the same objects, now on a server with the gate on.
    server = await startDevApiServer({ dir, crds: false, env: process.env });
    c = await Client.create({ kubeconfig: server.kubeconfigPath, qps: 1000, burst: 1000 });
    running = await startController({
      kubeconfig: server.kubeconfigPath,
      namespace: ns,
      systemNamespace: sys,
    });
    const s = await waitFor('DependenciesReady True', async () => {
      const got = await c.get<Service>(SERVICE, ns, 'oci-model');
      return condition(got, 'DependenciesReady')?.status === 'True' ? got : undefined;
    });
    assert.equal(condition(s, 'DependenciesReady')?.reason, 'Available');
    const stored = await c.get<Deployment>(DEPLOYMENT, ns, 'oci-model-kserve');
    assert.ok(
      stored.spec.template.spec.volumes?.some((v) => v.image !== undefined),
      'the image volume is stored',
    );
  });
});

describe('kube-apiserver with the ImageVolume feature gate on', { skip }, () => {
  let c: KubeClient;
  let running: RunningController | undefined;

  before(async () => {
    c = await client();
  });

  after(async () => {
    await running?.stop();
    c?.close();
  });

  test('the model volume is kept and DependenciesReady is True', async () => {
    const deployed = await deploy(c, undefined, 'ivon');
    running = deployed.running;
    const { ns, settled } = deployed;
    assert.equal(condition(settled, 'DependenciesReady')?.status, 'True', JSON.stringify(settled.status));
    const stored = await c.get<Deployment>(DEPLOYMENT, ns, 'oci-model-kserve');
    const volume = stored.spec.template.spec.volumes?.find((v) => v.image !== undefined);
    assert.ok(volume, 'the image volume is stored');
    assert.ok(
      stored.spec.template.spec.containers.some((ct) => ct.volumeMounts?.some((m) => m.name === volume.name)),
    );
  });
});
