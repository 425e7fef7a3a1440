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
import { LlmisvcError } from '../errors/index.js';
import type { KubeObject } from '../kube/index.js';
import { renderService, type RenderOptions } from '../render/index.js';
import type { ServiceEngine } from './controller.js';
import type { WebhookEngine } from './webhook.js';

export function defaultEngine(options: RenderOptions): ServiceEngine & WebhookEngine {
  return {
    render(service, configs, apiVersions) {
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
      const out = renderService({ service: typed, configs: typedConfigs, apiVersions, options });
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
      };
    },
    validate: (object) => validateObject(object),
    convert(object, toApiVersion) {
      const version = versionOf(toApiVersion);
      if (!version) throw new LlmisvcError('LLMISVC_ERR_INVALID', `cannot convert to ${toApiVersion}`);
      return convertObject(object as Parameters<typeof convertObject>[0], version);
    },
  };
}
