import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readManifestObjects } from './manifests.js';

describe('manifest files', () => {
  it('yield every object of every document in order, skipping empty documents', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llmisvc-manifests-test-'));
    try {
      await writeFile(
        join(dir, 'a.yaml'),
        '---\n# only a comment\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: one}\n---\n' +
          'apiVersion: v1\nkind: Namespace\nmetadata: {name: two}\n',
      );
      await writeFile(join(dir, 'b.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: three}\n');
      const objects = await readManifestObjects([join(dir, 'a.yaml'), join(dir, 'b.yaml')]);
      assert.deepEqual(
        objects.map((o) => `${o.kind}/${o.metadata?.name}`),
        ['Namespace/one', 'Namespace/two', 'ConfigMap/three'],
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('name the file of a YAML syntax error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llmisvc-manifests-test-'));
    try {
      await writeFile(join(dir, 'broken.yaml'), 'kind: [unclosed\n');
      await assert.rejects(readManifestObjects([join(dir, 'broken.yaml')]), {
        code: 'LLMISVC_ERR_INPUT',
        message: /broken\.yaml/,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
