/**
 * @module controller/engine
 * The controller's view of api/ and render/: render a service from what the cluster holds, validate and convert
 * for the webhooks. A LLMInferenceServiceConfig that is itself invalid is left out of the merge (and reported only
 * if a service references it, as a missing config), so one broken config cannot stop every other service.
 */
import {
  convertObject,
  toTypedObject,
  validateObject,
  versionOf,
  type LLMInferenceService,
  type LLMInferenceServiceConfig,
} from '../api/index.js';
import { LlmisvcError, ValidationError } from '../errors/index.js';
import { checkInlinePickerConfig, isRecord, type SchedulerSpecLike } from '../epp/index.js';
import type { KubeObject } from '../kube/index.js';
import {
  planModelRouting,
  renderService,
  routingCandidate,
  type RenderOptions,
  type RenderOutput,
  type RoutingCandidate,
  httpsProbeWarnings,
} from '../render/index.js';
import { STOP_ANNOTATION } from './controller.js';
import type { ServiceEngine } from './controller.js';
import type { WebhookEngine } from './webhook.js';

export function defaultEngine(options: RenderOptions): ServiceEngine & WebhookEngine {
  return {
    render(service, configs, apiVersions, peers = []) {
      const typed = toTypedObject({
        object: service,
        source: `namespace ${service.metadata.namespace}`,
      }) as LLMInferenceService;
      const typedConfigs: LLMInferenceServiceConfig[] = [];
      for (const config of configs) {
        try {
          const c = toTypedObject({
            object: config,
            source: 'the cluster',
          });
          if (c.kind === 'LLMInferenceServiceConfig') typedConfigs.push(c);
        } catch {
          // Invalid configs are skipped; see the module comment.
        }
      }
      const alone = renderService({ service: typed, configs: typedConfigs, apiVersions, options });
      const candidates = [
        candidateOf(service, typed, alone),
        ...peers.flatMap((peer) => {
          try {
            const p = toTypedObject({
              object: peer,
              source: `namespace ${peer.metadata.namespace}`,
            }) as LLMInferenceService;
            return [
              candidateOf(
                peer,
                p,
                renderService({ service: p, configs: typedConfigs, apiVersions, options }),
              ),
            ];
          } catch {
            // A peer that does not render routes nothing; its own reconcile reports why.
            return [];
          }
        }),
      ].filter((c): c is RoutingCandidate => c !== undefined);
      const plan = planModelRouting(candidates).get(typed.metadata.name);
      const out = plan
        ? renderService({
            service: typed,
            configs: typedConfigs,
            apiVersions,
            options,
            modelRouting: plan.routing,
          })
        : alone;
      // A picker config the EPP would refuse at start is bad input like any other: the status says so and the
      // running children stay (a crash-looping EPP would take the service down).
      const pickerProblems = checkInlinePickerConfig(out.spec).problems;
      if (pickerProblems.length > 0)
        throw new ValidationError(`LLMInferenceService "${typed.metadata.name}"`, pickerProblems);
      return {
        children: out.children as unknown as KubeObject[],
        shared: out.shared as unknown as KubeObject[],
        missing: out.missing.map((m) => ({
          feature: m.feature,
          apiVersions: m.apiVersions,
          kinds: m.kinds,
          reason: m.reason,
          install: m.install,
        })),
        appliedConfigs: out.appliedConfigs,
        ingressRefs: out.spec.router?.ingress?.refs ?? [],
        modelRouting: { collision: plan?.collision, group: plan?.group },
        warnings: httpsProbeWarnings(out.spec),
      };
    },
    validate(object) {
      const problems = validateObject(object);
      if (problems.length > 0) return problems;
      // The inline picker config a service carries itself. A config's, or one holding template expressions (filled
      // in at render), is checked when a service renders with it: the status then names the problem.
      const spec = object['spec'];
      if (object['kind'] !== 'LLMInferenceService' || !isRecord(spec)) return [];
      if (
        JSON.stringify((spec as SchedulerSpecLike).router?.scheduler?.config?.inline ?? null).includes('{{')
      )
        return [];
      return checkInlinePickerConfig(spec).problems;
    },
    convert(object, toApiVersion) {
      const version = versionOf(toApiVersion);
      if (!version) throw new LlmisvcError('LLMISVC_ERR_INVALID', `cannot convert to ${toApiVersion}`);
      return convertObject(object as Parameters<typeof convertObject>[0], version);
    },
  };
}

/**
 * A service as a claimant of its model name: only one that renders a managed HTTPRoute routes by model name. Its
 * readiness is its WorkloadsReady condition; a stopped service routes nothing (weight 0).
 */
function candidateOf(
  raw: KubeObject,
  service: LLMInferenceService,
  output: RenderOutput,
): RoutingCandidate | undefined {
  if (!output.children.some((c) => c.kind === 'HTTPRoute')) return undefined;
  const status = (raw as { status?: { conditions?: { type?: string; status?: string }[] } }).status;
  return routingCandidate(service, output, {
    // WorkloadsReady, not Ready: Ready includes the route, and the route carries this very weight — weighing by
    // Ready would flap (a new weight changes the route, which is unaccepted until the gateway catches up).
    ready: (status?.conditions ?? []).some((c) => c.type === 'WorkloadsReady' && c.status === 'True'),
    stopped: service.metadata.annotations?.[STOP_ANNOTATION] === 'true',
  });
}
