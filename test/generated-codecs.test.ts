// The protobuf codecs under src/transport/generated/ must be what scripts/generate-proto-codecs.mjs writes from
// proto/ today: they are committed (so `tsc` works in any checkout) and never edited by hand.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './harness/repo.js';

const GENERATOR = join(REPO_ROOT, 'scripts', 'generate-proto-codecs.mjs');
const FILES = ['src/transport/generated/ext-proc.ts', 'src/transport/generated/health.ts'];

function generator(...args: string[]) {
  return spawnSync(process.execPath, [GENERATOR, ...args], { cwd: REPO_ROOT, encoding: 'utf8' });
}

test('the committed codecs are what the generator writes from proto/ (run `npm run build` after changing either)', () => {
  const run = generator('--check');
  assert.equal(run.status, 0, run.stderr);
});

test('the generator is deterministic, and --check names a stale or hand-edited file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'llmisvc-codecs-'));
  try {
    for (const out of [join(dir, 'a'), join(dir, 'b')]) assert.equal(generator('--out', out).status, 0);
    for (const file of FILES) {
      const a = readFileSync(join(dir, 'a', file), 'utf8');
      assert.equal(a, readFileSync(join(dir, 'b', file), 'utf8'), `${file} differs between two runs`);
      assert.equal(a, readFileSync(join(REPO_ROOT, file), 'utf8'));
    }
    cpSync(join(dir, 'a'), join(dir, 'c'), { recursive: true });
    const edited = join(dir, 'c', FILES[1]!);
    writeFileSync(edited, readFileSync(edited, 'utf8').replace('case 10:', 'case 11:'));
    const stale = generator('--check', '--out', join(dir, 'c'));
    assert.equal(stale.status, 1);
    assert.match(stale.stderr, /src\/transport\/generated\/health\.ts is stale/);
    assert.doesNotMatch(stale.stderr, /ext-proc\.ts/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
