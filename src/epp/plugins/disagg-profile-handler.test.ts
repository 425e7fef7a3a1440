import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint, seededRandom } from '../../../test/harness/endpoints.js';
import { ValidationError } from '../../errors/index.js';
import { loadEndpointPickerConfig } from '../config.js';
import { decide, emptyModelDirectory } from '../director.js';
import { parseStageOrder } from './disagg-profile-handler.js';

/** llm-d-router's P/D layout, written for this test in the shape its deploy/config samples use. */
function pdConfig(
  handler: string,
  decider = '- type: prefix-based-pd-decider\n  parameters: {nonCachedTokens: 16}\n',
) {
  return `apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: prefix-cache-scorer
- type: queue-scorer
- type: prefill-filter
- type: decode-filter
- type: max-score-picker
${handler}${decider}schedulingProfiles:
- name: prefill
  plugins:
  - pluginRef: prefill-filter
  - pluginRef: max-score-picker
  - {pluginRef: prefix-cache-scorer, weight: 2}
  - {pluginRef: queue-scorer, weight: 1}
- name: decode
  plugins:
  - pluginRef: decode-filter
  - pluginRef: max-score-picker
  - {pluginRef: prefix-cache-scorer, weight: 2}
  - {pluginRef: queue-scorer, weight: 1}
`;
}

const DECODE_FIRST =
  '- type: disagg-profile-handler\n  parameters: {deciders: {prefill: prefix-based-pd-decider}}\n';

const endpoints = [
  endpoint('10.0.1.1:8000', {}, 'prefill'),
  endpoint('10.0.2.1:8000', {}, 'decode'),
  endpoint('10.0.2.2:8000', {}, 'decode'),
];

function route(config: ReturnType<typeof loadEndpointPickerConfig>, prompt: string) {
  const d = decide(
    {
      requestId: 'r',
      path: '/v1/completions',
      headers: {},
      body: Buffer.from(JSON.stringify({ model: 'm', prompt })),
    },
    endpoints,
    config,
    emptyModelDirectory,
    1_000_000,
    seededRandom(1),
  );
  assert.equal(d.kind, 'route');
  return d.kind === 'route' ? d : assert.fail('not routed');
}

function problemsOf(text: string): string[] {
  try {
    loadEndpointPickerConfig(text);
  } catch (error) {
    assert.ok(error instanceof ValidationError, String(error));
    return error.problems.map((p) => `${p.path}: ${p.message}`);
  }
  assert.fail('the config loaded but should not have');
}

test('disagg-profile-handler with prefix-based-pd-decider: prefill elsewhere only what the decode endpoint has not cached', () => {
  const config = loadEndpointPickerConfig(pdConfig(DECODE_FIRST));
  assert.deepEqual(config.warnings, []);
  const long = 'Summarise the following report, section by section. '.repeat(20);
  const first = route(config, long);
  assert.match(first.endpoint.address, /^10\.0\.2\./, 'the request goes to a decode endpoint');
  assert.equal(
    first.headers['x-prefiller-host-port'],
    '10.0.1.1:8000',
    'the handler itself names the prefiller',
  );
  assert.deepEqual([...first.result.results.keys()], ['decode', 'prefill'], 'decode first, then prefill');
  // Under nonCachedTokens (16 tokens ≈ 64 bytes): decode alone.
  const short = route(config, 'Say hello in French.');
  assert.equal(short.headers['x-prefiller-host-port'], undefined);
  assert.deepEqual([...short.result.results.keys()], ['decode']);
  // The same long prompt again: its decode endpoint now holds it, so what is left to prefill is under the bar.
  const again = route(config, long);
  assert.equal(again.endpoint.address, first.endpoint.address);
  assert.equal(again.headers['x-prefiller-host-port'], undefined);
});

test('disagg-profile-handler: always-disagg-pd-decider, no decider, nonCachedTokens 0, prefill-first', () => {
  const always = loadEndpointPickerConfig(
    pdConfig(
      '- type: disagg-profile-handler\n  parameters: {deciders: {prefill: always-disagg-pd-decider}}\n',
      '- type: always-disagg-pd-decider\n',
    ),
  );
  assert.equal(route(always, 'hi').headers['x-prefiller-host-port'], '10.0.1.1:8000');
  // Upstream's "P/D disaggregation disabled": without a decider, or with nonCachedTokens 0, decode serves alone.
  const none = loadEndpointPickerConfig(pdConfig('- type: disagg-profile-handler\n', ''));
  const off = loadEndpointPickerConfig(
    pdConfig(DECODE_FIRST, '- type: prefix-based-pd-decider\n  parameters: {nonCachedTokens: 0}\n'),
  );
  const long = 'A long prompt that nobody has cached yet. '.repeat(40);
  for (const config of [none, off]) {
    const d = route(config, long);
    assert.equal(d.headers['x-prefiller-host-port'], undefined);
    assert.deepEqual([...d.result.results.keys()], ['decode']);
  }
  // prefill-first: the prefill profile runs before decode, every time, and the decode endpoint still gets the request.
  const prefillFirst = loadEndpointPickerConfig(
    pdConfig('- type: disagg-profile-handler\n  parameters: {stageOrder: prefill_first}\n', ''),
  );
  const d = route(prefillFirst, 'hi');
  assert.deepEqual([...d.result.results.keys()], ['prefill', 'decode']);
  assert.match(d.endpoint.address, /^10\.0\.2\./);
  assert.equal(d.headers['x-prefiller-host-port'], '10.0.1.1:8000');
  // Earlier releases' flat names still work: deciderPluginName, decodeProfile/prefillProfile.
  const legacy = loadEndpointPickerConfig(
    pdConfig(
      '- type: disagg-profile-handler\n  parameters: {deciderPluginName: always-disagg-pd-decider, decodeProfile: decode}\n',
      '- type: always-disagg-pd-decider\n',
    ),
  );
  assert.equal(route(legacy, 'hi').headers['x-prefiller-host-port'], '10.0.1.1:8000');
});

test('disagg-profile-handler: what cannot work here is an error naming the field and why', () => {
  const handler = (params: string) => `- type: disagg-profile-handler\n  parameters: ${params}\n`;
  assert.deepEqual(problemsOf(pdConfig(handler('{deciders: {prefill: queue-scorer}}'), '')), [
    'plugins[5].parameters.deciders.prefill: "queue-scorer" (queue-scorer) is not a prefill decider: use prefix-based-pd-decider or always-disagg-pd-decider',
  ]);
  assert.match(
    problemsOf(pdConfig(handler('{deciders: {prefill: nobody}}'), ''))[0]!,
    /deciders\.prefill: no plugin named "nobody"/,
  );
  assert.match(
    problemsOf(pdConfig(handler('{deciders: {encode: e}}'), ''))[0]!,
    /deciders\.encode: encode disaggregation is not supported/,
  );
  assert.match(
    problemsOf(
      pdConfig(handler('{stageOrder: prefill-first, deciders: {prefill: prefix-based-pd-decider}}')),
    )[0]!,
    /deciders\.prefill: a prefill decider needs stageOrder decode-first/,
  );
  assert.deepEqual(problemsOf(pdConfig(handler('{stageOrder: sideways, profiles: {decoder: d}}'), '')), [
    'plugins[5].parameters.stageOrder: must be decode-first or prefill-first, got "sideways"',
    'plugins[5].parameters.profiles.decoder: unknown field (known: decode, prefill, encode)',
  ]);
  assert.match(
    problemsOf(
      pdConfig(
        handler('{deciders: {prefill: prefix-based-pd-decider}, deciderPluginName: prefix-based-pd-decider}'),
      ),
    )[0]!,
    /deciderPluginName: deciders\.prefill is given too: give it once/,
  );
  assert.match(
    problemsOf(
      pdConfig(DECODE_FIRST, '- type: prefix-based-pd-decider\n  parameters: {nonCachedTokens: -1}\n'),
    )[0]!,
    /nonCachedTokens/,
  );
  // A decider whose type was refused is reported once, at the plugin, not again at the reference.
  assert.deepEqual(
    problemsOf(pdConfig(handler('{deciders: {prefill: d}}'), '- {name: d, type: no-such-decider}\n')).map(
      (p) => p.split(':')[0],
    ),
    ['plugins[6].type'],
  );
});

test('stageOrder is read as upstream reads it', () => {
  for (const v of ['', 'decode-first', 'DecodeFirst', 'decode_first', 'decode'])
    assert.equal(parseStageOrder(v), 'decode-first', v);
  for (const v of ['prefill-first', 'PREFILL_FIRST', 'prefill'])
    assert.equal(parseStageOrder(v), 'prefill-first', v);
  assert.equal(parseStageOrder('first'), undefined);
});
