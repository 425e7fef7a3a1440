/**
 * Integration: what a namespace user can put in front of the EPP's Kubernetes mode (pods that match the pool but never
 * run, other InferencePools, odd pod IPs), against a real kube-apiserver (`LLMISVC_TEST_KUBECONFIG`, from `npm test`).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, CustomObjectsApi, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { waitFor } from '../src/process/index.js';
import { watchInferencePool, type KubernetesSource } from '../src/epp/kubernetes.js';
import type { EndpointSpec } from '../src/epp/datastore.js';

const KUBECONFIG = process.env['LLMISVC_TEST_KUBECONFIG'];

/** Waits up to 15 s for `condition`, checked every 25 ms. */
const until = (what: string, condition: () => boolean) =>
  waitFor(condition, { what, timeoutMs: 15_000, intervalMs: 25 });

describe(
  'EPP in Kubernetes mode, against a namespace user',
  { skip: KUBECONFIG ? false : 'LLMISVC_TEST_KUBECONFIG not set (run through npm test)' },
  () => {
    const namespace = `epp-hostile-${Date.now().toString(36)}`;
    let core: CoreV1Api;
    let custom: CustomObjectsApi;
    let source: KubernetesSource | undefined;
    const logLines: { level: number; msg: string; [k: string]: unknown }[] = [];
    const published: EndpointSpec[][] = [];

    async function createPool(name: string): Promise<void> {
      await custom.createNamespacedCustomObject({
        group: 'inference.networking.k8s.io',
        version: 'v1',
        namespace,
        plural: 'inferencepools',
        body: {
          apiVersion: 'inference.networking.k8s.io/v1',
          kind: 'InferencePool',
          metadata: { name },
          spec: {
            selector: { matchLabels: { app: 'llm' } },
            targetPorts: [{ number: 8000 }],
            endpointPickerRef: { name: 'epp', port: { number: 9002 } },
          },
        },
      });
    }

    async function createPod(name: string, ip?: string): Promise<void> {
      await core.createNamespacedPod({
        namespace,
        body: {
          metadata: { name, labels: { app: 'llm' }, annotations: { filler: 'x'.repeat(10_000) } },
          spec: { containers: [{ name: 'vllm', image: 'vllm/vllm-openai' }] },
        },
      });
      if (ip === undefined) return;
      const pod: V1Pod = await core.readNamespacedPod({ name, namespace });
      pod.status = {
        phase: 'Running',
        podIP: ip,
        podIPs: [{ ip }],
        conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: new Date() }],
      };
      await core.replaceNamespacedPodStatus({ name, namespace, body: pod });
    }

    async function parallel(n: number, fn: (i: number) => Promise<void>): Promise<void> {
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < n) await fn(next++);
        }),
      );
    }

    before(async () => {
      const kc = new KubeConfig();
      kc.loadFromFile(KUBECONFIG!);
      core = kc.makeApiClient(CoreV1Api);
      custom = kc.makeApiClient(CustomObjectsApi);
      await core.createNamespace({ body: { metadata: { name: namespace } } });
      await createPool('pool');
      source = await watchInferencePool({
        name: 'pool',
        namespace,
        kubeconfig: KUBECONFIG,
        logger: pino({ level: 'info' }, { write: (line: string) => void logLines.push(JSON.parse(line)) }),
        onEndpoints: (specs) => void published.push(specs),
        onDirectory: () => undefined,
      });
      await until('the pool is observed', () => logLines.some((l) => l.msg === 'InferencePool observed'));
    });

    after(async () => {
      await source?.close();
      await core?.deleteNamespace({ name: namespace }).catch(() => undefined);
    });

    test('other InferencePools of the namespace are neither kept nor said', async () => {
      const before = logLines.length;
      await parallel(100, (i) => createPool(`other-${i}`));
      // A change to our pool after them: once it is said, the others have been delivered too.
      await custom.patchNamespacedCustomObject({
        group: 'inference.networking.k8s.io',
        version: 'v1',
        namespace,
        plural: 'inferencepools',
        name: 'pool',
        body: [{ op: 'add', path: '/metadata/labels', value: { touched: 'yes' } }],
      });
      await until('our pool change is seen', () =>
        logLines.slice(before).some((l) => l.msg === 'InferencePool observed'),
      );
      await sleep(500);
      const said = logLines.slice(before).filter((l) => l.msg === 'InferencePool observed');
      assert.equal(
        said.length,
        1,
        `${said.length} "InferencePool observed" lines for one change of our pool`,
      );
    });

    test('matching pods that never become Ready cost no work (and are not cached)', async () => {
      const before = published.length;
      await parallel(300, (i) => createPod(`pending-${i}`));
      await createPod('ready', '10.0.0.7');
      await until('the Ready pod is published', () =>
        published.some((specs) => specs.some((s) => s.address === '10.0.0.7:8000')),
      );
      await sleep(500);
      const publishes = published.length - before;
      assert.ok(publishes <= 3, `${publishes} endpoint publications for 300 pending pods and one Ready pod`);
    });

    test('pod IPs: IPv6 in brackets; an address net.connect would misread is left out and said', async () => {
      await createPod('v6', 'fd00::5');
      await createPod('octal', '010.0.0.1');
      await until('the IPv6 pod is published', () =>
        published.at(-1)!.some((s) => s.address === '[fd00::5]:8000'),
      );
      await until('the octal pod is said', () =>
        logLines.some((l) => l.pod === 'octal' && l.field === 'status.podIP' && l.level === 40),
      );
      const addresses = published.at(-1)!.map((s) => s.address);
      assert.deepEqual(addresses.sort(), ['10.0.0.7:8000', '[fd00::5]:8000']);
      assert.ok(!published.flat().some((s) => s.address.startsWith('010.')));
    });
  },
);
