import assert from 'node:assert/strict';
import { readFile, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ensureDevPki, tokenFileLine } from './pki.js';

describe('development credentials', () => {
  it('write the static token file line kube-apiserver expects', () => {
    assert.equal(
      tokenFileLine('t0k', 'alice', 'u1', ['system:masters', 'dev']),
      't0k,alice,u1,"system:masters,dev"\n',
    );
    assert.equal(tokenFileLine('t0k', 'system:kube-scheduler', 'u2', []), 't0k,system:kube-scheduler,u2\n');
  });

  it('are created once and reused when the same folder starts again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llmisvc-pki-test-'));
    try {
      const first = await ensureDevPki(join(dir, 'pki'));
      const key = await readFile(first.serviceAccountKey, 'utf8');
      assert.match(first.token, /^[0-9a-f]{48}$/);
      assert.match(key, /BEGIN RSA PRIVATE KEY/);
      assert.match(await readFile(first.serviceAccountPub, 'utf8'), /BEGIN PUBLIC KEY/);
      assert.equal((await stat(first.serviceAccountKey)).mode & 0o077, 0, 'the signing key is private');
      const second = await ensureDevPki(join(dir, 'pki'));
      assert.equal(second.token, first.token);
      assert.equal(await readFile(second.serviceAccountKey, 'utf8'), key);
      assert.match(await readFile(second.tokenFile, 'utf8'), new RegExp(`^${first.token},llmisvc-admin,`));
      assert.deepEqual(second.componentTokens, first.componentTokens);
      assert.match(
        await readFile(second.tokenFile, 'utf8'),
        new RegExp(`^${first.componentTokens.kubeScheduler},system:kube-scheduler,`, 'm'),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
