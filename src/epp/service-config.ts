/**
 * @module epp/service-config
 * The EndpointPickerConfig an LLMInferenceService (or LLMInferenceServiceConfig) carries in
 * `spec.router.scheduler.config.inline`, checked as this EPP loads it at start. KServe hands the inline config to the
 * picker verbatim, so a config the picker refuses passed every check before and left its EPP in a crash loop; checked
 * here, `validate`, `render` and the admission webhook refuse it with the field named instead.
 *
 * Only where this EPP runs it: a scheduler whose main container runs another command runs another picker (llm-d's
 * image, say) with rules of its own, so its config is not ours to judge.
 */
import type { FieldProblem } from '../errors/index.js';
import { ValidationError } from '../errors/index.js';
import { buildEndpointPickerConfig } from './config.js';

/** The part of a spec this reads: the scheduler's inline config and its pod template. */
export interface SchedulerSpecLike {
  router?: {
    scheduler?: {
      config?: { inline?: unknown };
      template?: { containers?: readonly { name?: string; command?: readonly string[] }[] };
    };
  };
}

/**
 * Whether a scheduler's main container runs `llmisvc epp`: no command of its own (the preset's is ours) or one naming
 * the llmisvc CLI (`llmisvc`, `llmisvc.js`, a path to either) followed by `epp`.
 */
export function runsThisEpp(spec: SchedulerSpecLike): boolean {
  const main = spec.router?.scheduler?.template?.containers?.find((c) => c.name === 'main');
  const command = main?.command;
  if (command === undefined || command.length === 0) return true;
  const cli = command.findIndex((word) => /(^|\/)llmisvc(\.js)?$/.test(word));
  return cli >= 0 && command[cli + 1] === 'epp';
}

/** What loading a spec's inline picker config found: problems refuse it, warnings are what it does not act on. */
export interface InlinePickerConfigReport {
  problems: FieldProblem[];
  warnings: FieldProblem[];
}

/**
 * The inline EndpointPickerConfig of `spec` loaded as this EPP loads it, paths as
 * `spec.router.scheduler.config.inline.<path>`; nothing when there is none or another picker runs it.
 */
export function checkInlinePickerConfig(spec: SchedulerSpecLike | undefined): InlinePickerConfigReport {
  const inline = spec?.router?.scheduler?.config?.inline;
  if (inline === undefined || inline === null || !runsThisEpp(spec!)) return { problems: [], warnings: [] };
  const at = 'spec.router.scheduler.config.inline';
  const under = (p: FieldProblem): FieldProblem => ({
    path: p.path ? `${at}.${p.path}` : at,
    message: p.message,
  });
  try {
    return { problems: [], warnings: buildEndpointPickerConfig(inline, at).warnings.map(under) };
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    return { problems: error.problems.map(under), warnings: [] };
  }
}
