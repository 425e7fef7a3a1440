import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ValidationError } from '../errors/index.js';
import {
  defaultEndpointPickerConfig,
  loadEndpointPickerConfig,
  parseDurationMs,
  prefillDecodeEndpointPickerConfig,
} from './config.js';
import { weighsInFlight } from './scheduler.js';

test('config: the shipped configs load', () => {
  const d = loadEndpointPickerConfig(defaultEndpointPickerConfig);
  const profile = d.scheduler.profiles.get('default')!;
  assert.deepEqual(
    profile.scorers.map((s) => [s.scorer.type, s.weight]),
    [
      ['queue-scorer', 2],
      ['kv-cache-utilization-scorer', 2],
      ['prefix-cache-scorer', 3],
      ['active-request-scorer', 2],
    ],
  );
  assert.equal(profile.picker.type, 'max-score-picker');
  assert.equal(weighsInFlight(d.scheduler), true);
  const pd = loadEndpointPickerConfig(prefillDecodeEndpointPickerConfig);
  assert.deepEqual([...pd.scheduler.profiles.keys()], ['prefill', 'decode']);
  assert.equal(pd.scheduler.handler.type, 'pd-profile-handler');
  assert.equal(weighsInFlight(pd.scheduler), true);
});

test('config: a config weighs in-flight counts only when every profile has the active-request scorer above 0', () => {
  const config = (weights: [string, number][]) =>
    loadEndpointPickerConfig(`apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
${weights.length > 1 ? '- type: pd-profile-handler\n' : ''}- type: queue-scorer
- type: active-request-scorer
- type: max-score-picker
schedulingProfiles:
${weights
  .map(
    ([name, weight]) =>
      `- name: ${name}\n  plugins:\n  - {pluginRef: queue-scorer}\n  - {pluginRef: active-request-scorer, weight: ${weight}}\n  - {pluginRef: max-score-picker}`,
  )
  .join('\n')}
`).scheduler;
  assert.equal(weighsInFlight(config([['default', 1]])), true);
  assert.equal(
    weighsInFlight(
      config([
        ['prefill', 1],
        ['decode', 1],
      ]),
    ),
    true,
  );
  assert.equal(weighsInFlight(config([['default', 0]])), false, 'weight 0 does not count');
  assert.equal(
    weighsInFlight(
      config([
        ['a', 1],
        ['b', 0],
      ]),
    ),
    false,
    'one profile without it',
  );
  const queueOnly = loadEndpointPickerConfig(
    'apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: queue-scorer\n',
  );
  assert.equal(weighsInFlight(queueOnly.scheduler), false);
});

test('config: llm-d apiVersion and plugin aliases are accepted', () => {
  const c = loadEndpointPickerConfig(`apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: kv-cache-scorer
- type: prefix-cache
  parameters: {hashBlockSize: 5, maxPrefixBlocksToMatch: 256, lruCapacityPerServer: 31250}
- type: max-score
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: kv-cache-scorer
  - pluginRef: prefix-cache
    weight: 50
  - pluginRef: max-score
`);
  assert.deepEqual(
    c.scheduler.profiles.get('default')!.scorers.map((s) => s.scorer.type),
    ['kv-cache-utilization-scorer', 'prefix-cache-scorer'],
  );
});

test('config: every mistake is reported with its path', () => {
  const cases: { text: string; paths: string[] }[] = [
    {
      text: 'apiVersion: v1\nkind: Foo\nplugins: []\nschedulingProfiles: {}',
      paths: ['apiVersion', 'kind', 'plugins', 'schedulingProfiles'],
    },
    {
      text: `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer-typo
- type: prefix-cache-scorer
  parameters: {hashBlockSize: -1, colour: blue}
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: missing
  - pluginRef: prefix-cache-scorer
    weight: -2
`,
      paths: [
        'plugins[0].type',
        'plugins[1].parameters.hashBlockSize',
        'plugins[1].parameters.colour',
        'schedulingProfiles[0].plugins[0].pluginRef',
        'schedulingProfiles[0].plugins[1].weight',
      ],
    },
  ];
  for (const c of cases) {
    assert.throws(
      () => loadEndpointPickerConfig(c.text),
      (error: unknown) => {
        assert.ok(error instanceof ValidationError);
        assert.deepEqual(error.problems.map((p) => p.path).sort(), [...c.paths].sort());
        return true;
      },
    );
  }
});

test('config: durations', () => {
  const table: [unknown, number | undefined][] = [
    ['200ms', 200],
    ['2s', 2000],
    ['1m', 60000],
    [50, 50],
    ['soon', undefined],
    [-1, undefined],
  ];
  for (const [input, want] of table) assert.equal(parseDurationMs(input), want, String(input));
});

test('config: prefix-cache-scorer autoTune parameters under GIE / llm-d names', () => {
  const config = (parameters: string) => `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: prefix-cache-scorer
  parameters: ${parameters}
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: prefix-cache-scorer
`;
  const scorerOf = (parameters: string) =>
    loadEndpointPickerConfig(config(parameters)).plugins.get('prefix-cache-scorer') as unknown as {
      charsPerToken(address: string): number | undefined;
      postResponse?: unknown;
    };
  const tuned = scorerOf('{autoTune: true, averageCharactersPerToken: 3.5, lruCapacityPerServer: 1000}');
  assert.equal(tuned.charsPerToken('any'), 3.5);
  assert.equal(typeof tuned.postResponse, 'function');
  assert.equal(scorerOf('{autoTune: false}').charsPerToken('any'), undefined);
  // `blockSizeTokens` (newer llm-d) is converted to characters with averageCharactersPerToken.
  assert.doesNotThrow(() => scorerOf('{autoTune: true, blockSizeTokens: 16}'));

  const bad: { parameters: string; path: string; message: RegExp }[] = [
    { parameters: '{autoTune: "yes"}', path: 'autoTune', message: /true or false/ },
    {
      parameters: '{averageCharactersPerToken: 0}',
      path: 'averageCharactersPerToken',
      message: /between 0.5 and 32/,
    },
    { parameters: '{averageCharactersPerToken: 100}', path: 'averageCharactersPerToken', message: /between/ },
    { parameters: '{blockSizeTokens: 0}', path: 'blockSizeTokens', message: /between 1 and/ },
    { parameters: '{blockSizeTokens: 1.5}', path: 'blockSizeTokens', message: /integer/ },
    { parameters: '{blockSizeTokens: 16, hashBlockSize: 64}', path: 'blockSizeTokens', message: /once/ },
    { parameters: '{lruCapacityPerServer: 0}', path: 'lruCapacityPerServer', message: /between 1 and/ },
  ];
  for (const c of bad) {
    assert.throws(
      () => loadEndpointPickerConfig(config(c.parameters)),
      (error: unknown) => {
        assert.ok(error instanceof ValidationError, c.parameters);
        assert.equal(error.problems.length, 1, JSON.stringify(error.problems));
        assert.equal(error.problems[0]!.path, `plugins[0].parameters.${c.path}`);
        assert.match(error.problems[0]!.message, c.message);
        assert.match(error.message, new RegExp(c.path), 'the message a user sees names the parameter');
        return true;
      },
    );
  }
});
