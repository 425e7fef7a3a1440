/**
 * @module deps/doctor
 * `llmisvc doctor NAME`: why is this service not Ready? Reads the service, its conditions, every child the renderer
 * says it should have (so names come from the one place that computes them), the Gateway / HTTPRoute /
 * InferencePool status, the Endpoint Picker's health through the API server's service proxy and the model-server
 * endpoints, and turns what it finds into a short diagnosis whose first problem carries the next command to run.
 */
import {
  childNames,
  type LLMInferenceService,
  type LLMInferenceServiceConfig,
  toTypedObject,
} from '../api/index.js';
import { isLlmisvcError } from '../errors/index.js';
import { labelSelectorString } from '../kube/index.js';
import {
  DEFAULT_RENDER_OPTIONS,
  httpsProbeWarnings,
  type KubeObject as RenderedObject,
  renderService,
} from '../render/index.js';
import { type Condition, conditionOf, type KubeClient, type KubeObject } from './kube.js';
import { gatewayState } from './verify.js';

export type FindingStatus = 'ok' | 'fail' | 'warn' | 'info';

export interface Finding {
  status: FindingStatus;
  /** What the finding is about: `LLMInferenceService llm/a`, `Deployment llm/a-kserve`, … */
  subject: string;
  message: string;
  next?: string;
}

export interface Diagnosis {
  service: string;
  ready: boolean;
  findings: Finding[];
}

const SERVICE_API = '/apis/serving.kserve.io/v1alpha2';
const SCHEDULER_COMPONENT = 'llminferenceservice-router-scheduler';

/** Keeps what the API types know: the cluster adds managedFields, status and the like. */
function bare(object: KubeObject): Record<string, unknown> {
  const m = object.metadata ?? {};
  return {
    apiVersion: object.apiVersion,
    kind: object.kind,
    metadata: {
      name: m.name,
      namespace: m.namespace,
      ...(m.uid ? { uid: m.uid } : {}),
      ...(m.labels ? { labels: m.labels } : {}),
      ...(m.annotations ? { annotations: m.annotations } : {}),
    },
    spec: object['spec'] ?? {},
  };
}

function conditionText(c: Condition): string {
  return `${c.type}=${c.status}${c.reason ? ` (${c.reason})` : ''}${c.message ? `: ${c.message}` : ''}`;
}

/** Reads everything and diagnoses; never throws for what it finds, only for a cluster it cannot reach. */
export async function diagnose(client: KubeClient, name: string, namespace: string): Promise<Diagnosis> {
  const id = `${namespace}/${name}`;
  const findings: Finding[] = [];
  const done = (): Diagnosis => ({
    service: id,
    ready: !findings.some((f) => f.status === 'fail'),
    findings,
  });
  const subject = `LLMInferenceService ${id}`;

  const crd = await client.request('GET', SERVICE_API);
  if (crd.status !== 200) {
    findings.push({
      status: 'fail',
      subject,
      message:
        'the cluster does not serve serving.kserve.io/v1alpha2: the LLMInferenceService CRD is not installed',
      next: 'kubectl apply --server-side -f deploy/crds/  # from the llmisvc repository, then install the controller',
    });
    return done();
  }
  const live = await client.get(`${SERVICE_API}/namespaces/${namespace}/llminferenceservices/${name}`);
  if (!live) {
    findings.push({
      status: 'fail',
      subject,
      message: 'not found',
      next: `kubectl get llminferenceservices -n ${namespace}  # check the name and namespace (-n)`,
    });
    return done();
  }

  // 1. The conditions the controller reports.
  const status = live['status'] as { conditions?: Condition[]; observedGeneration?: number } | undefined;
  const conditions = status?.conditions ?? [];
  const ready = conditions.find((c) => c.type === 'Ready');
  if (!ready) {
    findings.push({
      status: 'fail',
      subject,
      message: 'has no status conditions: no controller has reconciled it',
      next: 'kubectl get pods -A -l app.kubernetes.io/name=llmisvc-controller  # is the llmisvc controller running? read its logs',
    });
  } else if (ready.status === 'True') {
    findings.push({ status: 'ok', subject, message: 'Ready=True' });
  } else {
    const causes = conditions.filter((c) => c.type !== 'Ready' && c.status === 'False');
    findings.push({
      status: 'fail',
      subject,
      message: [conditionText(ready), ...causes.map(conditionText)].join('; '),
      next: `kubectl describe llminferenceservice ${name} -n ${namespace}  # the findings below name the part that is not ready`,
    });
  }
  if (
    status?.observedGeneration !== undefined &&
    status.observedGeneration < (live.metadata?.generation ?? 0)
  ) {
    findings.push({
      status: 'warn',
      subject,
      message: `status is for generation ${status.observedGeneration}, the spec is at ${live.metadata?.generation}: the controller has not caught up`,
    });
  }

  // 2. What it should have, from the renderer.
  const served = await client.servedGroupVersions();
  const apiVersions = new Set<string>();
  for (const [group, versions] of served)
    for (const v of versions) if (group) apiVersions.add(`${group}/${v}`);
  let service: LLMInferenceService;
  let rendered: ReturnType<typeof renderService>;
  try {
    service = toTypedObject({ object: bare(live), source: `cluster ${id}` }) as LLMInferenceService;
    const configs = await listConfigs(client, [namespace, DEFAULT_RENDER_OPTIONS.systemNamespace]);
    rendered = renderService({ service, configs, apiVersions, options: DEFAULT_RENDER_OPTIONS });
  } catch (error) {
    if (!isLlmisvcError(error)) throw error;
    findings.push({
      status: 'fail',
      subject,
      message: `cannot be rendered: ${error.message}`,
      next:
        error.hint ??
        `kubectl edit llminferenceservice ${name} -n ${namespace}  # fix the fields named above`,
    });
    return done();
  }
  for (const need of rendered.missing) {
    findings.push({
      status: 'fail',
      subject: `dependency ${need.dependency}`,
      message: `${need.kinds.join('/')} (${need.apiVersions.join(' or ')}) is not served: ${need.reason}`,
      next: 'llmisvc deps verify  # then llmisvc deps install',
    });
  }

  // A probe that cannot pass: KServe's samples probe its TLS vLLM with HTTPS; the presets here serve plain HTTP.
  for (const warning of httpsProbeWarnings(rendered.spec)) {
    findings.push({
      status: 'warn',
      subject,
      message: warning,
      next: `kubectl edit llminferenceservice ${name} -n ${namespace}  # drop scheme: HTTPS from that probe`,
    });
  }

  // 3. The children.
  for (const child of rendered.children) await checkChild(client, child, findings);

  // 4. The Gateways the route attaches to.
  const route = rendered.children.find((c) => c.kind === 'HTTPRoute');
  const parents = ((route?.['spec'] as { parentRefs?: { name: string; namespace?: string }[] } | undefined)
    ?.parentRefs ?? []) as { name: string; namespace?: string }[];
  for (const parent of parents) {
    await checkGateway(client, parent.namespace ?? namespace, parent.name, findings);
  }

  // 5. The Endpoint Picker and the endpoints it can pick from.
  if (rendered.spec.router?.scheduler) await checkEndpointPicker(client, service, namespace, findings);
  await checkModelServers(client, rendered.children, namespace, findings);
  return done();
}

async function listConfigs(
  client: KubeClient,
  namespaces: readonly string[],
): Promise<LLMInferenceServiceConfig[]> {
  const configs: LLMInferenceServiceConfig[] = [];
  for (const ns of new Set(namespaces)) {
    for (const item of await client.list(`${SERVICE_API}/namespaces/${ns}/llminferenceserviceconfigs`)) {
      configs.push(
        toTypedObject({
          object: bare(item),
          source: `cluster ${ns}/${item.metadata?.name}`,
        }) as LLMInferenceServiceConfig,
      );
    }
  }
  return configs;
}

function metaOf(object: RenderedObject): { name: string; namespace?: string } {
  return object['metadata'] as { name: string; namespace?: string };
}

async function checkChild(client: KubeClient, child: RenderedObject, findings: Finding[]): Promise<void> {
  const meta = metaOf(child);
  // Both InferencePool generations can be rendered at once; kubectl's kind.group form tells them apart.
  const group = String(child.apiVersion ?? '').split('/')[0] ?? '';
  const kind =
    group.endsWith('.x-k8s.io') && group !== 'leaderworkerset.x-k8s.io'
      ? `${child.kind}.${group}`
      : child.kind;
  const subject = `${kind} ${meta.namespace ? `${meta.namespace}/` : ''}${meta.name}`;
  let live: KubeObject | undefined;
  try {
    live = await client.get(await client.objectPath(child as KubeObject));
  } catch (error) {
    if (!isLlmisvcError(error)) throw error;
    findings.push({ status: 'fail', subject, message: error.message, next: 'llmisvc deps verify' });
    return;
  }
  if (!live) {
    findings.push({
      status: 'fail',
      subject,
      message: 'missing: the controller has not created it',
      next: 'read the llmisvc controller’s logs (kubectl logs -n llmisvc-system deployment/llmisvc-controller) for this service',
    });
    return;
  }
  const ns = meta.namespace ?? 'default';
  if (child.kind === 'Deployment' || child.kind === 'LeaderWorkerSet') {
    const available = conditionOf(live, 'Available');
    const s = live['status'] as { readyReplicas?: number; replicas?: number } | undefined;
    const want = (live['spec'] as { replicas?: number } | undefined)?.replicas ?? 1;
    if (want === 0) {
      // Available with 0 of 0 ready: the API's view is healthy, but nothing runs.
      const labels = live.metadata?.labels ?? {};
      const owner = labels['app.kubernetes.io/name'] ?? meta.name;
      const scheduler = labels['app.kubernetes.io/component'] === SCHEDULER_COMPONENT;
      findings.push(
        scheduler
          ? {
              status: 'fail',
              subject,
              message:
                'scaled to 0 replicas: no Endpoint Picker runs, so the gateway cannot route any request to the pool',
              next: `kubectl patch llminferenceservice ${owner} -n ${ns} --type merge -p '{"spec":{"router":{"scheduler":{"replicas":1}}}}'`,
            }
          : {
              status: 'warn',
              subject,
              message:
                'scaled to 0 replicas (spec.replicas 0, or an autoscaler idle at zero): requests wait or fail until it scales up',
            },
      );
      return;
    }
    if (available?.status === 'True') {
      findings.push({ status: 'ok', subject, message: `Available (${s?.readyReplicas ?? 0}/${want} ready)` });
    } else {
      const kind = child.kind === 'Deployment' ? 'deployment' : 'leaderworkerset';
      findings.push({
        status: 'fail',
        subject,
        message: `not Available: ${s?.readyReplicas ?? 0}/${want} replicas ready${available ? ` (${conditionText(available)})` : ''}`,
        next: `kubectl describe ${kind}/${meta.name} -n ${ns}; kubectl get pods -n ${ns} -l app.kubernetes.io/name=${(live.metadata?.labels ?? {})['app.kubernetes.io/name'] ?? meta.name}`,
      });
    }
    return;
  }
  if (child.kind === 'HTTPRoute' || child.kind === 'InferencePool') {
    const s = live['status'] as
      | {
          parents?: { parentRef?: { name?: string }; conditions?: Condition[] }[];
          parent?: { parentRef?: { name?: string }; conditions?: Condition[] }[];
        }
      | undefined;
    const parents = s?.parents ?? s?.parent ?? [];
    const kind = child.kind.toLowerCase();
    if (parents.length === 0) {
      findings.push({
        status: 'fail',
        subject,
        message: 'no gateway has reported on it (status.parents is empty): the provider does not see it',
        next:
          child.kind === 'InferencePool'
            ? 'llmisvc deps verify  # a provider started before the InferencePool CRD ignores pools until restarted'
            : `kubectl get gateway -A; llmisvc deps verify  # is the Gateway's class served by a running provider?`,
      });
      return;
    }
    const bad = parents.flatMap((p) =>
      (p.conditions ?? [])
        .filter((c) => ['Accepted', 'ResolvedRefs'].includes(c.type) && c.status !== 'True')
        .map((c) => `${p.parentRef?.name ?? '?'}: ${conditionText(c)}`),
    );
    findings.push(
      bad.length
        ? {
            status: 'fail',
            subject,
            message: bad.join('; '),
            next: `kubectl describe ${kind} ${meta.name} -n ${ns}`,
          }
        : {
            status: 'ok',
            subject,
            message: `accepted by ${parents.map((p) => p.parentRef?.name ?? '?').join(', ')}`,
          },
    );
    return;
  }
  findings.push({ status: 'ok', subject, message: 'exists' });
}

async function checkGateway(
  client: KubeClient,
  namespace: string,
  name: string,
  findings: Finding[],
): Promise<void> {
  const subject = `Gateway ${namespace}/${name}`;
  const gw = await client
    .get(`/apis/gateway.networking.k8s.io/v1/namespaces/${namespace}/gateways/${name}`)
    .catch(() => undefined);
  if (!gw) {
    findings.push({
      status: 'fail',
      subject,
      message: 'missing: the route has nothing to attach to',
      next: `kubectl get gateway -n ${namespace}  # the controller creates the default Gateway; a gateway ref must name an existing one`,
    });
    return;
  }
  const state = gatewayState(gw);
  if (state.programmed && state.programmed.status !== 'True') {
    findings.push({
      status: 'fail',
      subject,
      message: `not Programmed: ${conditionText(state.programmed)}`,
      next: `kubectl describe gateway ${name} -n ${namespace}; llmisvc deps verify`,
    });
  } else if (!state.programmed) {
    findings.push({
      status: 'fail',
      subject,
      message: `no controller has reported on it: is a provider for class "${state.className}" running?`,
      next: `kubectl get gatewayclass ${state.className}; llmisvc deps verify`,
    });
  }
  if (state.addresses.length === 0) {
    findings.push({
      status: 'fail',
      subject,
      message: 'has no address: the cluster hands out no LoadBalancer IP',
      next: 'llmisvc deps lb kind  # on kind; `llmisvc deps lb metallb` on bare metal; `llmisvc deps lb port-forward` to test now',
    });
  } else {
    findings.push({ status: 'ok', subject, message: `address ${state.addresses.join(', ')}` });
  }
}

async function checkEndpointPicker(
  client: KubeClient,
  service: LLMInferenceService,
  namespace: string,
  findings: Finding[],
): Promise<void> {
  const svc = childNames(service.metadata.name).eppService;
  const subject = `Endpoint Picker ${namespace}/${svc}`;
  const slices = await client.list(
    `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices?labelSelector=${encodeURIComponent(`kubernetes.io/service-name=${svc}`)}`,
  );
  const ready = slices.flatMap((s) =>
    ((s['endpoints'] ?? []) as { conditions?: { ready?: boolean } }[]).filter(
      (e) => e.conditions?.ready !== false,
    ),
  );
  const metrics = await client.request(
    'GET',
    `/api/v1/namespaces/${namespace}/services/${svc}:9090/proxy/metrics`,
  );
  if (metrics.status === 200 && typeof metrics.body === 'string') {
    const pods = /^inference_pool_ready_pods\{[^}]*\}\s+(\S+)/m.exec(metrics.body)?.[1];
    findings.push({
      status: 'ok',
      subject,
      message: `metrics answer${pods !== undefined ? `; it sees ${pods} ready model-server pod(s)` : ''}`,
    });
    if (pods !== undefined && Number(pods) === 0) {
      findings.push({
        status: 'fail',
        subject,
        message: 'the Endpoint Picker sees no ready model-server pod: every request will fail',
        next: `kubectl get pods -n ${namespace} -l app.kubernetes.io/name=${service.metadata.name}`,
      });
    }
    return;
  }
  findings.push({
    status: 'fail',
    subject,
    message:
      ready.length === 0
        ? `no ready pod behind Service ${svc} (0 ready endpoints), so its health and metrics cannot be read (HTTP ${metrics.status} from the service proxy)`
        : `its metrics port 9090 did not answer through the service proxy (HTTP ${metrics.status}) although ${ready.length} endpoint(s) are ready`,
    next: `kubectl get pods -n ${namespace} -l app.kubernetes.io/component=llminferenceservice-router-scheduler,app.kubernetes.io/name=${service.metadata.name}; kubectl logs -n ${namespace} deployment/${childNames(service.metadata.name).scheduler}`,
  });
}

async function checkModelServers(
  client: KubeClient,
  children: readonly RenderedObject[],
  namespace: string,
  findings: Finding[],
): Promise<void> {
  const svc = children.find((c) => c.kind === 'Service' && metaOf(c).name.endsWith('-kserve-workload-svc'));
  if (!svc) return;
  const name = metaOf(svc).name;
  const slices = await client.list(
    `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices?labelSelector=${encodeURIComponent(`kubernetes.io/service-name=${name}`)}`,
  );
  const endpoints = slices.flatMap((s) => (s['endpoints'] ?? []) as { conditions?: { ready?: boolean } }[]);
  const ready = endpoints.filter((e) => e.conditions?.ready !== false).length;
  findings.push(
    ready > 0
      ? {
          status: 'ok',
          subject: `Service ${namespace}/${name}`,
          message: `${ready} ready model-server endpoint(s)`,
        }
      : {
          status: 'fail',
          subject: `Service ${namespace}/${name}`,
          message: `no ready model-server endpoint (${endpoints.length} not ready): nothing can serve requests`,
          next: `kubectl get pods -n ${namespace} -l ${labelSelectorString(
            (svc['spec'] as { selector?: Record<string, string> }).selector ?? {},
          )} -o wide`,
        },
  );
}

/** The diagnosis as text; the first problem's next command is repeated at the end. */
export function formatDiagnosis(d: Diagnosis): string {
  const mark: Record<FindingStatus, string> = { ok: 'ok  ', fail: 'FAIL', warn: 'warn', info: 'info' };
  const lines = [`# llmisvc doctor ${d.service}`];
  for (const f of d.findings) {
    lines.push(`${mark[f.status]} ${f.subject}: ${f.message}`);
    if (f.status !== 'ok' && f.next) lines.push(`     next: ${f.next}`);
  }
  // The service's own Ready=False summarises the others; the first failing part is where to start.
  const failures = d.findings.filter((f) => f.status === 'fail');
  const summary = (f: Finding) =>
    f.subject.startsWith('LLMInferenceService ') && f.message.startsWith('Ready=');
  const first = failures.find((f) => !summary(f)) ?? failures[0];
  lines.push(
    first
      ? `diagnosis: not ready — start with ${first.subject}: ${first.message}\nnext: ${first.next ?? 'see above'}`
      : 'diagnosis: ready — nothing to fix',
  );
  return lines.join('\n') + '\n';
}
