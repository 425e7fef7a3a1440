/**
 * @module bench/controller
 * `npm run bench:controller`: how long the controller takes to converge N LLMInferenceServices (default 1,000, the
 * examples' topologies in rotation) on a real API server, and how many API writes it makes in the idle minute after
 * (target: 0). Starts its own etcd + kube-apiserver (KUBEBUILDER_ASSETS or the per-machine cache) and writes a report
 * to bench/out/controller/ (raw; curated summary in bench/results/controller/README.md).
 *
 *   npm run bench:controller -- [--services 1000] [--idle-seconds 60] [--workers 4] [--qps 100]
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { parseAllDocuments } from 'yaml';
import { CONFIG_RESOURCE, SERVICE_RESOURCE, defaultEngine, runController } from '../src/controller/index.js';
import { PROJECT_CRD_SET, startDevApiServer } from '../src/dev/index.js';
import { CORE_RESOURCES, Informer, KubeClient, type KubeObject } from '../src/kube/index.js';
import { PRESET_DIR } from '../src/presets/index.js';
import { DEFAULT_RENDER_OPTIONS } from '../src/render/index.js';
import { rawOutputDir } from './output.js';

const { values } = parseArgs({
  options: {
    services: { type: 'string', default: '1000' },
    'idle-seconds': { type: 'string', default: '60' },
    workers: { type: 'string', default: '4' },
    // The CLI's default client-side limit (--kube-api-qps 100, --kube-api-burst 200).
    qps: { type: 'string', default: '100' },
  },
});
const count = Number(values.services);
const idleSeconds = Number(values['idle-seconds']);

type Service = KubeObject & {
  status?: { observedGeneration?: number; conditions?: { type: string; status: string }[] };
};

const root = fileURLToPath(new URL('../..', import.meta.url));

function readYaml(path: string): KubeObject[] {
  return parseAllDocuments(readFileSync(path, 'utf8'))
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => Boolean(o));
}

function log(message: string): void {
  console.log(`[bench:controller] ${message}`);
}

const dir = await mkdtemp(join(os.tmpdir(), 'llmisvc-bench-controller-'));
log('starting etcd + kube-apiserver');
const server = await startDevApiServer({
  dir,
  crds: [
    PROJECT_CRD_SET,
    'gateway-api',
    'inference-extension',
    'inference-extension-v1alpha2',
    'leader-worker-set',
  ],
  env: process.env,
  log: (m) => log(`  ${m}`),
  // Room for a workload Service per LLMInferenceService (the dev server's default /24 holds 254).
  apiServerArgs: ['--service-cluster-ip-range=10.0.0.0/16'],
});
const admin = await KubeClient.create({ kubeconfig: server.kubeconfigPath, qps: 2000, burst: 2000 });
try {
  const sys = 'llmisvc-system';
  // The project's CRDs came with the API server; the shipped presets go into the system namespace.
  const ns = `bench-${Date.now().toString(36)}`;
  for (const name of [sys, ns])
    await admin.create(CORE_RESOURCES.namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  for (const file of readdirSync(PRESET_DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml'))
    for (const preset of readYaml(join(PRESET_DIR, file)))
      await admin.apply(
        CONFIG_RESOURCE,
        { ...preset, metadata: { ...preset.metadata, namespace: sys } },
        { fieldManager: 'bench', force: true },
      );
  const templates = readdirSync(join(root, 'examples'))
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => readYaml(join(root, 'examples', f))[0]!);
  const services = SERVICE_RESOURCE;

  const running = await runController({
    kube: { kubeconfig: server.kubeconfigPath, qps: Number(values.qps), burst: 2 * Number(values.qps) },
    engine: defaultEngine({
      ...DEFAULT_RENDER_OPTIONS,
      systemNamespace: sys,
      gateway: { ...DEFAULT_RENDER_OPTIONS.gateway, namespace: sys },
    }),
    logger: pino({ level: 'silent' }),
    namespace: ns,
    systemNamespace: sys,
    leaderElect: false,
    probeHost: '127.0.0.1',
    workers: Number(values.workers),
    resyncMs: 0,
  });
  // The admin watches the services to see convergence without polling the API.
  const watcher = new Informer<Service>(admin, SERVICE_RESOURCE, { namespace: ns });
  watcher.start();
  await watcher.waitForSync();

  log(`creating ${count} services (${templates.length} topologies in rotation)`);
  const start = Date.now();
  const queue = Array.from({ length: count }, (_, i) => i);
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
        const t = templates[i % templates.length]!;
        await admin.apply(
          services,
          {
            ...t,
            metadata: {
              name: `svc-${String(i).padStart(4, '0')}-${t.metadata.name}`.slice(0, 50),
              namespace: ns,
            },
          },
          { fieldManager: 'bench', force: true },
        );
      }
    }),
  );
  const created = Date.now();
  log(`created in ${((created - start) / 1000).toFixed(1)} s; waiting for convergence`);
  const converged = (s: Service): boolean =>
    s.status?.observedGeneration === s.metadata.generation &&
    (s.status?.conditions ?? []).some((c) => c.type === 'PresetsCombined' && c.status === 'True');
  let last = 0;
  for (;;) {
    const done = watcher.list(converged).length;
    if (done === count && running.controller.queue.length === 0) break;
    if (Date.now() - last > 10_000) {
      log(`  ${done}/${count} converged, queue ${running.controller.queue.length}`);
      last = Date.now();
    }
    await sleep(200);
  }
  const convergedAt = Date.now();
  const writesAtConvergence = running.client.writes();
  const requestsAtConvergence = Object.fromEntries(running.client.counts);
  log(`converged in ${((convergedAt - start) / 1000).toFixed(1)} s; idling ${idleSeconds} s`);
  await sleep(idleSeconds * 1000);
  const idleWrites = running.client.writes() - writesAtConvergence;
  const reconciles = (await running.controller.metrics.reconciles.get()).values.map((v) => ({
    result: v.labels['result'],
    count: v.value,
  }));
  const duration = (await running.controller.metrics.reconcileDuration.get()).values;
  const sum = duration.find((v) => v.metricName?.endsWith('_sum'))?.value ?? 0;
  const n = duration.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
  const children = running.controller
    .informers()
    .map((i) =>
      i.resource.kind === 'LLMInferenceService' ||
      i.resource.kind === 'LLMInferenceServiceConfig' ||
      i.resource.kind === 'Gateway'
        ? 0
        : i.size,
    )
    .reduce((a, b) => a + b, 0);
  await watcher.stop();
  await running.stop();

  const result = {
    benchmark: 'controller convergence and idle writes',
    command: `npm run bench:controller -- --services ${count} --idle-seconds ${idleSeconds} --workers ${values.workers} --qps ${values.qps}`,
    date: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
      kubeApiserver: execFileSync(server.assets.kubeApiserver, ['--version'], { encoding: 'utf8' }).trim(),
    },
    clientQps: Number(values.qps),
    clientBurst: Number(values.qps) * 2,
    loadDuringRun: os.loadavg(),
    services: count,
    topologies: templates.map((t) => t.metadata.name),
    childObjects: children,
    createSeconds: (created - start) / 1000,
    convergeSeconds: (convergedAt - start) / 1000,
    servicesPerSecond: count / ((convergedAt - start) / 1000),
    apiRequestsToConvergence: requestsAtConvergence,
    writesToConvergence: writesAtConvergence,
    idleSeconds,
    idleWrites,
    reconciles,
    meanReconcileMs: n ? (sum / n) * 1000 : 0,
  };
  const stamp = result.date.slice(0, 10);
  const file = join(rawOutputDir('controller'), `controller-${stamp}-${count}.json`);
  await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
  log(
    `${count} services → ${children} children in ${result.convergeSeconds.toFixed(1)} s; ${idleWrites} writes in ${idleSeconds} idle s`,
  );
  log(`report: ${file}`);
} finally {
  admin.close();
  await server.stop();
  await rm(dir, { recursive: true, force: true });
}
