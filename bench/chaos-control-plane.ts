/**
 * @module bench/chaos-control-plane
 * The control-plane scenarios of `npm run chaos`, each on its own etcd + kube-apiserver (src/dev) with
 * `llmisvc controller` running as a child process:
 *
 * - `apiserver`: kube-apiserver and etcd SIGKILLed and started again (same data dir, same ports) while 200 services
 *   are created and updated;
 * - `controller`: the controller SIGKILLed while it rolls out 200 new services, then started again;
 * - `leader`: two replicas with leader election; the leader SIGKILLed while it rolls out an update of 200 services.
 *
 * Afterwards every service's children are compared with what `renderService` makes of the service as stored (no
 * missing child, no orphan, no duplicate, no stale field), every service's latest generation must be observed and
 * carry the writer's last update, and an idle window counts the controllers' API writes (their own
 * `llmisvc_controller_api_requests_total`) and the children whose resourceVersion moved (both should be 0).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toTypedObject, type LLMInferenceService } from '../src/api/index.js';
import { CANDIDATE_CHILD_KINDS, CONFIG_RESOURCE, SERVICE_RESOURCE } from '../src/controller/index.js';
import {
  createNamespace,
  installProject,
  readYaml,
  renderOptionsFor as renderOptions,
  startDevApiServer,
  type DevApiServer,
} from '../src/dev/index.js';
import { Discovery, KubeClient, type KubeObject, type ResourceRef } from '../src/kube/index.js';
import { renderService } from '../src/render/index.js';
import { load, log, root, sleep, startCli, type CliProcess } from './chaos-common.js';
import { freeLoopbackPorts } from '../src/process/index.js';

interface Replica {
  proc: CliProcess;
  stopped: boolean;
  kill(): Promise<void>;
  stop(): Promise<void>;
}
import type { ScenarioResult } from './chaos-serving.js';

const CRDS = [
  'gateway-api',
  'inference-extension',
  'inference-extension-v1alpha2',
  'leader-worker-set',
] as const;
/**
 * Room for a workload Service per LLMInferenceService (the dev server's default /24 holds 254). ImageVolume is on in
 * the dev server by default: the `oci+native://` models here are image volumes.
 */
const API_SERVER_ARGS = ['--service-cluster-ip-range=10.0.0.0/16'];
const SYSTEM_NAMESPACE = 'llmisvc-system';
const WRITE_VERBS = new Set(['create', 'update', 'patch', 'apply', 'delete']);

type Service = KubeObject & {
  spec?: Record<string, unknown>;
  status?: { observedGeneration?: number };
};

interface Options {
  services: number;
  idleSeconds: number;
  convergeTimeoutMs: number;
  logDir: string;
}

/** The services: the examples' topologies in rotation, with `CHAOS_ROUND=round` in the main container's env. */
function serviceObject(templates: KubeObject[], i: number, namespace: string, round: number): KubeObject {
  const t = structuredClone(templates[i % templates.length]!) as Service;
  const spec = (t.spec ??= {});
  const template = (spec['template'] ??= { containers: [] }) as { containers?: Record<string, unknown>[] };
  const containers = (template.containers ??= []);
  let main = containers.find((c) => c['name'] === 'main');
  if (!main) containers.push((main = { name: 'main' }));
  const env = ((main['env'] as { name: string; value: string }[] | undefined) ?? []).filter(
    (e) => e.name !== 'CHAOS_ROUND',
  );
  main['env'] = [...env, { name: 'CHAOS_ROUND', value: String(round) }];
  return {
    ...t,
    metadata: { name: serviceName(templates, i), namespace },
  };
}

function serviceName(templates: KubeObject[], i: number): string {
  return `s${String(i).padStart(3, '0')}-${templates[i % templates.length]!.metadata.name}`.slice(0, 40);
}

function roundOf(service: Service): number | undefined {
  const containers = ((service.spec?.['template'] as { containers?: Record<string, unknown>[] } | undefined)
    ?.containers ?? []) as { name?: string; env?: { name: string; value: string }[] }[];
  const value = containers.find((c) => c.name === 'main')?.env?.find((e) => e.name === 'CHAOS_ROUND')?.value;
  return value === undefined ? undefined : Number(value);
}

/** Applies until the API answers (an outage makes it retry); resolves when this write is acknowledged. */
async function applyUntilAcknowledged(
  client: KubeClient,
  ref: ResourceRef,
  object: KubeObject,
): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      await client.apply(ref, object, { fieldManager: 'chaos-writer', force: true });
      return attempt;
    } catch {
      await sleep(Math.min(1000, 100 * attempt));
    }
  }
}

const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    verbs: ["create", "update", "patch", "delete", "deletecollection"]
  - level: None
`;

/**
 * Writes the controllers made between two wall-clock times, by resource, from the API server's audit log (user
 * agent \`llmisvc-controller/IDENTITY\`; this bench's own writes use another).
 */
function auditedControllerWrites(path: string, from: number, to: number): Record<string, number> {
  const counts: Record<string, number> = {};
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return counts;
  }
  for (const line of text.split('\n')) {
    if (!line.includes('llmisvc-controller/')) continue;
    try {
      const e = JSON.parse(line) as {
        stage: string;
        userAgent?: string;
        stageTimestamp: string;
        objectRef?: { resource?: string; subresource?: string };
      };
      if (e.stage !== 'ResponseComplete' || !e.userAgent?.startsWith('llmisvc-controller/')) continue;
      const t = Date.parse(e.stageTimestamp);
      if (t < from || t > to) continue;
      const key = `${e.objectRef?.resource ?? '?'}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ''}`;
      counts[key] = (counts[key] ?? 0) + 1;
    } catch {
      // a line cut by a SIGKILL
    }
  }
  return counts;
}

/** Sum of the controller's API writes from its /metrics (undefined when it does not answer). */
async function controllerWrites(probePort: number): Promise<number | undefined> {
  try {
    const text = await (
      await fetch(`http://127.0.0.1:${probePort}/metrics`, { signal: AbortSignal.timeout(3000) })
    ).text();
    let total = 0;
    for (const m of text.matchAll(/^llmisvc_controller_api_requests_total\{([^}]*)\} (\S+)$/gm)) {
      const verb = /verb="([^"]+)"/.exec(m[1]!)?.[1];
      if (verb && WRITE_VERBS.has(verb)) total += Number(m[2]);
    }
    return total;
  } catch {
    return undefined;
  }
}

async function isLeader(probePort: number): Promise<boolean> {
  try {
    const text = await (
      await fetch(`http://127.0.0.1:${probePort}/metrics`, { signal: AbortSignal.timeout(3000) })
    ).text();
    return /^llmisvc_controller_leader(\{[^}]*\})? 1$/m.test(text);
  } catch {
    return false;
  }
}

interface ChildCheck {
  services: number;
  /** Services whose latest generation is not observed yet. */
  unobserved: number;
  /** Services whose stored spec lacks the writer's last acknowledged update. */
  lostUpdates: number;
  /** Services the renderer rejects (should be 0: the examples are valid). */
  renderErrors: number;
  desiredChildren: number;
  liveChildren: number;
  missing: string[];
  /** Live children no existing service owns. */
  orphans: string[];
  /** Live children owned by an existing service that the renderer does not produce for it (duplicates, leftovers). */
  extra: string[];
  /** Desired children whose live object differs in a rendered field. */
  stale: string[];
  /** resourceVersion of every live child, by id. */
  versions: Map<string, string>;
}

/**
 * The first path where `want` is not contained in `have` (every field of `want` in `have` with the same value, lists
 * item by item), or undefined when it is.
 */
function firstDifference(want: unknown, have: unknown, path = ''): string | undefined {
  if (want === null || typeof want !== 'object') {
    if (typeof want === 'number' && typeof have === 'string' && String(want) === have) return undefined;
    return want === have ? undefined : `${path} (${JSON.stringify(want)} vs ${JSON.stringify(have)})`;
  }
  // The API server drops empty lists and objects (omitempty).
  if (have === undefined && Object.keys(want).length === 0) return undefined;
  if (Array.isArray(want)) {
    if (!Array.isArray(have) || want.length !== have.length)
      return `${path} (length ${want.length} vs ${Array.isArray(have) ? have.length : 'none'}: ${JSON.stringify(have)?.slice(0, 300)})`;
    for (let i = 0; i < want.length; i++) {
      const d = firstDifference(want[i], have[i], `${path}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  if (have === null || typeof have !== 'object') return `${path} (missing)`;
  for (const [k, v] of Object.entries(want as Record<string, unknown>)) {
    if (v === undefined) continue;
    const d = firstDifference(v, (have as Record<string, unknown>)[k], `${path}.${k}`);
    if (d) return d;
  }
  return undefined;
}

/** Compares every service's live children with `renderService` of the service as stored. */
async function checkChildren(
  client: KubeClient,
  namespace: string,
  expectedRounds: Map<string, number>,
): Promise<ChildCheck> {
  const discovery = new Discovery(client);
  const apiVersions = await discovery.servedGroupVersions();
  const services = (await client.list<Service>(SERVICE_RESOURCE, namespace)).items;
  const configs = [
    ...(await client.list<KubeObject>(CONFIG_RESOURCE, SYSTEM_NAMESPACE)).items,
    ...(await client.list<KubeObject>(CONFIG_RESOURCE, namespace)).items,
  ].flatMap((c) => {
    try {
      const typed = toTypedObject({ object: c, source: 'the cluster' });
      return typed.kind === 'LLMInferenceServiceConfig' ? [typed] : [];
    } catch {
      return [];
    }
  });
  const id = (o: KubeObject) => `${o.apiVersion.split('/')[0]}/${o.kind}/${o.metadata.name}`;
  const live = new Map<string, KubeObject>();
  for (const kind of CANDIDATE_CHILD_KINDS) {
    const ref = await discovery.resourceFor(kind.apiVersion, kind.kind);
    if (!ref) continue;
    for (const item of (await client.list<KubeObject>(ref, namespace)).items)
      live.set(id({ ...item, apiVersion: kind.apiVersion, kind: kind.kind }), {
        ...item,
        apiVersion: kind.apiVersion,
        kind: kind.kind,
      });
  }
  const uids = new Set(services.map((s) => s.metadata.uid));
  const desired = new Map<string, { object: KubeObject; owner: string }>();
  const result: ChildCheck = {
    services: services.length,
    unobserved: 0,
    lostUpdates: 0,
    renderErrors: 0,
    desiredChildren: 0,
    liveChildren: live.size,
    missing: [],
    orphans: [],
    extra: [],
    stale: [],
    versions: new Map([...live].map(([k, v]) => [k, v.metadata.resourceVersion ?? ''])),
  };
  for (const service of services) {
    if (service.status?.observedGeneration !== service.metadata.generation) result.unobserved++;
    const expected = expectedRounds.get(service.metadata.name);
    if (expected !== undefined && roundOf(service) !== expected) result.lostUpdates++;
    try {
      const typed = toTypedObject({
        object: service,
        source: `namespace ${namespace}`,
      }) as LLMInferenceService;
      const out = renderService({
        service: typed,
        configs,
        apiVersions,
        options: renderOptions(SYSTEM_NAMESPACE),
      });
      for (const child of out.children as unknown as KubeObject[])
        desired.set(id(child), { object: child, owner: service.metadata.uid! });
    } catch {
      result.renderErrors++;
    }
  }
  result.desiredChildren = desired.size;
  for (const [key, { object }] of desired) {
    const have = live.get(key);
    if (!have) result.missing.push(key);
    else {
      const { metadata: _m, status: _s, ...wantBody } = object as KubeObject & { status?: unknown };
      const { metadata: _hm, ...haveBody } = have;
      const d =
        firstDifference(object.metadata.labels ?? {}, have.metadata.labels ?? {}, '.metadata.labels') ??
        firstDifference(wantBody, haveBody);
      if (d) result.stale.push(`${key} ${d}`);
    }
  }
  for (const [key, object] of live) {
    if (desired.has(key)) continue;
    const owned = (object.metadata.ownerReferences ?? []).some((r) => uids.has(r.uid));
    (owned ? result.extra : result.orphans).push(key);
  }
  return result;
}

function converged(c: ChildCheck, count: number): boolean {
  return (
    c.services === count &&
    c.unobserved === 0 &&
    c.lostUpdates === 0 &&
    c.missing.length === 0 &&
    c.orphans.length === 0 &&
    c.extra.length === 0 &&
    c.stale.length === 0
  );
}

function brief(c: ChildCheck): Record<string, unknown> {
  return {
    services: c.services,
    unobserved: c.unobserved,
    lostUpdates: c.lostUpdates,
    renderErrors: c.renderErrors,
    desiredChildren: c.desiredChildren,
    liveChildren: c.liveChildren,
    missing: c.missing.length,
    orphans: c.orphans.length,
    extraOrDuplicate: c.extra.length,
    stale: c.stale.length,
    samples: [
      ...c.missing.slice(0, 2),
      ...c.orphans.slice(0, 2),
      ...c.extra.slice(0, 2),
      ...c.stale.slice(0, 2),
    ],
  };
}

/** Polls the check until it passes or `timeoutMs` passes; returns the last check and when it passed. */
async function waitConverged(
  S: string,
  client: KubeClient,
  namespace: string,
  count: number,
  rounds: Map<string, number>,
  timeoutMs: number,
): Promise<{ check: ChildCheck; at: number | undefined }> {
  const deadline = performance.now() + timeoutMs;
  let lastLog = 0;
  for (;;) {
    const check = await checkChildren(client, namespace, rounds).catch(() => undefined);
    if (check && converged(check, count)) return { check, at: performance.now() };
    if (performance.now() > deadline)
      return { check: check ?? (await checkChildren(client, namespace, rounds)), at: undefined };
    if (check && performance.now() - lastLog > 10_000) {
      lastLog = performance.now();
      log(S, `  not converged yet: ${JSON.stringify(brief(check))}`);
    }
    await sleep(1000);
  }
}

function controllerArgs(
  kubeconfig: string,
  namespace: string,
  probePort: number,
  leaderElect: boolean,
): string[] {
  return [
    'controller',
    '--kubeconfig',
    kubeconfig,
    '--namespace',
    namespace,
    '--system-namespace',
    SYSTEM_NAMESPACE,
    '--no-webhook',
    '--probe-port',
    String(probePort),
    '--log-level',
    'info',
    ...(leaderElect
      ? [
          '--leader-elect',
          '--leader-elect-lease-duration',
          '6s',
          '--leader-elect-renew-deadline',
          '4s',
          '--leader-elect-retry-period',
          '1s',
        ]
      : []),
  ];
}

export async function controlPlaneScenario(scenario: string, opts: Options): Promise<ScenarioResult> {
  const S = scenario;
  const loadStart = load();
  const dir = join(opts.logDir, 'apiserver');
  const auditLog = join(opts.logDir, 'audit.log');
  const policy = join(opts.logDir, 'audit-policy.yaml');
  writeFileSync(policy, AUDIT_POLICY);
  const apiServerArgs = [...API_SERVER_ARGS, `--audit-policy-file=${policy}`, `--audit-log-path=${auditLog}`];
  let server: DevApiServer = await startDevApiServer({
    dir,
    crds: [...CRDS],
    env: process.env,
    log: (m) => log(S, `  ${m}`),
    apiServerArgs,
  });
  const kubeVersion = execFileSync(server.assets.kubeApiserver, ['--version'], { encoding: 'utf8' }).trim();
  const admin = await KubeClient.create({
    userAgent: 'chaos-writer',
    kubeconfig: server.kubeconfigPath,
    qps: 2000,
    burst: 2000,
    requestTimeoutMs: 15_000,
  });
  const controllers: Replica[] = [];
  try {
    await installProject(admin, SYSTEM_NAMESPACE);
    const ns = await createNamespace(admin, 'chaos');
    const templates = readdirSync(join(root, 'examples'))
      .filter((f) => f.endsWith('.yaml'))
      .sort()
      .map((f) => readYaml(join(root, 'examples', f))[0]!);
    const services = SERVICE_RESOURCE;
    const count = opts.services;
    const rounds = new Map<string, number>();
    const probePorts = await freeLoopbackPorts(2);
    /** Exits nobody asked for; each one is restarted after 1 s, as a kubelet would (first back-off 10 s). */
    const unexpectedExits: string[] = [];
    /** A controller replica, started again when it exits by itself; resolves once it answers /readyz. */
    const startController = async (k: number, leaderElect: boolean): Promise<Replica> => {
      const logPath = join(opts.logDir, `controller-${k}.log`);
      const replica: Replica = {
        proc: undefined as unknown as CliProcess,
        stopped: false,
        async kill() {
          replica.stopped = true;
          await replica.proc.kill();
        },
        async stop() {
          replica.stopped = true;
          await replica.proc.stop();
        },
      };
      const launch = () => {
        const c = startCli(controllerArgs(server.kubeconfigPath, ns, probePorts[k]!, leaderElect), logPath);
        replica.proc = c;
        void c.exited.then(async ({ code, signal }) => {
          if (replica.stopped) return;
          const tail = readFileSync(logPath, 'utf8').trim().split('\n').slice(-2).join(' | ').slice(0, 300);
          unexpectedExits.push(`replica ${k} (pid ${c.pid}) exited (${signal ?? `code ${code}`}): ${tail}`);
          log(
            S,
            `controller replica ${k} exited by itself (${signal ?? `code ${code}`}); restarting it in 1 s`,
          );
          await sleep(1000);
          if (!replica.stopped) launch();
        });
      };
      launch();
      controllers.push(replica);
      for (let i = 0; i < 600; i++) {
        const ok = await fetch(`http://127.0.0.1:${probePorts[k]}/readyz`)
          .then((r) => r.ok)
          .catch(() => false);
        if (ok) break;
        await sleep(100);
      }
      return replica;
    };
    /** Writes `round` to every service with 8 writers; `onProgress(n)` after each acknowledged write. */
    const writeRound = async (round: number, onProgress?: (n: number) => Promise<void> | void) => {
      const queue = Array.from({ length: count }, (_, i) => i);
      let done = 0;
      let retries = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
            retries +=
              (await applyUntilAcknowledged(admin, services, serviceObject(templates, i, ns, round))) - 1;
            rounds.set(serviceName(templates, i), round);
            done++;
            await onProgress?.(done);
          }
        }),
      );
      return retries;
    };
    const figures: Record<string, unknown> = {
      kubeApiserver: kubeVersion,
      services: count,
      topologies: templates.length,
    };
    const summary: string[] = [];
    const problems: string[] = [];
    let faultAt = NaN;
    let recoveredAt = NaN;
    let activeProbe = probePorts[0]!;
    let writesDoneAt = NaN;

    if (scenario === 'apiserver') {
      await startController(0, false);
      let killed: Promise<void> | undefined;
      const t0 = performance.now();
      const kill = async () => {
        faultAt = performance.now();
        const pids = { ...server.pids };
        process.kill(pids.kubeApiserver, 'SIGKILL');
        process.kill(pids.etcd, 'SIGKILL');
        log(S, `SIGKILL kube-apiserver (${pids.kubeApiserver}) and etcd (${pids.etcd}) at load ${load()}`);
        await sleep(2000);
        server = await startDevApiServer({
          dir,
          crds: false,
          env: process.env,
          assets: server.assets,
          log: (m) => log(S, `  ${m}`),
          apiServerArgs,
        });
        recoveredAt = performance.now();
        log(
          S,
          `etcd + kube-apiserver serving again ${Math.round(recoveredAt - faultAt)} ms after the kill (same ports: ${server.server})`,
        );
      };
      let retries = await writeRound(0);
      // The kill lands in the middle of the first update round.
      retries += await writeRound(1, (n) => {
        if (n === Math.floor(count / 2)) killed ??= kill();
      });
      await killed;
      retries += await writeRound(2);
      writesDoneAt = performance.now();
      figures['writerRetriesDuringOutage'] = retries;
      figures['writesSeconds'] = Math.round(writesDoneAt - t0) / 1000;
    } else if (scenario === 'controller') {
      const first = await startController(0, false);
      const t0 = performance.now();
      await writeRound(0);
      writesDoneAt = performance.now();
      // Mid-rollout: once a third of the services are observed, kill it.
      for (;;) {
        const list = (await admin.list<Service>(services, ns)).items;
        const observed = list.filter((s) => s.status?.observedGeneration === s.metadata.generation).length;
        if (observed >= count / 3) {
          figures['observedAtKill'] = observed;
          break;
        }
        await sleep(200);
      }
      faultAt = performance.now();
      await first.kill();
      log(
        S,
        `SIGKILL llmisvc controller (pid ${first.proc.pid}) with ${String(figures['observedAtKill'])}/${count} observed, load ${load()}`,
      );
      await startController(1, false);
      activeProbe = probePorts[1]!;
      recoveredAt = performance.now();
      figures['writesSeconds'] = Math.round(writesDoneAt - t0) / 1000;
    } else if (scenario === 'leader') {
      const [a, b] = await Promise.all([startController(0, true), startController(1, true)]);
      await writeRound(0);
      const initial = await waitConverged(S, admin, ns, count, rounds, opts.convergeTimeoutMs);
      if (!initial.at) throw new Error(`no initial convergence: ${JSON.stringify(brief(initial.check))}`);
      const leaderIndex = (await isLeader(probePorts[0]!)) ? 0 : (await isLeader(probePorts[1]!)) ? 1 : -1;
      if (leaderIndex < 0) throw new Error('no controller reports itself leader');
      const leader = leaderIndex === 0 ? a : b;
      activeProbe = probePorts[1 - leaderIndex]!;
      log(
        S,
        `initial rollout converged; leader is replica ${leaderIndex} (pid ${leader.proc.pid}); rolling out an update`,
      );
      await writeRound(1);
      writesDoneAt = performance.now();
      for (;;) {
        const list = (await admin.list<Service>(services, ns)).items;
        const observed = list.filter((s) => s.status?.observedGeneration === s.metadata.generation).length;
        if (observed >= count / 3) {
          figures['updateObservedAtKill'] = observed;
          break;
        }
        await sleep(200);
      }
      faultAt = performance.now();
      await leader.kill();
      log(
        S,
        `SIGKILL leader (pid ${leader.proc.pid}) with ${String(figures['updateObservedAtKill'])}/${count} updates observed, load ${load()}`,
      );
      // It comes back, as a Pod would, and becomes the standby.
      const restarted = startController(leaderIndex, true);
      for (let i = 0; i < 300 && !(await isLeader(activeProbe)); i++) await sleep(100);
      // Recovery = the standby leads.
      recoveredAt = performance.now();
      figures['standbyLeaderAfterMs'] = (await isLeader(activeProbe))
        ? Math.round(recoveredAt - faultAt)
        : null;
      await restarted;
      figures['leaseDurationSeconds'] = 6;
    }

    const result = await waitConverged(S, admin, ns, count, rounds, opts.convergeTimeoutMs);
    const at = result.at;
    figures['convergedAfterFaultSeconds'] = at ? Math.round(at - faultAt) / 1000 : null;
    figures['convergedAfterRecoverySeconds'] = at ? Math.round(at - recoveredAt) / 1000 : null;
    figures['convergedAfterLastWriteSeconds'] = at ? Math.round(at - writesDoneAt) / 1000 : null;
    figures['recoverySeconds'] = Math.round(recoveredAt - faultAt) / 1000;
    figures['check'] = brief(result.check);
    if (!at)
      problems.push(
        `not converged within ${opts.convergeTimeoutMs / 1000} s: ${JSON.stringify(brief(result.check))}`,
      );
    log(
      S,
      `converged ${String(figures['convergedAfterRecoverySeconds'])} s after recovery: ${JSON.stringify(brief(result.check))}`,
    );

    // Idle: nothing changes, so no controller should write and no child should move.
    await sleep(3000); // a status write racing the last check settles first
    const idleFrom = Date.now();
    const before = await Promise.all(probePorts.map((p) => controllerWrites(p)));
    const versionsBefore = (await checkChildren(admin, ns, rounds)).versions;
    await sleep(opts.idleSeconds * 1000);
    const after = await Promise.all(probePorts.map((p) => controllerWrites(p)));
    await sleep(1000); // the audit log is written as requests complete
    const audited = auditedControllerWrites(auditLog, idleFrom, idleFrom + opts.idleSeconds * 1000);
    const auditedNonLease = Object.entries(audited)
      .filter(([r]) => r !== 'leases')
      .reduce((n, [, c]) => n + c, 0);
    const final = await checkChildren(admin, ns, rounds);
    let moved = 0;
    for (const [k, v] of final.versions) if (versionsBefore.get(k) !== v) moved++;
    const idleWrites = after.reduce<number>((sum, w, i) => sum + ((w ?? 0) - (before[i] ?? w ?? 0)), 0);
    figures['idleSeconds'] = opts.idleSeconds;
    figures['idleControllerWritesByMetrics'] = idleWrites;
    figures['idleControllerWritesByAuditLog'] = audited;
    figures['idleChildrenResourceVersionsMoved'] = moved;
    figures['finalCheck'] = brief(final);
    figures['activeControllerWritesTotal'] = await controllerWrites(activeProbe);
    figures['controllerExitsNobodyAskedFor'] = unexpectedExits;
    if (unexpectedExits.length)
      problems.push(
        `the controller exited by itself ${unexpectedExits.length} time(s): ${unexpectedExits[0]}`,
      );
    if (!converged(final, count)) problems.push(`not converged at the end: ${JSON.stringify(brief(final))}`);
    if (auditedNonLease)
      problems.push(
        `${auditedNonLease} controller writes other than Lease renewals in the idle window: ${JSON.stringify(audited)}`,
      );
    if (moved) problems.push(`${moved} children changed in the idle window`);

    const fault = {
      apiserver: `kube-apiserver and etcd SIGKILLed in the middle of the first of two update rounds (writes retried through the outage) and started again on the same data dir and ports after 2 s`,
      controller: `\`llmisvc controller\` SIGKILLed once ${String(figures['observedAtKill'])}/${count} new services were observed, started again at once`,
      leader: `two \`llmisvc controller --leader-elect\` replicas (lease 6 s, renew deadline 4 s, retry 1 s); the leader SIGKILLed once ${String(figures['updateObservedAtKill'])}/${count} services had observed an update, started again as the standby; the other took over after ${String(figures['standbyLeaderAfterMs'])} ms`,
    }[scenario as 'apiserver'];
    summary.push(
      `${count} services (${templates.length} example topologies in rotation), ${result.check.desiredChildren} children; ${fault}.`,
      `Converged ${String(figures['convergedAfterRecoverySeconds'])} s after the recovery (recovery: ${String(figures['recoverySeconds'])} s after the kill; ${String(figures['convergedAfterFaultSeconds'])} s after the kill, ${String(figures['convergedAfterLastWriteSeconds'])} s after the last write).`,
      `After convergence: ${final.missing.length} missing, ${final.orphans.length} orphans, ${final.extra.length} duplicates/extra, ${final.stale.length} stale children, ${final.unobserved} services with an unobserved generation, ${final.lostUpdates} lost updates.`,
      `Idle ${opts.idleSeconds} s: controller writes in the API server's audit log ${JSON.stringify(audited)} (${auditedNonLease} besides leader-election Lease renewals); its own metrics count ${idleWrites}; ${moved} children with a new resourceVersion.`,
      `Controller exits nobody asked for (each restarted after 1 s): ${unexpectedExits.length}.`,
    );
    return {
      scenario,
      command: `npm run chaos -- --scenario ${scenario} --services ${count} --idle-seconds ${opts.idleSeconds}`,
      loadStart,
      loadEnd: load(),
      figures,
      summary,
      problems,
    };
  } finally {
    for (const c of controllers) await c.stop();
    admin.close();
    await server.stop();
  }
}
