/**
 * @module cli/render
 * `llmisvc render`: every object the system will create for the given services, offline.
 */
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { type LLMInferenceService, type LLMInferenceServiceSpec, toTypedObject } from '../api/index.js';
import { type FieldProblem, LlmisvcError, ValidationError } from '../errors/index.js';
import {
  collisionMessage,
  DEFAULT_RENDER_OPTIONS,
  quotedModelName,
  type KubeObject,
  parseApiVersions,
  type renderService,
  renderTogether,
  httpsProbeWarnings,
} from '../render/index.js';
import { AUTOSCALING_FLAGS, type AutoscalingFlags, autoscalingOptions } from './autoscaling-flags.js';
import { collect, readObjects, splitTyped } from './inputs.js';

/**
 * `--system-namespace`, as the controller's: where shared LLMInferenceServiceConfigs (baseRefs found in no service's
 * namespace) and the default Gateway live. KServe installs into `kserve`.
 */
export const SYSTEM_NAMESPACE_OPTION = [
  '--system-namespace <ns>',
  `where shared configs and the default Gateway live, as the controller's flag (default: ${DEFAULT_RENDER_OPTIONS.systemNamespace}; KServe's: kserve)`,
] as const;

export interface RenderFlags extends Partial<AutoscalingFlags> {
  file: string[];
  configDir: string[];
  output: string;
  apiVersions?: string;
  namespace?: string;
  systemNamespace?: string;
  gatewayName?: string;
  gatewayNamespace?: string;
  gatewayClass?: string;
}

/**
 * What `render` tells about a service of the file that lost its model name to another one: both services, the name,
 * what was rendered, and what the controller will do once they are applied.
 */
export function collisionWarning(
  service: LLMInferenceService,
  collision: { model: string; keptBy: readonly string[] },
): string {
  const namespace = service.metadata.namespace ?? 'default';
  const name = `${namespace}/${service.metadata.name}`;
  return (
    `LLMInferenceService ${name} claims model name ${quotedModelName(collision.model)}, as ${collision.keptBy.join(', ')} ` +
    `in the same file does: ${collision.keptBy.join(', ')} keeps it here and ${service.metadata.name} is ` +
    'rendered without model-name rules (without creation times, names decide, as the controller does for ' +
    'services created within one second). Applied, the oldest service keeps the name and the controller sets ' +
    `ModelNameRouted=False (reason ModelNameCollision) on the other, with a Warning Event. ${service.metadata.name}: ` +
    collisionMessage(collision)
  );
}

/**
 * Renders each service; objects shared by several services (the default Gateway) are printed once. `warn` hears of
 * what renders but will not work as the file's author may expect (two services claiming one model name, an HTTPS
 * probe on an image of its own). `checkSpec` checks each merged spec (presets and baseRefs applied) beyond the
 * renderer's own rules — the inline EndpointPickerConfig as the EPP will load it: problems refuse the service,
 * warnings (what the EPP accepts but does not act on) go to `warn`.
 */
export function renderObjects(
  services: LLMInferenceService[],
  flags: RenderFlags,
  configs: Parameters<typeof renderService>[0]['configs'],
  warn: (message: string) => void = () => undefined,
  checkSpec: (spec: LLMInferenceServiceSpec) => {
    problems: FieldProblem[];
    warnings: FieldProblem[];
  } = () => ({
    problems: [],
    warnings: [],
  }),
): KubeObject[] {
  const apiVersions = parseApiVersions(flags.apiVersions);
  // The controller's defaults: shared configs and the default Gateway live in the system namespace.
  const systemNamespace = flags.systemNamespace ?? DEFAULT_RENDER_OPTIONS.systemNamespace;
  const options = {
    ...DEFAULT_RENDER_OPTIONS,
    systemNamespace,
    gateway: {
      ...DEFAULT_RENDER_OPTIONS.gateway,
      namespace: flags.gatewayNamespace ?? systemNamespace,
      ...(flags.gatewayName ? { name: flags.gatewayName } : {}),
      ...(flags.gatewayClass ? { className: flags.gatewayClass } : {}),
    },
    // `validate` renders without these flags: the defaults apply.
    ...(flags.prometheusUrl ? { autoscaling: autoscalingOptions(flags as AutoscalingFlags) } : {}),
  };
  const shared = new Map<string, KubeObject>();
  const objects: KubeObject[] = [];
  // Together: members of one routing group in the file split their model name between them.
  for (const { service, output, plan } of renderTogether(services, { configs, apiVersions, options })) {
    const checked = checkSpec(output.spec);
    if (checked.problems.length > 0)
      throw new ValidationError(`LLMInferenceService "${service.metadata.name}"`, checked.problems);
    for (const w of checked.warnings)
      warn(`LLMInferenceService "${service.metadata.name}": ${w.path}: ${w.message}`);
    if (plan?.collision) warn(collisionWarning(service, plan.collision));
    for (const w of httpsProbeWarnings(output.spec))
      warn(`LLMInferenceService "${service.metadata.name}": ${w}`);
    if (output.missing.length > 0) {
      const lines = output.missing.map(
        (m) => `  ${m.feature}: needs ${m.kinds.join('/')} (${m.apiVersions.join(' or ')}): ${m.reason}`,
      );
      throw new LlmisvcError(
        'LLMISVC_ERR_DEPENDENCY',
        `LLMInferenceService "${service.metadata.name}" needs APIs the target cluster does not serve:\n${lines.join('\n')}`,
        {
          hint: `add them to --api-versions if the cluster has them; otherwise ${output.missing[0]!.install}`,
        },
      );
    }
    for (const object of output.shared) {
      const metadata = object.metadata as { name: string; namespace: string };
      shared.set(`${object.kind}/${metadata.namespace}/${metadata.name}`, object);
    }
    objects.push(...output.children);
  }
  return [...shared.values(), ...objects];
}

export function register(program: Command): void {
  program
    .command('render')
    .description('print every object the system creates for the given LLMInferenceServices (offline)')
    .option(
      '-f, --file <file>',
      'a YAML/JSON file of services and configs (repeatable; - for stdin)',
      collect,
      [],
    )
    .option(
      '--config-dir <dir>',
      'a folder of LLMInferenceServiceConfig files for baseRefs (repeatable)',
      collect,
      [],
    )
    .option('-o, --output <format>', 'yaml (a document stream) or json (a v1 List)', 'yaml')
    .option(
      '--api-versions <list>',
      'group/versions the cluster serves, comma-separated (default: a current cluster)',
    )
    .option('-n, --namespace <namespace>', 'namespace for services that name none')
    .option(...SYSTEM_NAMESPACE_OPTION)
    .option('--gateway-name <name>', 'the default Gateway name', DEFAULT_RENDER_OPTIONS.gateway.name)
    .option(
      '--gateway-namespace <namespace>',
      'the default Gateway namespace (default: the system namespace)',
    )
    .option('--gateway-class <class>', 'the default Gateway class', DEFAULT_RENDER_OPTIONS.gateway.className)
    .addOption(AUTOSCALING_FLAGS[0])
    .addOption(AUTOSCALING_FLAGS[1])
    .addOption(AUTOSCALING_FLAGS[2])
    .action(async (flags: RenderFlags) => {
      if (flags.output !== 'yaml' && flags.output !== 'json') {
        throw new LlmisvcError('LLMISVC_ERR_CONFIG', `--output must be yaml or json, not "${flags.output}"`);
      }
      const typed = readObjects(flags.file).map((sourced) => {
        const metadata = (sourced.object['metadata'] ?? {}) as Record<string, unknown>;
        if (flags.namespace && metadata['namespace'] === undefined) {
          sourced.object['metadata'] = { ...metadata, namespace: flags.namespace };
        }
        return toTypedObject(sourced);
      });
      const { services, configs } = splitTyped(typed, flags.configDir);
      if (services.length === 0) {
        throw new LlmisvcError('LLMISVC_ERR_INPUT', 'the input holds no LLMInferenceService (only configs)', {
          hint: 'pass the service with -f; configs alone render nothing',
        });
      }
      // Loaded only when needed: the EPP package costs a run without services ~0.1 s of start.
      const { checkInlinePickerConfig } = await import('../epp/index.js');
      // Warnings go to stderr: stdout stays a clean document stream for kubectl apply -f -.
      const objects = renderObjects(
        services,
        flags,
        configs,
        (message) => process.stderr.write(`warning: ${message}\n`),
        checkInlinePickerConfig,
      );
      if (flags.output === 'json') {
        process.stdout.write(
          JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }, null, 2) + '\n',
        );
      } else {
        process.stdout.write(
          objects.map((o) => stringify(o, { lineWidth: 0, aliasDuplicateObjects: false })).join('---\n'),
        );
      }
    });
}
