/**
 * @module test/dev-cluster-run-pods
 * `llmisvc dev cluster --run-pods` with `llmisvc controller`: `examples/quickstart.yaml` as a user applies it, and
 * nothing else — the controller renders it, the real controllers and scheduler make its pods, KWOK plays them, the
 * dev cluster runs their containers (vLLM as `llmisvc sim`, the EPP as this CLI with a token of its pod's
 * ServiceAccount, so the rendered RBAC is what it has), Envoy Gateway translates the route and its proxy's Envoy
 * serves it. A completion sent to the URL the service reports comes back from one of its pods; deleting the
 * service stops every process of its pods. `examples/prefill-decode.yaml` answers too: a long prompt is prefilled by
 * a prefill pod and decoded by a decode pod behind llm-d's routing sidecar (played by the dev cluster), and the
 * sidecar sends prompts to no other address, whatever the header says. `examples/multi-node-data-parallel.yaml`
 * answers from its LeaderWorkerSet groups' leaders (made by the real LWS controller), whose workers' headless
 * ranks get no process. A manifest shaped as KServe's CPU P/D sample (v1alpha1, converted by the controller's
 * webhook at a loopback URL; vLLM's CPU image) answers unchanged.
 *
 * What is simulated: the model servers (the simulator stands for vLLM: no GPU here), the kubelet (processes, not
 * containers; KWOK's Ready, not probes), the load balancer (a TCP forward on the Gateway's loopback address).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { parse } from 'yaml';
import type { RunningController } from '../src/controller/index.js';
import { startDevCluster, type DevCluster } from '../src/dev/index.js';
import { KubeClient, type KubeObject, type ResourceRef } from '../src/kube/index.js';
import { logTail } from '../src/process/index.js';
import {
  ensureNamespace,
  freePort,
  installProject,
  SERVICE,
  startController,
  waitFor,
} from './controller-support.js';
import { REPO_ROOT } from './harness/repo.js';

type Service = KubeObject & { status?: { url?: string; conditions?: { type: string; status: string }[] } };

/** An example manifest of the repository, as a user applies it. */
function example(file: string): KubeObject {
  return parse(readFileSync(join(REPO_ROOT, 'examples', file), 'utf8')) as KubeObject;
}

/** The service once it is Ready with a URL. */
function readyService(c: KubeClient, namespace: string, name: string): Promise<Service> {
  return waitFor(
    `${namespace}/${name} to be Ready with a URL`,
    async () => {
      const s = await c.get<Service>(SERVICE, namespace, name);
      const ready = s.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True');
      return ready && s.status?.url ? s : undefined;
    },
    180_000,
  );
}

/**
 * A completion at `target`, asked again until it is answered 200 (a Ready service's processes start at the pod
 * runner's next round, and a new Gateway answers some seconds after its proxy starts); resolves to the pod that
 * answered. `context` adds to the error when it never is.
 */
function completion(
  target: string,
  body: Record<string, unknown>,
  context: () => Promise<string> = () => Promise.resolve(''),
): Promise<string> {
  let last = '';
  return waitFor(
    `a completion at ${target}`,
    async () => {
      try {
        const res = await request(target, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        last = `${res.statusCode}: ${await res.body.text()}`;
        return res.statusCode === 200 ? String(res.headers['x-inference-pod']) : undefined;
      } catch (e) {
        last = (e as Error).message;
        return undefined;
      }
    },
    90_000,
  ).catch(async (error: Error) => {
    throw new Error(`${error.message}; last ${last}${await context()}`);
  });
}

describe('llmisvc dev cluster --run-pods: the quickstart answers at its URL, with nothing but the controller', () => {
  let dir: string;
  let cluster: DevCluster;
  let c: KubeClient;
  let controller: RunningController;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'llmisvc-run-pods-'));
    cluster = await startDevCluster({
      dir,
      crds: true,
      env: process.env,
      // The quickstart's GPUs, the P/D example's 24 and the multi-node example's 16.
      nodes: { cpuNodes: 1, gpuNodes: 2, gpusPerNode: 32 },
      leaderWorkerSet: true,
      runPods: true,
      log: () => undefined,
    });
    c = await KubeClient.create({ kubeconfig: cluster.kubeconfigPath, qps: 1000, burst: 1000 });
    await installProject(c, 'llmisvc-system');
    // The controller outside the cluster serves the CRD conversion (v1alpha1 ⇄ v1alpha2) at a loopback URL, as
    // `llmisvc controller --webhook-url https://127.0.0.1:PORT` does: no Service could reach it here.
    const webhookPort = await freePort();
    controller = await startController({
      kubeconfig: cluster.kubeconfigPath,
      systemNamespace: 'llmisvc-system',
      webhook: {
        port: webhookPort,
        host: '127.0.0.1',
        serviceName: 'llmisvc-webhook',
        secretName: 'llmisvc-webhook-cert',
        webhookConfigurations: [],
        crds: ['llminferenceservices.serving.kserve.io', 'llminferenceserviceconfigs.serving.kserve.io'],
        url: `https://127.0.0.1:${webhookPort}`,
      },
    });
    await c.create(SERVICE, example('quickstart.yaml'));
  });

  after(async () => {
    await controller?.stop();
    c?.close();
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('a completion sent to the service URL is answered by one of its pods, picked by its EPP', async () => {
    const service = await readyService(c, 'default', 'quickstart');
    const url = new URL(service.status!.url!);
    // Port 80 needs root (the load balancer's forward); the proxy's own port answers either way.
    const targets = [`http://${url.hostname}:10080${url.pathname}`];
    if (process.getuid?.() === 0) targets.push(url.href);
    // The service is Ready once KWOK marks its pods Ready; their processes start at the pod runner's next round.
    const workload = await waitFor('a process for each of the four model-server pods and the EPP', () => {
      const keys = [...cluster.podProcesses().keys()].filter((k) =>
        k.startsWith('default/quickstart-kserve-'),
      );
      const servers = keys.filter((k) => !k.includes('router-scheduler')).map((k) => k.split('/')[1]!);
      return servers.length === 4 && keys.length === 5 ? servers : undefined;
    });

    for (const target of targets) {
      const pod = await completion(
        target,
        { model: 'Qwen/Qwen2.5-0.5B-Instruct', prompt: 'hello', max_tokens: 4 },
        async () => {
          const epp = [...cluster.podProcesses()].find(([k]) => k.includes('router-scheduler'))?.[1];
          return `; EPP log:\n${epp ? await logTail(epp.logPath, 20) : '(no EPP process)'}`;
        },
      );
      assert.ok(workload.includes(pod), `${pod} ∈ ${workload.join(', ')}`);
    }

    // The EPP ran as its pod's ServiceAccount: its kubeconfig carries that account's token, and nothing was
    // forbidden to it.
    const [eppKey, epp] = [...cluster.podProcesses()].find(([k]) => k.includes('router-scheduler'))!;
    const kubeconfig = readFileSync(
      join(dir, 'pods', `default_${eppKey.split('/')[1]}`, 'kubeconfig'),
      'utf8',
    );
    assert.match(kubeconfig, /name: default\/quickstart-epp-sa\n/);
    assert.doesNotMatch(readFileSync(epp.logPath, 'utf8'), /forbidden/i);
  });

  it('the P/D example answers: a prefill pod prefills, a decode pod decodes behind the routing sidecar', async () => {
    const POD: ResourceRef = { group: '', version: 'v1', kind: 'Pod', plural: 'pods', namespaced: true };
    await ensureNamespace(c, 'llm');
    await c.create(SERVICE, example('prefill-decode.yaml'));
    const service = await readyService(c, 'llm', 'llama-pd');
    type Pod = KubeObject & { status?: { podIP?: string } };
    const pods = (await c.list<Pod>(POD, 'llm')).items.filter((p) => p.metadata.name.startsWith('llama-pd-'));
    const prefillIps = pods.filter((p) => p.metadata.name.includes('prefill')).map((p) => p.status!.podIP!);
    const decodePods = pods.filter((p) => !/prefill|router-scheduler/.test(p.metadata.name));
    assert.equal(prefillIps.length, 2);
    assert.equal(decodePods.length, 4);
    // Each decode pod: its vLLM as a simulator (a process) and the routing sidecar (served by the dev cluster).
    await waitFor('processes for the 6 model servers and the EPP', () =>
      [...cluster.podProcesses().keys()].filter((k) => k.startsWith('llm/llama-pd-')).length === 7
        ? true
        : undefined,
    );
    const generated = async (ip: string): Promise<number> => {
      const text = await (await request(`http://${ip}:8000/metrics`)).body.text();
      return Number(/^vllm:generation_tokens_total(?:\{[^}]*\})? (\S+)$/m.exec(text)?.[1] ?? NaN);
    };
    // A process started is not yet a server listening: wait until the prefill simulators answer.
    const prefilledBefore = await waitFor('the prefill simulators to answer', async () => {
      try {
        return (await Promise.all(prefillIps.map(generated))).reduce((a, b) => a + b, 0);
      } catch {
        return undefined;
      }
    });

    const url = new URL(service.status!.url!);
    // Long enough that its uncached part passes the P/D threshold (256 tokens).
    const prompt = Array.from({ length: 600 }, (_, i) => `word${i}`).join(' ');
    const pod = await completion(`http://${url.hostname}:10080${url.pathname}`, {
      model: 'meta-llama/Llama-3.1-70B-Instruct',
      prompt,
      max_tokens: 4,
    });
    assert.ok(
      decodePods.some((p) => p.metadata.name === pod),
      `${pod} is a decode pod`,
    );
    const prefilledAfter = (await Promise.all(prefillIps.map(generated))).reduce((a, b) => a + b, 0);
    assert.ok(
      prefilledAfter > prefilledBefore,
      `a prefill pod generated its one token (${prefilledBefore} → ${prefilledAfter})`,
    );

    // Straight at a decode pod's sidecar: the header may name a model server of the namespace, nothing else.
    const decodeIp = decodePods[0]!.status!.podIP!;
    const ask = (prefiller: string) =>
      request(`http://${decodeIp}:8000/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-prefiller-host-port': prefiller },
        body: JSON.stringify({ model: 'meta-llama/Llama-3.1-70B-Instruct', prompt: 'hi', max_tokens: 2 }),
      });
    const apiServer = new URL(cluster.server).host;
    const quickstartPod = (await c.list<Pod>(POD, 'default')).items.find(
      (p) =>
        p.metadata.name.startsWith('quickstart-kserve-') && !p.metadata.name.includes('router-scheduler'),
    );
    for (const target of [
      apiServer,
      '127.0.0.1:22',
      ...(quickstartPod ? [`${quickstartPod.status!.podIP}:8000`] : []),
    ]) {
      const refused = await ask(target);
      assert.equal(refused.statusCode, 403, target);
      assert.match(await refused.body.text(), /not a model server of this pod's namespace/);
    }
    const allowed = await ask(`${prefillIps[0]}:8000`);
    assert.equal(allowed.statusCode, 200, await allowed.body.text());
    await c.delete(SERVICE, 'llm', 'llama-pd');
  });

  it('the multi-node example answers from its group leaders; the workers’ headless ranks get no process', async () => {
    await ensureNamespace(c, 'llm');
    await c.create(SERVICE, example('multi-node-data-parallel.yaml'));
    const service = await readyService(c, 'llm', 'deepseek-dp');
    // 2 groups of a leader and 3 workers, made by the LeaderWorkerSet controller: a process for each leader only.
    const leaders = await waitFor('a process for each group leader and the EPP', () => {
      const keys = [...cluster.podProcesses().keys()].filter((k) => k.startsWith('llm/deepseek-dp-'));
      const servers = keys.filter((k) => !k.includes('router-scheduler')).map((k) => k.split('/')[1]!);
      return keys.length === 3 && servers.length === 2 ? servers : undefined;
    });
    assert.deepEqual(leaders.sort(), ['deepseek-dp-kserve-mn-0', 'deepseek-dp-kserve-mn-1']);
    const url = new URL(service.status!.url!);
    const pod = await completion(`http://${url.hostname}:10080${url.pathname}`, {
      model: 'deepseek-ai/DeepSeek-V2-Lite-Chat',
      prompt: 'hello',
      max_tokens: 4,
    });
    assert.ok(leaders.includes(pod), `${pod} ∈ ${leaders.join(', ')}`);
    await c.delete(SERVICE, 'llm', 'deepseek-dp');
  });

  it('a manifest shaped as KServe’s CPU P/D sample answers unchanged: v1alpha1, vLLM’s CPU image, no namespace', async () => {
    // As KServe's docs/samples/llmisvc/opt-125m-cpu write it: served API version, no command (the presets' script
    // runs vLLM), an image that is not vllm/vllm-openai, applied to the current namespace.
    const manifest = parse(`
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceService
metadata:
  name: opt-pd
spec:
  model:
    uri: hf://facebook/opt-125m
    name: facebook/opt-125m
  router:
    scheduler: {}
    route: {}
    gateway: {}
  template:
    containers:
      - name: main
        image: public.ecr.aws/q9t5s3a7/vllm-cpu-release-repo:v0.19.0
        securityContext:
          runAsNonRoot: false
        env:
          - { name: VLLM_CPU_KVCACHE_SPACE, value: "1" }
        resources:
          limits: { cpu: '2', memory: 16Gi }
          requests: { cpu: '1', memory: 8Gi }
  prefill:
    template:
      containers:
        - name: main
          image: public.ecr.aws/q9t5s3a7/vllm-cpu-release-repo:v0.19.0
          resources:
            limits: { cpu: '2', memory: 16Gi }
            requests: { cpu: '1', memory: 8Gi }
`) as KubeObject;
    await c.create(
      { ...SERVICE, version: 'v1alpha1' },
      { ...manifest, metadata: { name: 'opt-pd', namespace: 'default' } },
    );
    const service = await readyService(c, 'default', 'opt-pd');
    // One decode pod (its vLLM and the routing sidecar) and one prefill pod, and the EPP.
    await waitFor('processes for the 2 model servers and the EPP', () =>
      [...cluster.podProcesses().keys()].filter((k) => k.startsWith('default/opt-pd-')).length === 3
        ? true
        : undefined,
    );
    const url = new URL(service.status!.url!);
    const pod = await completion(`http://${url.hostname}:10080${url.pathname}`, {
      model: 'facebook/opt-125m',
      prompt: Array.from({ length: 600 }, (_, i) => `token${i}`).join(' '),
      max_tokens: 3,
    });
    assert.match(pod, /^opt-pd-kserve-(?!prefill)/);
    await c.delete(SERVICE, 'default', 'opt-pd');
  });

  it('a pod asking for anything else gets no process: another llmisvc subcommand, a pod env, a host file, an argument no process takes', async () => {
    const hostile = (name: string, command: string[], args: string[] = []) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: 'default' },
      spec: {
        containers: [
          {
            name: 'main',
            image: 'ghcr.io/llmisvc/llmisvc:0.1.0',
            command,
            args,
            env: [{ name: 'NODE_OPTIONS', value: '--require /tmp/evil.js' }],
          },
        ],
      },
    });
    const POD: ResourceRef = { group: '', version: 'v1', kind: 'Pod', plural: 'pods', namespaced: true };
    await c.create(POD, hostile('up', ['llmisvc', 'up']));
    await c.create(POD, hostile('epp-file', ['llmisvc', 'epp'], ['--config-file', '/etc/shadow']));
    // A vLLM whose served name no process could be given (spawn refuses an argument over 128 KiB).
    await c.create(POD, {
      ...hostile('aaa-huge', []),
      spec: {
        containers: [
          {
            name: 'main',
            image: 'vllm/vllm-openai:v0.11.0',
            args: ['--served-model-name', 'x'.repeat(200_000)],
          },
        ],
      },
    });
    const names = ['up', 'epp-file', 'aaa-huge'];
    await waitFor('the pods Running', async () => {
      const pods = await Promise.all(
        names.map((n) => c.get<KubeObject & { status?: { phase?: string } }>(POD, 'default', n)),
      );
      return pods.every((p) => p.status?.phase === 'Running') ? true : undefined;
    });
    // Two rounds of the pod runner.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    assert.deepEqual(
      [...cluster.podProcesses().keys()].filter((k) => names.some((n) => k.startsWith(`default/${n}/`))),
      [],
    );
    // The runner goes on with the other pods: the quickstart's processes still run.
    assert.ok([...cluster.podProcesses().keys()].some((k) => k.startsWith('default/quickstart-')));
    for (const name of names) await c.delete(POD, 'default', name);
  });

  it('deleting the service stops its pods’ processes', async () => {
    const processes = [...cluster.podProcesses()].filter(([k]) => k.startsWith('default/quickstart-'));
    assert.ok(processes.length >= 5);
    await c.delete(SERVICE, 'default', 'quickstart');
    await waitFor(
      'the pods’ processes to stop',
      () => (processes.every(([, p]) => p.hasExited) ? true : undefined),
      120_000,
    );
    assert.equal(
      [...cluster.podProcesses().keys()].filter((k) => k.startsWith('default/quickstart-')).length,
      0,
    );
  });
});
