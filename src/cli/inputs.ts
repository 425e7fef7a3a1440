/**
 * @module cli/inputs
 * Reading `-f` files (repeatable, multi-document, `-` for standard input) and `--config-dir` folders into typed
 * services and configs, for the commands that work offline.
 */
import { readFileSync } from 'node:fs';
import {
  type LLMInferenceService,
  type LLMInferenceServiceConfig,
  parseDocuments,
  type SourcedObject,
} from '../api/index.js';
import { LlmisvcError } from '../errors/index.js';
import { loadConfigDir } from '../presets/index.js';

/** commander collector for repeatable options. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Reads and parses every `-f` file (not yet validated: `validate` wants every problem of every object). */
export function readObjects(files: readonly string[]): SourcedObject[] {
  if (files.length === 0) {
    throw new LlmisvcError(
      'LLMISVC_ERR_INPUT',
      'no input: give one or more files with -f FILE (or -f - for standard input)',
    );
  }
  return files.flatMap((file) => {
    let text: string;
    try {
      text = readFileSync(file === '-' ? 0 : file, 'utf8');
    } catch (error) {
      throw new LlmisvcError(
        'LLMISVC_ERR_INPUT',
        `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        {
          hint: 'check the path given with -f',
        },
      );
    }
    const objects = parseDocuments(text, file === '-' ? '<stdin>' : file);
    if (objects.length === 0) throw new LlmisvcError('LLMISVC_ERR_INPUT', `${file} holds no objects`);
    return objects;
  });
}

export interface OfflineInputs {
  services: LLMInferenceService[];
  configs: LLMInferenceServiceConfig[];
}

/** Services and configs from the `-f` objects plus the configs of every `--config-dir`. */
export function splitTyped(
  typed: (LLMInferenceService | LLMInferenceServiceConfig)[],
  configDirs: readonly string[],
): OfflineInputs {
  const configs = [
    ...configDirs.flatMap((dir) => loadConfigDir(dir)),
    ...typed.filter((o): o is LLMInferenceServiceConfig => o.kind === 'LLMInferenceServiceConfig'),
  ];
  return {
    services: typed.filter((o): o is LLMInferenceService => o.kind === 'LLMInferenceService'),
    configs,
  };
}
