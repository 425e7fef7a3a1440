/**
 * @module deps/plan
 * What a set of services needs from a cluster, as install steps in the only safe order. Pure: the needs come from
 * the renderer's one table (`apiNeeds` of the merged spec, via `renderService`), the steps from the matrix.
 *
 * The order and why: cert-manager first (LeaderWorkerSet's webhooks need certificates when LWS starts); the Gateway
 * API CRDs before anything that builds on them; the GIE CRDs before the provider, because a provider decides at
 * start-up whether to watch InferencePools and ignores a CRD that appears later until it is restarted; the provider;
 * LWS last (it needs cert-manager, and nothing needs it during the other steps).
 */
import type { LLMInferenceService, LLMInferenceServiceConfig } from '../api/index.js';
import { LlmisvcError } from '../errors/index.js';
import {
  type ApiNeed,
  DEFAULT_API_VERSIONS,
  DEFAULT_RENDER_OPTIONS,
  type Feature,
  renderService,
} from '../render/index.js';
import {
  airGappedCommands,
  COMPONENTS,
  type Component,
  DEFAULT_PROVIDER,
  type ProviderName,
  PROVIDERS,
  type StepName,
} from './matrix.js';

/** What one service uses, by feature, with the renderer's reasons. */
export interface ServiceNeeds {
  /** `namespace/name`, or `all features` when no service was given. */
  service: string;
  needs: ApiNeed[];
  /** The Gateways its route attaches to (`namespace/name`); absent for "all features". */
  gateways?: string[];
}

/** One step of a plan; `-o json` prints an array of these. */
export interface PlanStep {
  name: StepName;
  version: string;
  /** Why the step is needed: its purpose and which services use it for what. */
  reason: string;
  commands: string[];
  verify: string[];
  /** Commands that fetch the step's manifests into `DIR` for `llmisvc deps install --from DIR`. */
  airGapped: string[];
}

/** The order steps run in; every plan is a subsequence of it. */
export function stepOrder(provider: ProviderName): StepName[] {
  return ['cert-manager', 'gateway-api', 'gateway-api-inference-extension', provider, 'lws'];
}

/** Parses `--provider`, refusing unknown names with the list of known ones. */
export function parseProvider(value: string | undefined): ProviderName {
  if (value === undefined || value === '') return DEFAULT_PROVIDER;
  if ((PROVIDERS as readonly string[]).includes(value)) return value as ProviderName;
  throw new LlmisvcError('LLMISVC_ERR_CONFIG', `unknown gateway provider "${value}"`, {
    hint: `choose one of ${PROVIDERS.join(', ')} with --provider`,
  });
}

/** The needs of each service, from its merged spec (presets and baseRefs count). */
export function servicesNeeds(
  services: readonly LLMInferenceService[],
  configs: readonly LLMInferenceServiceConfig[],
): ServiceNeeds[] {
  return services.map((service) => {
    const namespace = service.metadata.namespace ?? 'default';
    const { needs, children } = renderService({
      service,
      configs,
      apiVersions: DEFAULT_API_VERSIONS,
      options: DEFAULT_RENDER_OPTIONS,
    });
    const parents = children
      .filter((c) => c.kind === 'HTTPRoute')
      .flatMap((route) =>
        ((route['spec'] as { parentRefs?: { name: string; namespace?: string }[] }).parentRefs ?? []).map(
          (ref) => `${ref.namespace ?? namespace}/${ref.name}`,
        ),
      );
    return { service: `${namespace}/${service.metadata.name}`, needs, gateways: [...new Set(parents)] };
  });
}

/** Every feature at once: what `deps plan` without `-f` installs. */
export const ALL_FEATURES: ServiceNeeds = {
  service: 'all features',
  needs: [
    {
      feature: 'route',
      dependency: 'gateway-api',
      apiVersions: ['gateway.networking.k8s.io/v1'],
      kinds: ['Gateway', 'HTTPRoute'],
      reason: 'a route exposes services through a Gateway and an HTTPRoute',
      install: '',
    },
    {
      feature: 'scheduler',
      dependency: 'gateway-api-inference-extension',
      apiVersions: ['inference.networking.k8s.io/v1'],
      kinds: ['InferencePool'],
      reason: 'a scheduler (and every prefill/decode service) routes through an InferencePool',
      install: '',
    },
    {
      feature: 'worker',
      dependency: 'lws',
      apiVersions: ['leaderworkerset.x-k8s.io/v1'],
      kinds: ['LeaderWorkerSet'],
      reason: 'a workload with a worker runs as a LeaderWorkerSet',
      install: '',
    },
  ],
};

function usesOf(all: readonly ServiceNeeds[], feature: Feature): string[] {
  return all
    .filter((s) => s.needs.some((n) => n.feature === feature))
    .map((s) => `${s.service} (${s.needs.find((n) => n.feature === feature)!.reason})`);
}

/**
 * The install steps for the given services' needs and provider, in order.
 *
 * @example
 * planSteps([{ service: 'llm/a', needs: [] }], 'istio').map((s) => s.name) // ['gateway-api', 'istio']
 */
export function planSteps(all: readonly ServiceNeeds[], provider: ProviderName): PlanStep[] {
  const routeUsers = usesOf(all, 'route');
  const routeServices = all.filter((s) => s.needs.some((n) => n.feature === 'route')).map((s) => s.service);
  const schedulerUsers = usesOf(all, 'scheduler');
  const workerUsers = usesOf(all, 'worker');
  const wanted: Partial<Record<StepName, string>> = {
    // The matrix: Gateway API and a provider always (the Gateway is every service's entry point).
    'gateway-api': routeUsers.length
      ? `used by ${routeUsers.join('; ')}`
      : 'the entry point of every service',
    [provider]: routeUsers.length ? `serves the routes of ${routeServices.join(', ')}` : '',
  };
  if (schedulerUsers.length)
    wanted['gateway-api-inference-extension'] = `used by ${schedulerUsers.join('; ')}`;
  if (workerUsers.length) {
    wanted.lws = `used by ${workerUsers.join('; ')}`;
    wanted['cert-manager'] =
      `for LeaderWorkerSet, used by ${workerUsers.map((u) => u.split(' (')[0]).join(', ')}`;
  }
  return stepOrder(provider)
    .filter((name) => wanted[name] !== undefined)
    .map((name) => toStep(COMPONENTS[name], wanted[name]!));
}

function toStep(component: Component, uses: string): PlanStep {
  return {
    name: component.name,
    version: component.version,
    reason: uses ? `${component.purpose}; ${uses}` : component.purpose,
    commands: [...component.commands],
    verify: [...component.verify],
    airGapped: airGappedCommands(component),
  };
}

/** The plan as text: numbered steps with their commands and checks, the way a runbook reads. */
export function formatPlan(
  steps: readonly PlanStep[],
  all: readonly ServiceNeeds[],
  provider: ProviderName,
  /** The `-f` arguments the user gave, repeated in the suggested install/verify lines. */
  inputArgs = '',
): string {
  const lines: string[] = [];
  lines.push(
    `# Dependencies for ${all.map((s) => s.service).join(', ')}: ${steps.length} steps, in this order`,
  );
  steps.forEach((step, i) => {
    lines.push('', `## ${i + 1}. ${step.name} ${step.version}`, `why: ${step.reason}`, 'install:');
    for (const command of step.commands) lines.push(...indent(command));
    lines.push('verify:');
    for (const command of step.verify) lines.push(...indent(command));
  });
  const flag =
    (provider === DEFAULT_PROVIDER ? '' : ` --provider ${provider}`) + (inputArgs ? ` ${inputArgs}` : '');
  lines.push(
    '',
    `Or let llmisvc run them, waiting for each step to be healthy: llmisvc deps install${flag}`,
    `Then check the cluster: llmisvc deps verify${flag}`,
  );
  return lines.join('\n') + '\n';
}

function indent(command: string): string[] {
  return command.split('\n').map((line) => `  ${line}`);
}
