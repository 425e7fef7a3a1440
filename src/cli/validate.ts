/**
 * @module cli/validate
 * `llmisvc validate`: every problem of every object in the given files, as `<field path>: <message>`. An
 * EndpointPickerConfig is checked as `llmisvc epp` loads it, and what it accepts but does not act on is printed as a
 * warning.
 */
import type { Command } from 'commander';
import {
  type LLMInferenceService,
  type LLMInferenceServiceConfig,
  objectProblems,
  toTypedObject,
} from '../api/index.js';
import { type FieldProblem, formatProblem, isLlmisvcError, ValidationError } from '../errors/index.js';
import { DEFAULT_RENDER_OPTIONS, parseApiVersions } from '../render/index.js';
import { collect, readObjects, splitTyped } from './inputs.js';
import { renderObjects, type RenderFlags, SYSTEM_NAMESPACE_OPTION } from './render.js';

interface ValidateFlags {
  file: string[];
  configDir: string[];
  apiVersions?: string;
  systemNamespace?: string;
}

/** A render's error as validation problems; anything but our own errors is a bug and goes on up. */
function problemsOf(error: unknown): FieldProblem[] {
  if (!isLlmisvcError(error)) throw error;
  return error instanceof ValidationError ? [...error.problems] : [{ path: '', message: error.message }];
}

export function register(program: Command): void {
  program
    .command('validate')
    .description(
      'check LLMInferenceServices, their configs and EndpointPickerConfigs; exit 1 with every problem as "<field path>: <message>"',
    )
    .option('-f, --file <file>', 'a YAML/JSON file (repeatable; - for stdin)', collect, [])
    .option(
      '--config-dir <dir>',
      'a folder of LLMInferenceServiceConfig files for baseRefs (repeatable)',
      collect,
      [],
    )
    .option(
      '--api-versions <list>',
      'group/versions the cluster serves, comma-separated (default: a current cluster)',
    )
    .option(...SYSTEM_NAMESPACE_OPTION)
    .action(async (flags: ValidateFlags) => {
      const reports: { subject: string; problems: FieldProblem[] }[] = [];
      const typed: (LLMInferenceService | LLMInferenceServiceConfig)[] = [];
      let pickerConfigs = 0;
      for (const sourced of readObjects(flags.file)) {
        if (sourced.object['kind'] === 'EndpointPickerConfig') {
          const subject = `EndpointPickerConfig (${sourced.source})`;
          try {
            // Loaded only when needed: the EPP package costs services-only runs ~0.1 s of start.
            const { buildEndpointPickerConfig } = await import('../epp/index.js');
            const config = buildEndpointPickerConfig(sourced.object, sourced.source);
            for (const w of config.warnings)
              process.stderr.write(`warning: ${subject} ${w.path}: ${w.message}\n`);
            pickerConfigs++;
          } catch (error) {
            reports.push({ subject, problems: problemsOf(error) });
          }
          continue;
        }
        const metadata = (sourced.object['metadata'] ?? {}) as Record<string, unknown>;
        const kind = sourced.object['kind'];
        const name = metadata['name'];
        // Only strings name an object; anything else would print as "[object Object]".
        const subject = `${typeof kind === 'string' ? kind : 'object'} "${typeof name === 'string' ? name : ''}" (${sourced.source})`;
        const structural = objectProblems(sourced.object);
        if (structural.length > 0) {
          reports.push({ subject, problems: structural });
          continue;
        }
        try {
          typed.push(toTypedObject(sourced));
        } catch (error) {
          if (error instanceof ValidationError) reports.push({ subject, problems: [...error.problems] });
          else throw error;
        }
      }
      // Then the merged view: presets, baseRefs and the cluster's APIs, exactly as `render` and the controller see it.
      if (reports.length === 0) {
        const { services, configs } = splitTyped(typed, flags.configDir);
        const { checkInlinePickerConfig } = await import('../epp/index.js');
        const renderFlags: RenderFlags = {
          file: [],
          configDir: [],
          output: 'yaml',
          apiVersions: flags.apiVersions,
          systemNamespace: flags.systemNamespace,
        };
        // What renders but will not work as its author may expect is a warning, printed once (a service is rendered
        // alone, then with the others).
        const warned = new Set<string>();
        const warn = (message: string) => {
          if (!warned.has(message)) process.stderr.write(`warning: ${message}\n`);
          warned.add(message);
        };
        for (const service of services) {
          try {
            renderObjects([service], renderFlags, configs, warn, checkInlinePickerConfig);
          } catch (error) {
            reports.push({
              subject: `LLMInferenceService "${service.metadata.name}"`,
              problems: problemsOf(error),
            });
          }
        }
        // Together too: what is valid but will not work as the file's author may expect (two services claiming one
        // model name) is a warning, as from `render`; it does not fail validation (the controller serves both).
        if (reports.length === 0 && services.length > 1) {
          try {
            renderObjects(services, renderFlags, configs, warn, checkInlinePickerConfig);
          } catch (error) {
            reports.push({
              subject: `the ${services.length} LLMInferenceServices together`,
              problems: problemsOf(error),
            });
          }
        }
      }
      if (reports.length === 0) {
        const count = typed.length + pickerConfigs;
        const versions = [...parseApiVersions(flags.apiVersions)].join(', ');
        console.log(
          `valid: ${count} object${count === 1 ? '' : 's'} (cluster APIs: ${versions}; default gateway ${flags.systemNamespace ?? DEFAULT_RENDER_OPTIONS.systemNamespace}/${DEFAULT_RENDER_OPTIONS.gateway.name})`,
        );
        return;
      }
      for (const report of reports) {
        console.error(`${report.subject}:`);
        for (const problem of report.problems) console.error(`  ${formatProblem(problem)}`);
      }
      const total = reports.reduce((n, r) => n + r.problems.length, 0);
      console.error(`${total} problem${total === 1 ? '' : 's'} found`);
      process.exitCode = 1;
    });
}
