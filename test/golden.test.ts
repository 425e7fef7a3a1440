// Golden tests: every example rendered exactly as `llmisvc render` prints it, compared with the reviewed output
// in test/golden/. After an intended change, regenerate with `UPDATE_GOLDEN=1 node scripts/test.mjs golden` and
// review the diff like code.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CLI, REPO_ROOT } from './harness/repo.js';

const update = process.env['UPDATE_GOLDEN'] === '1';

const cases: { golden: string; args: string[] }[] = [
  ...readdirSync(join(REPO_ROOT, 'examples'))
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => ({ golden: f, args: ['-f', `examples/${f}`] })),
  {
    golden: 'quickstart.gie-v1alpha2-cluster.yaml',
    args: [
      '-f',
      'examples/quickstart.yaml',
      '--api-versions',
      'gateway.networking.k8s.io/v1,inference.networking.x-k8s.io/v1alpha2',
    ],
  },
];

describe('golden: llmisvc render on every example', () => {
  for (const { golden, args } of cases) {
    it(golden, () => {
      const actual = execFileSync(process.execPath, [CLI, 'render', ...args], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
      });
      const path = join(REPO_ROOT, 'test', 'golden', golden);
      if (update) writeFileSync(path, actual);
      assert.equal(actual, readFileSync(path, 'utf8'), `render output differs from test/golden/${golden}`);
    });
  }
});
