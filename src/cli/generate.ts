/**
 * @module cli/generate
 * `llmisvc generate` (`npm run generate`): writes the generated files — the CRDs under deploy/crds/ and the
 * PodSpec field table under src/api/generated/. A test fails when the committed files differ from the output.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { generatedFiles } from '../api/generated-files.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export function register(program: Command): void {
  program
    .command('generate')
    .description('regenerate deploy/crds and src/api/generated from the schema (for developers)')
    .action(async () => {
      for (const [path, content] of Object.entries(await generatedFiles())) {
        mkdirSync(join(ROOT, path, '..'), { recursive: true });
        writeFileSync(join(ROOT, path), content);
        console.log(`wrote ${path}`);
      }
    });
}
