/**
 * The EndpointPickerConfig in llm-d-router's layout (the EPP moved there from GIE in v1.6.0): a full config as the
 * llm-d docs show one loads; every unknown field is an error naming its path; feature gates; plugin types that are
 * refused say so; what is accepted but not acted on is a warning naming the field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ValidationError } from '../errors/index.js';
import { loadEndpointPickerConfig, type EndpointPickerConfig } from './config.js';

/** An llm-d-router config with every section, written for this test in the shape the llm-d docs use. */
const LLMD_CONFIG = `apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
featureGates:
- flowControl=false
- haPopulateNonLeaderDatastore
plugins:
- type: metrics-data-source
  parameters: {scheme: http, path: /metrics}
- type: core-metrics-extractor
- type: openai-parser
- name: detector
  type: utilization-detector
  parameters: {queueDepthThreshold: 8, kvCacheUtilThreshold: 0.9, metricsStalenessThreshold: 500ms, headroom: 0.2}
- type: prefill-filter
- type: decode-filter
- name: gpu-only
  type: label-selector-filter
  parameters:
    matchLabels: {hardware: h100}
    matchExpressions:
    - {key: zone, operator: In, values: [a, b]}
    - {key: draining, operator: DoesNotExist}
- name: canary
  type: by-label
  parameters: {label: track, validValues: [stable], allowsNoLabel: true}
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
  parameters: {blockSizeTokens: 16, maxPrefixBlocksToMatch: 256, lruCapacityPerServer: 31250}
- type: max-score-picker
- type: weighted-random-picker
  parameters: {maxNumOfEndpoints: 1}
- type: prefill-header-handler
- type: pd-profile-handler
  parameters: {threshold: 100}
- type: fcfs-ordering-policy
schedulingProfiles:
- name: prefill
  plugins:
  - pluginRef: prefill-filter
  - pluginRef: queue-scorer
    weight: null
  - pluginRef: prefix-cache-scorer
    weight: 3
  - pluginRef: max-score-picker
- name: decode
  plugins:
  - pluginRef: decode-filter
  - pluginRef: gpu-only
  - pluginRef: canary
  - pluginRef: detector
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: prefix-cache-scorer
    weight: 3
  - pluginRef: weighted-random-picker
flowControl:
  saturationDetector: {pluginRef: detector}
  maxRequests: 1k
  maxBytes: 1Gi
  defaultRequestTTL: 60s
  priorityBands:
  - {priority: 0, maxRequests: "100", orderingPolicyRef: fcfs-ordering-policy}
  defaultNegativePriorityBand: {maxRequests: "10"}
  enableEviction: false
requestHandler:
  parsers:
  - pluginRef: openai-parser
dataLayer:
  sources:
  - pluginRef: metrics-data-source
    extractors:
    - pluginRef: core-metrics-extractor
`;

function problemsOf(text: string): { path: string; message: string }[] {
  try {
    loadEndpointPickerConfig(text);
  } catch (error) {
    assert.ok(error instanceof ValidationError, String(error));
    return error.problems.map((p) => ({ path: p.path, message: p.message }));
  }
  assert.fail('the config loaded but should not have');
}

function warnedPaths(config: EndpointPickerConfig): string[] {
  return config.warnings.map((w) => w.path);
}

test('llm-d layout: a full llm-d-router config loads, and what it sets is what runs', () => {
  const c = loadEndpointPickerConfig(LLMD_CONFIG);
  assert.deepEqual([...c.scheduler.profiles.keys()], ['prefill', 'decode']);
  assert.equal(c.scheduler.handler.type, 'pd-profile-handler');
  const decode = c.scheduler.profiles.get('decode')!;
  assert.deepEqual(
    decode.filters.map((f) => f.type),
    ['decode-filter', 'label-selector-filter', 'by-label', 'utilization-detector'],
  );
  assert.equal(decode.picker.type, 'weighted-random-picker');
  // weight: null is the default weight 1, as llm-d's strict decoding allows.
  assert.deepEqual(
    c.scheduler.profiles.get('prefill')!.scorers.map((s) => [s.scorer.type, s.weight]),
    [
      ['queue-scorer', 1],
      ['prefix-cache-scorer', 3],
    ],
  );
  // flowControl.saturationDetector is acted on: shedding uses the detector's thresholds.
  assert.deepEqual(c.saturation, {
    queueDepthThreshold: 8,
    kvCacheUtilThreshold: 0.9,
    metricsStalenessThresholdMs: 500,
  });
  assert.equal(c.featureGates.get('flowControl'), false);
  assert.equal(c.featureGates.get('haPopulateNonLeaderDatastore'), true);
  // Everything accepted but not acted on is named, never dropped silently.
  assert.deepEqual(warnedPaths(c).sort(), [
    'flowControl.defaultNegativePriorityBand',
    'flowControl.defaultRequestTTL',
    'flowControl.enableEviction',
    'flowControl.maxBytes',
    'flowControl.maxRequests',
    'flowControl.priorityBands',
    'plugins[1]',
  ]);
  // metrics-data-source is acted on (its path is where the scraper goes); core-metrics-extractor is not.
  assert.match(
    c.warnings.find((w) => w.path === 'plugins[1]')!.message,
    /core-metrics-extractor.*not acted on/,
  );
  assert.match(
    c.warnings.find((w) => w.path === 'flowControl.maxRequests')!.message,
    /not acted on: the flowControl feature gate is off/,
  );
});

test('llm-d layout: every unknown field is an error naming its path', () => {
  const base = LLMD_CONFIG;
  const cases: { edit: (s: string) => string; path: string }[] = [
    { edit: (s) => `${s}colour: blue\n`, path: 'colour' },
    {
      edit: (s) =>
        s.replace('- type: core-metrics-extractor', '- type: core-metrics-extractor\n  colour: blue'),
      path: 'plugins[1].colour',
    },
    {
      edit: (s) => s.replace('- name: prefill\n', '- name: prefill\n  colour: blue\n'),
      path: 'schedulingProfiles[0].colour',
    },
    {
      edit: (s) =>
        s.replace('  - pluginRef: prefill-filter', '  - pluginRef: prefill-filter\n    colour: blue'),
      path: 'schedulingProfiles[0].plugins[0].colour',
    },
    {
      edit: (s) => s.replace('  maxBytes: 1Gi', '  maxBytes: 1Gi\n  colour: blue'),
      path: 'flowControl.colour',
    },
    {
      edit: (s) => s.replace('{priority: 0, maxRequests', '{priority: 0, colour: blue, maxRequests'),
      path: 'flowControl.priorityBands[0].colour',
    },
    {
      edit: (s) => s.replace('{pluginRef: detector}', '{pluginRef: detector, colour: blue}'),
      path: 'flowControl.saturationDetector.colour',
    },
    {
      edit: (s) => s.replace('requestHandler:\n', 'requestHandler:\n  colour: blue\n'),
      path: 'requestHandler.colour',
    },
    {
      edit: (s) =>
        s.replace('  - pluginRef: openai-parser', '  - pluginRef: openai-parser\n    colour: blue'),
      path: 'requestHandler.parsers[0].colour',
    },
    { edit: (s) => s.replace('dataLayer:\n', 'dataLayer:\n  colour: blue\n'), path: 'dataLayer.colour' },
    {
      edit: (s) =>
        s.replace(
          '  - pluginRef: metrics-data-source',
          '  - pluginRef: metrics-data-source\n    colour: blue',
        ),
      path: 'dataLayer.sources[0].colour',
    },
    {
      edit: (s) => s.replace('headroom: 0.2}', 'headroom: 0.2, colour: blue}'),
      path: 'plugins[3].parameters.colour',
    },
    {
      edit: (s) =>
        s.replace(
          '{key: draining, operator: DoesNotExist}',
          '{key: draining, operator: DoesNotExist, colour: blue}',
        ),
      path: 'plugins[6].parameters.matchExpressions[1].colour',
    },
    {
      edit: (s) => s.replace('allowsNoLabel: true}', 'allowsNoLabel: true, colour: blue}'),
      path: 'plugins[7].parameters.colour',
    },
  ];
  for (const c of cases) {
    const edited = c.edit(base);
    assert.notEqual(edited, base, `the edit for ${c.path} applies`);
    const problems = problemsOf(edited);
    assert.deepEqual(
      problems.map((p) => p.path),
      [c.path],
      JSON.stringify(problems),
    );
    assert.match(problems[0]!.message, /unknown (field|parameter)/);
  }
});

test('llm-d layout: feature gates: name, name=true, name=false; unknown gates and values are errors', () => {
  const withGates = (gates: string) =>
    `apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nfeatureGates: ${gates}\nplugins:\n- type: queue-scorer\n`;
  const on = loadEndpointPickerConfig(withGates('[flowControl]'));
  assert.equal(on.featureGates.get('flowControl'), true);
  assert.deepEqual(warnedPaths(on), [], 'flow control on is acted on');
  assert.ok(on.flowControl, 'the gate on builds flow control settings');
  const off = loadEndpointPickerConfig(withGates('[flowControl=false, haPopulateNonLeaderDatastore=true]'));
  assert.equal(off.featureGates.get('flowControl'), false);
  assert.deepEqual(off.warnings, [], 'values this EPP honours warn about nothing');
  const defaults = loadEndpointPickerConfig(withGates('[]'));
  assert.equal(defaults.featureGates.get('haPopulateNonLeaderDatastore'), true, 'upstream default');
  const haOff = loadEndpointPickerConfig(withGates('[haPopulateNonLeaderDatastore=false]'));
  assert.equal(haOff.featureGates.get('haPopulateNonLeaderDatastore'), false);
  assert.deepEqual(warnedPaths(haOff), ['featureGates[0]']);
  assert.deepEqual(warnedPaths(loadEndpointPickerConfig(withGates('[dataLayer]'))), ['featureGates[0]']);

  const bad = problemsOf(withGates('[flowControl=maybe, fastMode, 3]'));
  assert.deepEqual(
    bad.map((p) => p.path),
    ['featureGates[0]', 'featureGates[1]', 'featureGates[2]'],
  );
  assert.match(bad[0]!.message, /true or false/);
  assert.match(bad[1]!.message, /unknown feature gate "fastMode" \(known: flowControl, /);
  assert.deepEqual(
    problemsOf(withGates('flowControl')).map((p) => p.path),
    ['featureGates'],
  );
});

test('llm-d layout: plugin types not supported yet are refused by name; a reference to one is not reported twice', () => {
  const problems = problemsOf(`apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- name: precise
  type: encode-filter
- type: no-such-plugin
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: precise
`);
  assert.deepEqual(
    problems.map((p) => p.path),
    ['plugins[0].type', 'plugins[1].type'],
  );
  assert.match(
    problems[0]!.message,
    /plugin type "encode-filter" is an llm-d plugin this EPP does not implement: endpoints have no encode role/,
  );
  assert.match(problems[1]!.message, /unknown plugin type "no-such-plugin" \(known: .*by-label/);
});

test('llm-d layout: the saturation detector in flowControl, at the deprecated top level, or by its default name', () => {
  const config = (rest: string) =>
    `apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: queue-scorer\n- type: utilization-detector\n  parameters: {queueDepthThreshold: 3}\n${rest}`;
  const moved = loadEndpointPickerConfig(config('saturationDetector: {pluginRef: utilization-detector}\n'));
  assert.equal(moved.saturation.queueDepthThreshold, 3);
  assert.deepEqual(warnedPaths(moved), ['saturationDetector']);
  assert.match(moved.warnings[0]!.message, /deprecated: move it to flowControl.saturationDetector/);
  const both = loadEndpointPickerConfig(
    config(
      'saturationDetector: {queueDepthThreshold: 9}\nflowControl: {saturationDetector: {pluginRef: utilization-detector}}\n',
    ),
  );
  assert.equal(both.saturation.queueDepthThreshold, 3, 'the new field wins, as upstream');
  assert.match(both.warnings[0]!.message, /ignored/);
  // GIE's older threshold form still works.
  const gie = loadEndpointPickerConfig(
    config('saturationDetector: {queueDepthThreshold: 7, metricsStalenessThreshold: 1s}\n'),
  );
  assert.equal(gie.saturation.queueDepthThreshold, 7);
  assert.equal(gie.saturation.metricsStalenessThresholdMs, 1000);
  // As upstream, "utilization-detector" with no plugin of that name is the default detector.
  const implicit = loadEndpointPickerConfig(
    `apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: queue-scorer\nflowControl: {saturationDetector: {pluginRef: utilization-detector}}\n`,
  );
  assert.deepEqual(implicit.saturation, {
    queueDepthThreshold: 5,
    kvCacheUtilThreshold: 0.8,
    metricsStalenessThresholdMs: 200,
  });
  assert.deepEqual(
    problemsOf(config('flowControl: {saturationDetector: {pluginRef: queue-scorer}}\n')).map((p) => p.path),
    ['flowControl.saturationDetector.pluginRef'],
  );
});

test('llm-d layout: parsers, data layer discovery, and a config without profiles', () => {
  const head = 'apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\n';
  const deprecated = loadEndpointPickerConfig(
    `${head}plugins:\n- type: queue-scorer\nparser: {pluginRef: openai-parser}\n`,
  );
  assert.deepEqual(warnedPaths(deprecated), ['parser']);
  const parserProblems = problemsOf(
    `${head}plugins:\n- type: queue-scorer\n- type: anthropic-parser\nrequestHandler: {parsers: [{pluginRef: queue-scorer}]}\n`,
  );
  assert.deepEqual(
    parserProblems.map((p) => p.path),
    ['plugins[1].type', 'requestHandler.parsers[0].pluginRef'],
  );
  assert.match(parserProblems[0]!.message, /does not implement: this EPP parses OpenAI requests/);
  const discovery = problemsOf(
    `${head}plugins:\n- type: queue-scorer\n- {name: files, type: file-discovery, parameters: {path: /etc/endpoints.yaml}}\ndataLayer: {discovery: {endpoints: {pluginRef: files}}}\n`,
  );
  assert.deepEqual(
    discovery.map((p) => p.path),
    ['plugins[1].type'],
  );
  assert.match(discovery[0]!.message, /--endpoints/);
  // No schedulingProfiles: one "default" profile with every filter, scorer and picker, as upstream.
  const auto = loadEndpointPickerConfig(
    `${head}plugins:\n- type: decode-filter\n- type: queue-scorer\n- type: random-picker\n- type: openai-parser\n`,
  );
  const profile = auto.scheduler.profiles.get('default')!;
  assert.deepEqual(
    profile.filters.map((f) => f.type),
    ['decode-filter'],
  );
  assert.deepEqual(
    profile.scorers.map((s) => [s.scorer.type, s.weight]),
    [['queue-scorer', 1]],
  );
  assert.equal(profile.picker.type, 'random-picker');
});

test('llm-d layout: llm-d.ai/v1 loads, with its crossReplica and discovery layout; v1alpha1 keeps its own', () => {
  const v1 = loadEndpointPickerConfig(`apiVersion: llm-d.ai/v1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
dataLayer:
  crossReplica: {syncerPluginRef: syncer, syncInterval: 500ms, publishTimeout: 2s}
requestHandler:
  propagatePriority: true
`);
  assert.equal(v1.propagatePriority, true);
  assert.deepEqual(warnedPaths(v1), [
    'dataLayer.crossReplica.syncerPluginRef',
    'dataLayer.crossReplica.syncInterval',
    'dataLayer.crossReplica.publishTimeout',
  ]);
  assert.match(v1.warnings[0]!.message, /not acted on: replicas do not share state/);
  const v1alpha1 = loadEndpointPickerConfig(`apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
dataLayer: {crossReplicaSyncerPluginRef: syncer, crossReplicaSyncInterval: 500ms, crossReplicaPublishTimeout: 2s}
`);
  assert.equal(v1alpha1.propagatePriority, false);
  assert.deepEqual(warnedPaths(v1alpha1), [
    'dataLayer.crossReplicaSyncerPluginRef',
    'dataLayer.crossReplicaSyncInterval',
    'dataLayer.crossReplicaPublishTimeout',
  ]);
  // Each version's layout is its own: the other one's spelling is an unknown field, as llm-d-router's strict decoding.
  const head = (v: string) =>
    `apiVersion: ${v}\nkind: EndpointPickerConfig\nplugins:\n- type: queue-scorer\n`;
  assert.deepEqual(
    problemsOf(
      `${head('llm-d.ai/v1')}dataLayer: {crossReplicaSyncInterval: 1s, discovery: {pluginRef: x}}\n`,
    ).map((p) => p.path),
    ['dataLayer.crossReplicaSyncInterval', 'dataLayer.discovery.pluginRef'],
  );
  assert.deepEqual(
    problemsOf(`${head('llm-d.ai/v1alpha1')}dataLayer: {crossReplica: {syncInterval: 1s}}\n`).map(
      (p) => p.path,
    ),
    ['dataLayer.crossReplica'],
  );
  // Bad values name their field.
  assert.deepEqual(
    problemsOf(
      `${head('llm-d.ai/v1')}dataLayer: {crossReplica: {publishTimeout: soon}}\nrequestHandler: {propagatePriority: "yes"}\n`,
    ),
    [
      { path: 'requestHandler.propagatePriority', message: 'must be true or false' },
      { path: 'dataLayer.crossReplica.publishTimeout', message: 'must be a duration like "1s"' },
    ],
  );
  // Peer discovery: a reference to a plugin that exists but is no peer discovery plugin is refused with why.
  const peers = problemsOf(
    `${head('llm-d.ai/v1')}dataLayer: {discovery: {peers: {pluginRef: queue-scorer}}}\n`,
  );
  assert.deepEqual(
    peers.map((p) => p.path),
    ['dataLayer.discovery.peers.pluginRef'],
  );
  assert.match(peers[0]!.message, /do not discover each other/);
  assert.match(problemsOf(head('llm-d.ai/v2'))[0]!.message, /must be one of .*llm-d\.ai\/v1,/);
});

test('llm-d layout: a profile naming a data producer loads, as upstream skips it; the reference is a warning', () => {
  const config = loadEndpointPickerConfig(`apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: token-producer
  parameters: {modelName: Qwen/Qwen3-32B, vllm: {url: "http://localhost:8000"}}
- type: approx-prefix-cache-producer
- type: prefix-cache-scorer
- type: decode-filter
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: decode-filter
  - pluginRef: token-producer
  - pluginRef: approx-prefix-cache-producer
    weight: 3
  - pluginRef: prefix-cache-scorer
    weight: 2.0
  - pluginRef: max-score-picker
`);
  assert.deepEqual(warnedPaths(config), [
    'schedulingProfiles[0].plugins[1].pluginRef',
    'schedulingProfiles[0].plugins[2].pluginRef',
  ]);
  assert.match(
    config.warnings[0]!.message,
    /"token-producer" \(token-producer\) is not a filter, scorer or picker: ignored in this profile, as upstream/,
  );
  const profile = config.scheduler.profiles.get('default')!;
  assert.deepEqual(
    profile.filters.map((f) => f.type),
    ['decode-filter'],
  );
  assert.deepEqual(
    profile.scorers.map((s) => [s.scorer.type, s.weight]),
    [['prefix-cache-scorer', 2]],
  );
  assert.equal(profile.picker.type, 'max-score-picker');
  // The producers still run, as plugins of the config.
  assert.deepEqual(
    config.preparers.map((p) => p.type),
    ['token-producer'],
  );
  assert.deepEqual(
    config.scheduler.producers!.map((p) => p.type),
    ['approx-prefix-cache-producer'],
  );
  // A weight on a skipped reference is still checked: a hostile value is refused, naming it.
  const problems = problemsOf(`apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: approx-prefix-cache-producer
- type: queue-scorer
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: approx-prefix-cache-producer, weight: -1}
  - {pluginRef: queue-scorer}
  - {pluginRef: nowhere}
`);
  assert.deepEqual(
    problems.map((p) => p.path),
    ['schedulingProfiles[0].plugins[0].weight', 'schedulingProfiles[0].plugins[2].pluginRef'],
  );
});
