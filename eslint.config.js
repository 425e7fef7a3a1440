import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'bench/results/', 'src/api/generated/', 'src/transport/generated/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  // Dependencies point one way (ARCHITECTURE.md): each rule names what a folder must not import.
  ...importBoundaries(),
);

/**
 * One `no-restricted-imports` block per source folder (flat config replaces a rule per file, so each folder gets all
 * its patterns in one block), for shipped files only: tests may reach test helpers and internals.
 */
function importBoundaries() {
  const everyFolder = [
    'api',
    'bench',
    'certs',
    'cli',
    'controller',
    'deps',
    'dev',
    'epp',
    'errors',
    'gateway',
    'kube',
    'local',
    'presets',
    'process',
    'render',
    'sim',
    'transport',
  ];
  // What each folder must not import, beyond cli/ (which nothing imports).
  const forbidden = {
    transport: everyFolder.filter((f) => f !== 'errors' && f !== 'transport'),
    certs: everyFolder.filter((f) => f !== 'errors' && f !== 'certs'),
    errors: everyFolder.filter((f) => f !== 'errors'),
    epp: ['controller', 'render', 'local', 'gateway', 'deps', 'dev', 'bench'],
    render: ['kube', 'controller', 'local', 'gateway', 'deps', 'dev', 'bench'],
    api: ['controller', 'render', 'epp', 'local', 'presets', 'kube', 'deps', 'dev'],
    kube: ['controller', 'render', 'epp', 'local', 'presets', 'deps', 'dev'],
    process: ['controller', 'render', 'epp', 'local', 'kube', 'deps', 'dev'],
  };
  const narrowEntries = [
    // Data the renderer embeds, kept where it belongs without loading the EPP's server (see the module).
    '!../epp/default-configs.js',
    // `generate` alone needs the CRD generator, which loads the Kubernetes OpenAPI model.
    '!../api/generated-files.js',
  ];
  const patternsOf = (folder) => {
    const banned = new Set([...(forbidden[folder] ?? []), ...(folder === 'cli' ? [] : ['cli'])]);
    return [
      { group: ['**/test/**'], message: 'Test helpers live under test/ and do not ship.' },
      {
        group: ['../*/*.js', '!../*/index.js', '../../*/*.js', '!../../*/index.js', ...narrowEntries],
        message: 'Import another folder through its index.js.',
      },
      ...(banned.size
        ? [
            {
              group: [...banned].flatMap((f) => [`../${f}/*`, `../../${f}/*`]),
              message: `src/${folder}/ must not import this folder: dependencies point one way (ARCHITECTURE.md).`,
            },
          ]
        : []),
    ];
  };
  return [
    ...everyFolder.map((folder) => ({
      files: [`src/${folder}/**/*.ts`],
      ignores: ['**/*.test.ts'],
      rules: { 'no-restricted-imports': ['error', { patterns: patternsOf(folder) }] },
    })),
    // The benchmarks run what ships: what they share with the tests lives in src/ (bench/, gateway/, process/).
    {
      files: ['bench/**/*.ts'],
      rules: {
        'no-restricted-imports': [
          'error',
          {
            patterns: [
              {
                group: ['**/test/**'],
                message: 'Benchmarks import nothing from test/: move what they share to src/.',
              },
            ],
          },
        ],
      },
    },
  ];
}
