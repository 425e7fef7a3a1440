/**
 * @module deps/verify
 * Is the cluster ready for these services? `observeCluster` reads what matters (one I/O edge); `evaluateCluster`
 * is a pure function from that snapshot, the services' needs and the provider to a list of checks, each failed one
 * with the command that fixes it.
 *
 * The subtle check: a gateway provider decides when it starts whether the InferencePool API exists and only then
 * watches it. If the GIE CRDs were created after the provider's pods started, HTTPRoutes to InferencePools are
 * silently ignored until the provider restarts — so the CRD's creationTimestamp is compared with each provider
 * pod's start time.
 */
import { labelSelectorString } from '../kube/index.js';
import { INFERENCE_POOL_V1, INFERENCE_X_V1ALPHA2 } from '../render/index.js';
import { type Condition, conditionOf, isTrue, type KubeClient, type KubeObject } from './kube.js';
import {
  CERT_MANAGER_INJECT_CA_FROM,
  COMPONENTS,
  GATEWAY_API_BUNDLE_ANNOTATION,
  type HealthCheck,
  INFERENCE_POOL_CRD,
  LWS_WEBHOOK_CONFIGURATIONS,
  MINIMUM_VERSIONS,
  PROVIDER_FACTS,
  type ProviderName,
  PROVIDERS,
  type StepName,
} from './matrix.js';
import { type PlanStep, planSteps, type ServiceNeeds } from './plan.js';

export interface CrdState {
  created: string;
  established: boolean;
  /** `gateway.networking.k8s.io/bundle-version` (Gateway API) or the GIE bundle annotation, when present. */
  bundleVersion?: string;
}

export interface DeploymentState {
  available: boolean;
  /** Why not available, from the Available / Progressing conditions. */
  problem?: string;
  pods: PodState[];
}

export interface PodState {
  name: string;
  /** status.startTime, else metadata.creationTimestamp. */
  startTime: string;
  running: boolean;
}

export interface GatewayState {
  namespace: string;
  name: string;
  className: string;
  addresses: string[];
  programmed?: Condition;
}

/** What `verify` looks at, as plain data. */
export interface ClusterSnapshot {
  /** API group → served versions (`''` is the core group). */
  served: Map<string, string[]>;
  crds: Map<string, CrdState>;
  /** `namespace/name` → state; absent when the Deployment does not exist. */
  deployments: Map<string, DeploymentState>;
  gatewayClasses: Map<string, { controllerName: string; accepted?: Condition }>;
  gateways: GatewayState[];
  /** LWS's webhook configurations by name; absent ones are not in the map. */
  lwsWebhooks: Map<string, WebhookConfigurationState>;
}

/** What `verify` needs of one admission webhook configuration. */
export interface WebhookConfigurationState {
  /** `cert-manager.io/inject-ca-from`: cert-manager's cainjector fills the CA bundles from this Certificate. */
  injectCaFrom?: string;
  webhooks: {
    name: string;
    hasCaBundle: boolean;
    /** The in-cluster Service the API server calls, and whether it exists. */
    service?: { namespace: string; name: string; exists: boolean };
    /** The URL the API server calls instead (a controller outside the cluster, as `llmisvc dev cluster` runs it). */
    url?: string;
  }[];
}

export type CheckStatus = 'ok' | 'fail' | 'warn';

export interface Check {
  step: StepName | 'load-balancer';
  status: CheckStatus;
  /** What was checked and what was found. */
  message: string;
  /** The exact next command (or action) when the check did not pass. */
  fix?: string;
}

export interface VerifyResult {
  provider: ProviderName;
  steps: PlanStep[];
  checks: Check[];
  /** True when no check failed (warnings allowed). */
  healthy: boolean;
}

const GIE_BUNDLE_ANNOTATION = 'inference.networking.k8s.io/bundle-version';

/** Every CRD and Deployment any step's health depends on, plus the providers' Deployments for detection. */
function watchedObjects(): { crds: string[]; deployments: { namespace: string; name: string }[] } {
  const checks = Object.values(COMPONENTS).flatMap((c) => c.health);
  const crds = new Set<string>([INFERENCE_POOL_CRD]);
  const deployments = new Map<string, { namespace: string; name: string }>();
  for (const check of checks) {
    if (check.kind === 'crd') crds.add(check.name);
    if (check.kind === 'deployment') deployments.set(`${check.namespace}/${check.name}`, check);
  }
  return { crds: [...crds], deployments: [...deployments.values()] };
}

/** Reads the snapshot `evaluateCluster` needs. */
export async function observeCluster(client: KubeClient): Promise<ClusterSnapshot> {
  const served = await client.servedGroupVersions();
  const watched = watchedObjects();
  const crds = new Map<string, CrdState>();
  for (const name of watched.crds) {
    const crd = await client.get(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
    if (!crd) continue;
    const annotations = crd.metadata?.annotations ?? {};
    const bundle = annotations[GATEWAY_API_BUNDLE_ANNOTATION] ?? annotations[GIE_BUNDLE_ANNOTATION];
    crds.set(name, {
      created: crd.metadata?.creationTimestamp ?? '',
      established: isTrue(crd, 'Established'),
      ...(bundle ? { bundleVersion: bundle } : {}),
    });
  }
  const deployments = new Map<string, DeploymentState>();
  for (const { namespace, name } of watched.deployments) {
    const deployment = await client.get(`/apis/apps/v1/namespaces/${namespace}/deployments/${name}`);
    if (!deployment) continue;
    deployments.set(`${namespace}/${name}`, await deploymentState(client, deployment));
  }
  const gatewayClasses = new Map<string, { controllerName: string; accepted?: Condition }>();
  const gateways: GatewayState[] = [];
  if (served.get('gateway.networking.k8s.io')?.includes('v1')) {
    for (const gc of await client.list('/apis/gateway.networking.k8s.io/v1/gatewayclasses')) {
      const accepted = conditionOf(gc, 'Accepted');
      gatewayClasses.set(gc.metadata?.name ?? '', {
        controllerName: String((gc['spec'] as { controllerName?: string } | undefined)?.controllerName ?? ''),
        ...(accepted ? { accepted } : {}),
      });
    }
    for (const gw of await client.list('/apis/gateway.networking.k8s.io/v1/gateways'))
      gateways.push(gatewayState(gw));
  }
  const lwsWebhooks = new Map<string, WebhookConfigurationState>();
  for (const { kind, name } of LWS_WEBHOOK_CONFIGURATIONS) {
    const config = await client.get(`/apis/admissionregistration.k8s.io/v1/${kind}/${name}`);
    if (config) lwsWebhooks.set(name, await webhookConfigurationState(client, config));
  }
  return { served, crds, deployments, gatewayClasses, gateways, lwsWebhooks };
}

async function webhookConfigurationState(
  client: KubeClient,
  config: KubeObject,
): Promise<WebhookConfigurationState> {
  type ClientConfig = { caBundle?: string; url?: string; service?: { namespace?: string; name?: string } };
  const webhooks = (config['webhooks'] as { name?: string; clientConfig?: ClientConfig }[] | undefined) ?? [];
  const injectCaFrom = config.metadata?.annotations?.[CERT_MANAGER_INJECT_CA_FROM];
  const services = new Map<string, boolean>();
  const state: WebhookConfigurationState = { ...(injectCaFrom ? { injectCaFrom } : {}), webhooks: [] };
  for (const webhook of webhooks) {
    const cc = webhook.clientConfig ?? {};
    const entry: WebhookConfigurationState['webhooks'][number] = {
      name: webhook.name ?? '',
      hasCaBundle: Boolean(cc.caBundle),
      ...(cc.url ? { url: cc.url } : {}),
    };
    if (cc.service?.name) {
      const namespace = cc.service.namespace ?? 'default';
      const key = `${namespace}/${cc.service.name}`;
      if (!services.has(key))
        services.set(
          key,
          (await client.get(`/api/v1/namespaces/${namespace}/services/${cc.service.name}`)) !== undefined,
        );
      entry.service = { namespace, name: cc.service.name, exists: services.get(key)! };
    }
    state.webhooks.push(entry);
  }
  return state;
}

export function gatewayState(gw: KubeObject): GatewayState {
  const status = gw['status'] as { addresses?: { value?: string }[] } | undefined;
  const programmed = conditionOf(gw, 'Programmed');
  return {
    namespace: gw.metadata?.namespace ?? '',
    name: gw.metadata?.name ?? '',
    className: String((gw['spec'] as { gatewayClassName?: string } | undefined)?.gatewayClassName ?? ''),
    addresses: (status?.addresses ?? []).map((a) => a.value ?? '').filter(Boolean),
    ...(programmed ? { programmed } : {}),
  };
}

/** Availability of a Deployment and its pods (found through its own selector). */
export async function deploymentState(client: KubeClient, deployment: KubeObject): Promise<DeploymentState> {
  const namespace = deployment.metadata?.namespace ?? 'default';
  const available = conditionOf(deployment, 'Available');
  const progressing = conditionOf(deployment, 'Progressing');
  const matchLabels =
    (deployment['spec'] as { selector?: { matchLabels?: Record<string, string> } } | undefined)?.selector
      ?.matchLabels ?? {};
  const selector = labelSelectorString(matchLabels);
  const pods = selector
    ? await client.list(`/api/v1/namespaces/${namespace}/pods?labelSelector=${encodeURIComponent(selector)}`)
    : [];
  const problem =
    available?.status === 'True'
      ? undefined
      : [available, progressing]
          .filter((c): c is Condition => c !== undefined && c.status !== 'True')
          .map(
            (c) =>
              `${c.type}=${c.status}${c.reason ? ` (${c.reason}${c.message ? `: ${c.message}` : ''})` : ''}`,
          )
          .join('; ') || 'no Available condition yet (is the controller-manager running?)';
  return {
    available: available?.status === 'True',
    ...(problem ? { problem } : {}),
    pods: pods.map((pod) => {
      const status = pod['status'] as { startTime?: string; phase?: string } | undefined;
      return {
        name: pod.metadata?.name ?? '',
        startTime: status?.startTime ?? pod.metadata?.creationTimestamp ?? '',
        running: status?.phase === 'Running' && isTrue(pod, 'Ready'),
      };
    }),
  };
}

/** The provider whose controller runs in the cluster (the first found), else the default. */
export function detectProvider(snapshot: ClusterSnapshot): ProviderName | undefined {
  return PROVIDERS.find((p) => {
    const facts = PROVIDER_FACTS[p];
    return snapshot.deployments.has(`${facts.namespace}/${facts.deployment}`);
  });
}

/** Compares `vX.Y.Z` strings numerically; a missing part counts as 0. */
export function compareVersions(a: string, b: string): number {
  const parts = (v: string) =>
    v
      .replace(/^v/, '')
      .split(/[.-]/)
      .slice(0, 3)
      .map((p) => Number.parseInt(p, 10) || 0);
  const [x, y] = [parts(a), parts(b)];
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

const restartCommand = (p: ProviderName) => {
  const f = PROVIDER_FACTS[p];
  return `kubectl rollout restart deployment/${f.deployment} -n ${f.namespace} && kubectl rollout status deployment/${f.deployment} -n ${f.namespace} --timeout=5m`;
};

/** The checks of one step's health list. */
function healthChecks(
  step: PlanStep,
  health: readonly HealthCheck[],
  snapshot: ClusterSnapshot,
  installHint: string,
): Check[] {
  const checks: Check[] = [];
  for (const h of health) {
    if (h.kind === 'crd') {
      const crd = snapshot.crds.get(h.name);
      if (!crd) {
        checks.push({
          step: step.name,
          status: 'fail',
          message: `CRD ${h.name} is not installed`,
          fix: installHint,
        });
      } else if (!crd.established) {
        checks.push({
          step: step.name,
          status: 'fail',
          message: `CRD ${h.name} is not Established`,
          fix: `kubectl describe crd ${h.name}  # read the NamesAccepted/Established conditions`,
        });
      } else {
        checks.push({
          step: step.name,
          status: 'ok',
          message: `CRD ${h.name} Established${crd.bundleVersion ? ` (bundle ${crd.bundleVersion})` : ''}`,
        });
      }
    } else if (h.kind === 'api') {
      const [group, version] = h.groupVersion.split('/') as [string, string];
      const versions = snapshot.served.get(group) ?? [];
      checks.push(
        versions.includes(version)
          ? { step: step.name, status: 'ok', message: `${group} serves ${versions.join(', ')}` }
          : {
              step: step.name,
              status: 'fail',
              message: versions.length
                ? `${group} serves ${versions.join(', ')} but not ${version}`
                : `the API group ${group} is not served`,
              fix: installHint,
            },
      );
    } else if (h.kind === 'deployment') {
      const state = snapshot.deployments.get(`${h.namespace}/${h.name}`);
      if (!state) {
        checks.push({
          step: step.name,
          status: 'fail',
          message: `Deployment ${h.namespace}/${h.name} does not exist`,
          fix: installHint,
        });
      } else if (!state.available) {
        checks.push({
          step: step.name,
          status: 'fail',
          message: `Deployment ${h.namespace}/${h.name} is not Available: ${state.problem ?? 'unknown'}`,
          fix: `kubectl describe deployment/${h.name} -n ${h.namespace} && kubectl logs deployment/${h.name} -n ${h.namespace} --tail=50`,
        });
      } else {
        checks.push({
          step: step.name,
          status: 'ok',
          message: `Deployment ${h.namespace}/${h.name} Available`,
        });
      }
    } else {
      const gc = snapshot.gatewayClasses.get(h.name);
      if (!gc) {
        checks.push({
          step: step.name,
          status: 'fail',
          message: `GatewayClass ${h.name} does not exist`,
          fix: installHint,
        });
      } else if (gc.controllerName !== h.controllerName) {
        checks.push({
          step: step.name,
          status: 'fail',
          message: `GatewayClass ${h.name} belongs to controller ${gc.controllerName}, not ${h.controllerName}`,
          fix: `use another class for this provider, or delete it: kubectl delete gatewayclass ${h.name}`,
        });
      } else if (gc.accepted?.status !== 'True') {
        checks.push({
          step: step.name,
          status: 'fail',
          message: `GatewayClass ${h.name} is not Accepted${gc.accepted ? `: ${gc.accepted.reason ?? ''} ${gc.accepted.message ?? ''}`.trimEnd() : ' (no status: its controller has not seen it)'}`,
          fix: `kubectl describe gatewayclass ${h.name}  # and check the provider's logs`,
        });
      } else {
        checks.push({ step: step.name, status: 'ok', message: `GatewayClass ${h.name} Accepted` });
      }
    }
  }
  return checks;
}

/**
 * Every check for the given services' needs on the observed cluster.
 * `healthy` is true only when everything the services need is there and running.
 */
export function evaluateCluster(
  snapshot: ClusterSnapshot,
  all: readonly ServiceNeeds[],
  provider: ProviderName,
): VerifyResult {
  const steps = planSteps(all, provider);
  const checks: Check[] = [];
  const facts = PROVIDER_FACTS[provider];
  const flag = provider === 'envoy-gateway' ? '' : ` --provider ${provider}`;
  for (const step of steps) {
    const hint = `llmisvc deps install${flag}  # or run the "${step.name}" commands of \`llmisvc deps plan${flag}\``;
    const component = COMPONENTS[step.name];
    let health = component.health;
    if (step.name === 'gateway-api-inference-extension') {
      // The renderer also works with the older x-k8s.io InferencePool; accept it, but say it is old.
      const served = snapshot.served.get('inference.networking.k8s.io')?.includes('v1');
      const old = snapshot.served.get('inference.networking.x-k8s.io')?.includes('v1alpha2');
      if (!served && old) {
        health = [];
        checks.push({
          step: step.name,
          status: 'warn',
          message: `only the pre-v1 InferencePool API (${INFERENCE_X_V1ALPHA2}) is served; llmisvc renders it, but providers are moving to ${INFERENCE_POOL_V1}`,
          fix: `upgrade: ${component.commands[0]}`,
        });
      }
    }
    if (step.name === 'cert-manager' && !certManagerRequired(snapshot)) {
      health = [];
      checks.push(certManagerNotRequired(snapshot));
    }
    if (step.name === 'lws') {
      // The controller's Deployment is judged with the webhooks: a controller outside the cluster has none.
      health = health.filter((h) => h.kind !== 'deployment');
    }
    checks.push(...healthChecks(step, health, snapshot, hint));
    if (step.name === 'lws') checks.push(...lwsChecks(snapshot, step, hint));
    if (step.name === 'gateway-api') {
      const bundle = snapshot.crds.get('gateways.gateway.networking.k8s.io')?.bundleVersion;
      if (bundle && compareVersions(bundle, MINIMUM_VERSIONS.gatewayApi) < 0) {
        checks.push({
          step: step.name,
          status: 'fail',
          message: `Gateway API ${bundle} is older than ${MINIMUM_VERSIONS.gatewayApi}, the oldest llmisvc supports`,
          fix: component.commands[0]!,
        });
      }
    }
    if (step.name === provider) checks.push(...providerChecks(snapshot, provider, steps));
  }
  const named = all.some((s) => s.gateways !== undefined)
    ? [...new Set(all.flatMap((s) => s.gateways ?? []))]
    : undefined;
  checks.push(...loadBalancerChecks(snapshot, facts.gatewayClass, named));
  return { provider, steps, checks, healthy: !checks.some((c) => c.status === 'fail') };
}

/**
 * cert-manager is needed for LWS only when LWS's webhooks take their CA bundle from it (an install that enables its
 * cert-manager integration); LWS's default install manages its own certificates. Before LWS is installed it is
 * required, as `deps install` installs it first so that either LWS setup works.
 */
function certManagerRequired(snapshot: ClusterSnapshot): boolean {
  if (snapshot.lwsWebhooks.size === 0) return true;
  return [...snapshot.lwsWebhooks.values()].some((w) => w.injectCaFrom !== undefined);
}

function certManagerNotRequired(snapshot: ClusterSnapshot): Check {
  const installed = snapshot.crds.has('certificates.cert-manager.io');
  return {
    step: 'cert-manager',
    status: 'ok',
    message: `not required: LWS's webhook configurations carry no ${CERT_MANAGER_INJECT_CA_FROM} annotation, so LWS manages its own webhook certificates${installed ? ' (cert-manager is installed but not checked)' : ''}`,
  };
}

/**
 * What LWS needs beyond its API: both webhook configurations (the API server sends every LeaderWorkerSet through
 * them, and a missing one means defaults or validation are skipped), a CA bundle on each webhook (else every
 * LeaderWorkerSet write fails TLS verification), and something that answers them: the Service and the controller's
 * Deployment of a standard install, or the URL of a controller run outside the cluster.
 */
function lwsChecks(snapshot: ClusterSnapshot, step: PlanStep, hint: string): Check[] {
  const checks: Check[] = [];
  const controller = 'deployment/lws-controller-manager -n lws-system';
  let inCluster = false;
  const urls = new Set<string>();
  const missingServices = new Map<string, string[]>();
  for (const { kind, name } of LWS_WEBHOOK_CONFIGURATIONS) {
    const config = snapshot.lwsWebhooks.get(name);
    if (!config) {
      checks.push({
        step: 'lws',
        status: 'fail',
        message: `${kind}/${name} does not exist: the API server would not send LeaderWorkerSets through LWS's webhooks`,
        fix: hint,
      });
      continue;
    }
    const missing = config.webhooks.filter((w) => !w.hasCaBundle).map((w) => w.name);
    if (config.webhooks.length === 0) {
      checks.push({ step: 'lws', status: 'fail', message: `${kind}/${name} has no webhooks`, fix: hint });
    } else if (missing.length) {
      checks.push({
        step: 'lws',
        status: 'fail',
        message: config.injectCaFrom
          ? `${kind}/${name} has no CA bundle for ${missing.join(', ')}: cert-manager's cainjector has not injected it from Certificate ${config.injectCaFrom}`
          : `${kind}/${name} has no CA bundle for ${missing.join(', ')}: the LWS controller writes it when it starts (its internal certificate management), so it has not run yet`,
        fix: config.injectCaFrom
          ? `kubectl describe certificate ${config.injectCaFrom.split('/')[1] ?? ''} -n ${config.injectCaFrom.split('/')[0] ?? ''} && kubectl logs deployment/cert-manager-cainjector -n cert-manager --tail=50`
          : `kubectl logs ${controller} --tail=50`,
      });
    } else {
      checks.push({
        step: 'lws',
        status: 'ok',
        message: `${kind}/${name}: ${config.webhooks.length} webhook(s) with a CA bundle${config.injectCaFrom ? ` (injected by cert-manager from ${config.injectCaFrom})` : ''}`,
      });
    }
    for (const webhook of config.webhooks) {
      if (webhook.url) urls.add(webhook.url.replace(/^(https:\/\/[^/]+).*$/, '$1'));
      if (!webhook.service) continue;
      inCluster = true;
      const id = `${webhook.service.namespace}/${webhook.service.name}`;
      if (!webhook.service.exists)
        missingServices.set(id, [...(missingServices.get(id) ?? []), webhook.name]);
    }
  }
  for (const [id, callers] of missingServices) {
    checks.push({
      step: 'lws',
      status: 'fail',
      message: `Service ${id}, which webhooks ${callers.join(', ')} call, does not exist`,
      fix: hint,
    });
  }
  if (inCluster || snapshot.lwsWebhooks.size === 0) {
    const deployment = COMPONENTS.lws.health.filter((h) => h.kind === 'deployment');
    checks.push(...healthChecks(step, deployment, snapshot, hint));
  } else if (urls.size) {
    checks.push({
      step: 'lws',
      status: 'ok',
      message: `the webhooks call ${[...urls].join(', ')}: the LWS controller runs outside the cluster (as \`llmisvc dev cluster\` runs it), so there is no Deployment to check`,
    });
  }
  return checks;
}

function providerChecks(
  snapshot: ClusterSnapshot,
  provider: ProviderName,
  steps: readonly PlanStep[],
): Check[] {
  const facts = PROVIDER_FACTS[provider];
  const state = snapshot.deployments.get(`${facts.namespace}/${facts.deployment}`);
  if (!state) return [];
  const checks: Check[] = [];
  const notRunning = state.pods.filter((p) => !p.running);
  if (state.pods.length === 0) {
    checks.push({
      step: provider,
      status: 'fail',
      message: `no pods of ${facts.namespace}/${facts.deployment} exist`,
      fix: `kubectl describe deployment/${facts.deployment} -n ${facts.namespace}  # look at the ReplicaSet events`,
    });
  } else if (notRunning.length) {
    checks.push({
      step: provider,
      status: 'fail',
      message: `pods of ${facts.deployment} not running and ready: ${notRunning.map((p) => p.name).join(', ')}`,
      fix: `kubectl describe pod ${notRunning[0]!.name} -n ${facts.namespace}`,
    });
  } else {
    checks.push({
      step: provider,
      status: 'ok',
      message: `${state.pods.length} pod(s) of ${facts.deployment} running`,
    });
  }
  const gie = snapshot.crds.get(INFERENCE_POOL_CRD);
  if (gie && steps.some((s) => s.name === 'gateway-api-inference-extension')) {
    const crdTime = Date.parse(gie.created);
    const early = state.pods.filter((p) => Date.parse(p.startTime) < crdTime);
    checks.push(
      early.length
        ? {
            step: provider,
            status: 'fail',
            message: `${facts.deployment} pod(s) ${early.map((p) => `${p.name} (started ${p.startTime})`).join(', ')} started before the InferencePool CRD was created (${gie.created}): they do not watch InferencePools, so routes to them are ignored`,
            fix: restartCommand(provider),
          }
        : {
            step: provider,
            status: 'ok',
            message: `${facts.deployment} started after the InferencePool CRD was created (${gie.created})`,
          },
    );
  }
  return checks;
}

/**
 * Whether Gateways get an address: the services' own Gateways when services were given (`named`), else every
 * Gateway of the provider's class.
 */
function loadBalancerChecks(
  snapshot: ClusterSnapshot,
  className: string,
  named?: readonly string[],
): Check[] {
  if (named) {
    return named.map((id): Check => {
      const gateway = snapshot.gateways.find((g) => `${g.namespace}/${g.name}` === id);
      return gateway
        ? gatewayAddressCheck(gateway)
        : {
            step: 'load-balancer',
            status: 'warn',
            message: `Gateway ${id} does not exist yet, so whether it gets an address is unknown (the controller creates the default one with the first service that uses it)`,
            fix: 'run `llmisvc deps verify` again once the service is applied',
          };
    });
  }
  const gateways = snapshot.gateways.filter((g) => g.className === className);
  if (!snapshot.gatewayClasses.has(className) && gateways.length === 0) return [];
  if (gateways.length === 0) {
    return [
      {
        step: 'load-balancer',
        status: 'warn',
        message: `no Gateway of class ${className} exists yet, so whether a LoadBalancer address can be had is unknown (the controller creates llmisvc-system/llmisvc-gateway with the first service)`,
        fix: 'run `llmisvc deps verify` again once a service exists',
      },
    ];
  }
  return gateways.map(gatewayAddressCheck);
}

function gatewayAddressCheck(g: GatewayState): Check {
  const id = `${g.namespace}/${g.name}`;
  if (g.addresses.length) {
    return {
      step: 'load-balancer',
      status: 'ok',
      message: `Gateway ${id} has address ${g.addresses.join(', ')}`,
    };
  }
  const programmed = g.programmed
    ? ` (Programmed=${g.programmed.status}${g.programmed.reason ? `, ${g.programmed.reason}` : ''})`
    : '';
  return {
    step: 'load-balancer',
    status: 'fail',
    message: `Gateway ${id} has no address${programmed}: the cluster hands out no LoadBalancer IPs`,
    fix: 'on kind: `llmisvc deps lb kind`; on bare metal: `llmisvc deps lb metallb`; to test without one: `llmisvc deps lb port-forward`',
  };
}

/** The result as text: one line per check, the fix under each failed one, a summary last. */
export function formatVerify(result: VerifyResult): string {
  const mark: Record<CheckStatus, string> = { ok: 'ok  ', fail: 'FAIL', warn: 'warn' };
  const lines = [`# llmisvc deps verify (provider ${result.provider})`];
  for (const check of result.checks) {
    lines.push(`${mark[check.status]} ${check.step}: ${check.message}`);
    if (check.status !== 'ok' && check.fix) lines.push(`     next: ${check.fix}`);
  }
  const failed = result.checks.filter((c) => c.status === 'fail').length;
  lines.push(
    failed
      ? `${failed} problem(s): fix them in the order shown (earlier steps first), then run llmisvc deps verify again`
      : 'healthy: every dependency the services need is installed and running',
  );
  return lines.join('\n') + '\n';
}
