import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { claimPodBlock } from './pod-block.js';

describe('the loopback block of a cluster’s pod IPs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'llmisvc-pod-block-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('gives two live clusters different blocks (of one process too), and a released block to the next', () => {
    const first = claimPodBlock(dir, process.pid);
    const second = claimPodBlock(dir, process.pid);
    assert.equal(first.prefix, '127.1');
    assert.equal(second.prefix, '127.3', '127.2 is the load balancers’');
    first.release();
    const third = claimPodBlock(dir, process.pid);
    assert.equal(third.prefix, '127.1');
    second.release();
    third.release();
  });

  it('takes over the block of a cluster that died, and leaves a later owner’s claim alone', () => {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    writeFileSync(join(dir, '127.1.lock'), `${dead.stdout.toString()}\n`);
    const claim = claimPodBlock(dir, process.pid);
    assert.equal(claim.prefix, '127.1');
    writeFileSync(join(dir, '127.1.lock'), `${process.ppid}\n`);
    claim.release();
    assert.equal(readFileSync(join(dir, '127.1.lock'), 'utf8').trim(), String(process.ppid));
    rmSync(join(dir, '127.1.lock'));
  });
});
