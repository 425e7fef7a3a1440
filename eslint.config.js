import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'node_modules/',
      'bench/results/',
      'bench/out/',
      'src/api/generated/',
      'src/transport/generated/',
    ],
  },
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
  // Type-aware rules: the ones that catch real bugs (lost promises, promises where callbacks are expected, awaiting a
  // non-promise, "[object Object]" in messages, unhandled union members, throwing non-errors). The TypeScript files
  // are all in tsconfig.json, so the project service finds their program without a second tsconfig.
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // node:test's test/describe/it return promises the runner itself awaits and reports.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unnecessary-type-assertion': 'error',
      'require-await': 'off',
      '@typescript-eslint/require-await': 'error',
      // Numbers, booleans, regexps and null/undefined print as what they are (an exit code of `null` or a missing
      // field reads right in a message); objects print "[object Object]", arrays join silently, and any/unknown hide
      // which of those they are: those must be converted on purpose.
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        {
          allowNumber: true,
          allowBoolean: true,
          allowNullish: true,
          allowRegExp: true,
          allowAny: false,
          allowArray: false,
          allowNever: false,
        },
      ],
      '@typescript-eslint/no-base-to-string': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true, requireDefaultForNonUnion: false },
      ],
      '@typescript-eslint/prefer-promise-reject-errors': 'error',
      'no-throw-literal': 'off',
      '@typescript-eslint/only-throw-error': 'error',
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
