import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ESLint } from 'eslint';
import { REPO_ROOT } from './harness/repo.js';

/** The rule messages ESLint gives `code` as if it were the shipped file `filePath`. */
async function importErrors(filePath: string, code: string): Promise<string[]> {
  // The file does not exist, so the type-aware rules' project service must be told to lint it on its own.
  const eslint = new ESLint({
    cwd: REPO_ROOT,
    overrideConfig: {
      files: ['**/*.ts'],
      languageOptions: {
        parserOptions: {
          projectService: { allowDefaultProject: ['src/*/*.ts', 'src/*/*/*.ts', 'bench/*.ts'] },
        },
      },
    },
  });
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

test('the lint rules keep dependencies pointing one way', async () => {
  const intoEpp = await importErrors(
    'src/transport/wrong.ts',
    "export { startEpp } from '../epp/index.js';\n",
  );
  assert.match(intoEpp.join('\n'), /src\/transport\/ must not import this folder/);
  const intoRenderFromEpp = await importErrors(
    'src/epp/wrong.ts',
    "export { renderService } from '../render/index.js';\n",
  );
  assert.match(intoRenderFromEpp.join('\n'), /src\/epp\/ must not import this folder/);
  const pastIndex = await importErrors(
    'src/sim/wrong.ts',
    "export { Reader } from '../transport/protobuf-wire.js';\n",
  );
  assert.match(pastIndex.join('\n'), /through its index\.js/);
  const testHelper = await importErrors(
    'src/epp/wrong.ts',
    "export * from '../../test/harness/endpoints.js';\n",
  );
  assert.match(testHelper.join('\n'), /Test helpers live under test\//);
  const benchIntoTest = await importErrors(
    'bench/wrong.ts',
    "export * from '../test/controller-support.js';\n",
  );
  assert.match(benchIntoTest.join('\n'), /Benchmarks import nothing from test\//);
});

test('the allowed imports pass', async () => {
  assert.deepEqual(
    await importErrors('src/epp/fine.ts', "export { LlmisvcError } from '../errors/index.js';\n"),
    [],
  );
  assert.deepEqual(
    await importErrors(
      'src/render/fine.ts',
      "export { defaultEndpointPickerConfig } from '../epp/default-configs.js';\n",
    ),
    [],
  );
  assert.deepEqual(
    await importErrors('src/epp/plugins/fine.ts', "export * from '../../errors/index.js';\n"),
    [],
  );
});

test('the npm package ships no test and no test helper', () => {
  const packed = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO_ROOT });
  const files = (JSON.parse(packed.toString()) as { files: { path: string }[] }[])[0]!.files.map(
    (f) => f.path,
  );
  assert.ok(files.includes('dist/src/epp/server.js'), 'the package holds the built sources');
  assert.deepEqual(
    files.filter((f) => /\.test\.|(^|\/)test\//.test(f)),
    [],
  );
});

test('no protobuf schema library at run time: the codecs are generated, protobufjs is a build and test tool', () => {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
    devDependencies: Record<string, string>;
  };
  for (const name of ['@grpc/grpc-js-xds', '@grpc/proto-loader', 'protobufjs'])
    assert.equal(pkg.dependencies[name], undefined, `${name} is a runtime dependency`);
  assert.ok(pkg.devDependencies['protobufjs'], 'the codec generator parses the protos with protobufjs');
  const shipped = execFileSync('git', ['ls-files', 'src'], { cwd: REPO_ROOT })
    .toString()
    .split('\n')
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
  for (const file of shipped) {
    const text = readFileSync(join(REPO_ROOT, file), 'utf8');
    assert.doesNotMatch(text, /from '(protobufjs|@grpc\/proto-loader|@grpc\/grpc-js-xds)'/, file);
  }
});
