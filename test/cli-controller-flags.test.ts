/**
 * @module test/cli-controller-flags
 * `llmisvc controller` refuses a `--webhook-url` it could not point the API server at, or one another flag would make
 * it ignore, before it connects anywhere: the error names the flags and what to write instead, and the exit code is
 * not 0.
 */
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { it } from 'node:test';
import { CLI, REPO_ROOT } from './harness/repo.js';

function controller(...args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, 'controller', ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    // Nowhere to connect to: the flags must be refused before any connection is tried.
    env: { ...process.env, KUBECONFIG: '/nonexistent/kubeconfig' },
    timeout: 20_000,
  });
}

it('--webhook-url must be https://HOST:PORT', () => {
  for (const url of [
    'http://127.0.0.1:9443',
    'https://127.0.0.1:9443/prefix',
    'https://user@127.0.0.1:9443',
    '127.0.0.1:9443',
  ]) {
    const result = controller('--webhook-url', url);
    assert.notEqual(result.status, 0, url);
    assert.match(result.stderr, /--webhook-url must be https:\/\/HOST:PORT/, `${url}: ${result.stderr}`);
    assert.match(result.stderr, /--webhook-url https:\/\/127\.0\.0\.1:9443/);
  }
});

it('--webhook-url is refused with --no-webhook and with --webhook-cert-dir, which would ignore it', () => {
  const url = ['--webhook-url', 'https://127.0.0.1:9443'];
  const noWebhook = controller(...url, '--no-webhook');
  assert.notEqual(noWebhook.status, 0);
  assert.match(noWebhook.stderr, /--webhook-url cannot be used with --no-webhook/);
  const certDir = controller(...url, '--webhook-cert-dir', '/etc/webhook-certs');
  assert.notEqual(certDir.status, 0);
  assert.match(certDir.stderr, /--webhook-url cannot be used with --webhook-cert-dir/);
  assert.match(certDir.stderr, /Drop one of the two/);
});
