// The generated files (CRDs, the PodSpec field table) must match what `npm run generate` writes today.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { generatedFiles } from '../src/api/generated-files.js';
import { REPO_ROOT } from './harness/repo.js';

describe('generated files', () => {
  it('are up to date with the schema (run `npm run generate` after changing it)', async () => {
    for (const [path, content] of Object.entries(await generatedFiles())) {
      let committed = '';
      try {
        committed = readFileSync(join(REPO_ROOT, path), 'utf8');
      } catch {
        assert.fail(`${path} is missing: run npm run generate`);
      }
      assert.equal(committed, content, `${path} is out of date: run npm run generate`);
    }
  });

  it('CRDs serve v1alpha1 and v1alpha2, store v1alpha2 and print URL, Ready, Reason, Age', async () => {
    const files = await generatedFiles();
    const crd = parse(files['deploy/crds/serving.kserve.io_llminferenceservices.yaml']!) as {
      spec: {
        names: { shortNames: string[] };
        versions: {
          name: string;
          served: boolean;
          storage: boolean;
          additionalPrinterColumns: { name: string }[];
        }[];
      };
    };
    assert.deepEqual(crd.spec.names.shortNames, ['llmisvc']);
    assert.deepEqual(
      crd.spec.versions.map((v) => [v.name, v.served, v.storage]),
      [
        ['v1alpha1', true, false],
        ['v1alpha2', true, true],
      ],
    );
    for (const version of crd.spec.versions) {
      assert.deepEqual(
        version.additionalPrinterColumns.map((c) => c.name),
        ['URL', 'Ready', 'Reason', 'Age'],
      );
    }
  });

  it('CRD schemas are structural: every node has a type, no additionalProperties: false, no unsupported keywords', async () => {
    const files = await generatedFiles();
    const problems: string[] = [];
    const walk = (node: Record<string, unknown>, path: string) => {
      // The one typeless form Kubernetes allows: an int-or-string with exactly these two branches.
      if (node['x-kubernetes-int-or-string'] === true) {
        if (JSON.stringify(node['anyOf']) !== JSON.stringify([{ type: 'integer' }, { type: 'string' }])) {
          problems.push(`${path}: int-or-string without anyOf [integer, string]`);
        }
        return;
      }
      if (
        node['x-kubernetes-preserve-unknown-fields'] !== true &&
        node['type'] === undefined &&
        path !== ''
      ) {
        problems.push(`${path}: no type`);
      }
      for (const bad of [
        'additionalProperties',
        '$ref',
        'anyOf',
        'oneOf',
        'allOf',
        'propertyNames',
        '$schema',
      ]) {
        if (
          bad in node &&
          !(bad === 'additionalProperties' && typeof node[bad] === 'object' && !('properties' in node))
        ) {
          problems.push(`${path}: ${bad}`);
        }
      }
      for (const [key, child] of Object.entries(
        (node['properties'] ?? {}) as Record<string, Record<string, unknown>>,
      )) {
        walk(child, `${path}.${key}`);
      }
      if (node['items']) walk(node['items'] as Record<string, unknown>, `${path}[]`);
      if (typeof node['additionalProperties'] === 'object')
        walk(node['additionalProperties'] as Record<string, unknown>, `${path}{}`);
    };
    for (const [path, content] of Object.entries(files)) {
      if (!path.startsWith('deploy/crds/serving')) continue;
      const crd = parse(content) as {
        spec: { versions: { name: string; schema: { openAPIV3Schema: Record<string, unknown> } }[] };
      };
      for (const version of crd.spec.versions)
        walk(version.schema.openAPIV3Schema, `${path}:${version.name}`);
    }
    assert.deepEqual(problems, []);
  });
});
