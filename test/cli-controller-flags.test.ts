/**
 * @module test/cli-controller-flags
 * `llmisvc controller` refuses a `--webhook-url` it could not point the API server at, before it connects anywhere:
 * the error names the flag and what to write instead, and the exit code is not 0.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { it } from 'node:test';
import { CLI, REPO_ROOT } from './harness/repo.js';

it('--webhook-url must be https://HOST:PORT', () => {
  for (const url of [
    'http://127.0.0.1:9443',
    'https://127.0.0.1:9443/prefix',
    'https://user@127.0.0.1:9443',
    '127.0.0.1:9443',
  ]) {
    const result = spawnSync(process.execPath, [CLI, 'controller', '--webhook-url', url], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      // Nowhere to connect to: the flag must be refused before any connection is tried.
      env: { ...process.env, KUBECONFIG: '/nonexistent/kubeconfig' },
      timeout: 20_000,
    });
    assert.notEqual(result.status, 0, url);
    assert.match(result.stderr, /--webhook-url must be https:\/\/HOST:PORT/, `${url}: ${result.stderr}`);
    assert.match(result.stderr, /--webhook-url https:\/\/127\.0\.0\.1:9443/);
  }
});
