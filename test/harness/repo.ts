/**
 * @module test/harness/repo
 * Paths inside the repository, for tests compiled to dist/test/.
 */
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CLI = fileURLToPath(new URL('../../../bin/llmisvc.js', import.meta.url));
