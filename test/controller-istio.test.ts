/**
 * On a cluster with Istio (its real CRDs, from istio.io/api), the controller gives each managed Endpoint Picker the
 * DestinationRule an Istio gateway needs to reach its TLS, on exactly the permissions deploy/ grants, and takes it
 * away when the picker stops serving TLS. A private API server: installed on the shared one, Istio's CRDs would make
 * every other test's cluster an Istio cluster.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunningController } from '../src/controller/index.js';
import { startDevApiServer, type DevApiServer } from '../src/dev/index.js';
import { KubeClient, type KubeObject, type ResourceRef } from '../src/kube/index.js';
import {
  apply,
  createNamespace,
  ensureNamespace,
  getOrUndefined,
  installProject,
  readYaml,
  root,
  SERVICE,
  skip,
  startController,
  waitFor,
} from './controller-support.js';

const DESTINATION_RULE: ResourceRef = {
  group: 'networking.istio.io',
  version: 'v1',
  kind: 'DestinationRule',
  plural: 'destinationrules',
  namespaced: true,
};
const SYSTEM = 'llmisvc-system';

let dir: string;
let server: DevApiServer;
let c: KubeClient;
let running: RunningController | undefined;

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'llmisvc-istio-'));
  server = await startDevApiServer({
    dir,
    crds: ['llmisvc', 'gateway-api', 'inference-extension', 'istio'],
    env: process.env,
  });
  c = await KubeClient.create({ kubeconfig: server.kubeconfigPath });
});

after(async () => {
  await running?.stop();
  c?.close();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test(
  'the picker gets a DestinationRule for its TLS from a controller on deploy/ RBAC, and loses it with plaintext',
  { skip },
  async () => {
    await ensureNamespace(c, SYSTEM);
    await installProject(c, SYSTEM);
    await apply(c, readYaml(join(root, 'deploy/controller/rbac.yaml')));
    const ns = await createNamespace(c, 'istio');
    const forbidden: string[] = [];
    running = await startController({
      kubeconfig: server.kubeconfigPath,
      namespace: ns,
      systemNamespace: SYSTEM,
      impersonate: {
        user: `system:serviceaccount:${SYSTEM}:llmisvc-controller`,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${SYSTEM}`, 'system:authenticated'],
      },
    });
    running.client.onRequest((r) => {
      if (r.status === 403) forbidden.push(`${r.verb} ${r.path}`);
    });
    const service: KubeObject = {
      apiVersion: 'serving.kserve.io/v1alpha2',
      kind: 'LLMInferenceService',
      metadata: { name: 'chat' },
      spec: { model: { uri: 'hf://org/model', name: 'org/model' }, router: { scheduler: {}, route: {} } },
    };
    await apply(c, [service], ns);
    const rule = await waitFor('the DestinationRule', () =>
      getOrUndefined(c, DESTINATION_RULE, ns, 'chat-epp-service'),
    );
    // Read back through Istio's own schema: a field it does not know would have been pruned.
    assert.deepEqual(rule['spec'], {
      host: 'chat-epp-service',
      trafficPolicy: {
        portLevelSettings: [{ port: { number: 9002 }, tls: { mode: 'SIMPLE', insecureSkipVerify: true } }],
      },
    });
    assert.equal(rule.metadata.ownerReferences?.[0]?.name, 'chat');

    // The picker told to serve plaintext: an Istio gateway must not originate TLS to it any more.
    const plaintext = {
      ...service,
      spec: {
        ...(service['spec'] as object),
        router: {
          scheduler: {
            template: {
              containers: [
                { name: 'main', args: ['--pool-name', 'chat-inference-pool', '--secure-serving=false'] },
              ],
            },
          },
          route: {},
        },
      },
    };
    await apply(c, [plaintext], ns);
    await waitFor('the DestinationRule pruned', async () =>
      (await getOrUndefined(c, DESTINATION_RULE, ns, 'chat-epp-service')) === undefined ? true : undefined,
    );
    assert.ok(await getOrUndefined(c, SERVICE, ns, 'chat'));
    assert.deepEqual(forbidden, [], 'every request the controller made was allowed');
  },
);
