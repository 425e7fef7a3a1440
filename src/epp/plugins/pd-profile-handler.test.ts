/**
 * pd-profile-handler in llm-d-router's layout (`deciderPluginName`, `primaryPort`, `prefixPluginName`,
 * `prefixPluginType`, `prefixMatchInfoProducerName`) beside its earlier one (`threshold`, `hashBlockSize`).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint, seededRandom } from '../../../test/harness/endpoints.js';
import { loadEndpointPickerConfig, type EndpointPickerConfig } from '../config.js';
import {
  CycleState,
  isPreRequest,
  type ProfileResult,
  type SchedulingContext,
  type SchedulingResult,
} from '../types.js';
import { PREFILL_HEADER } from './prefill-header-handler.js';
import { PREFIX_MATCHES, type PrefixMatches } from './prefix-cache-scorer.js';
import { problemsOf } from '../../../test/harness/picker-config.js';

const HEAD = 'apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n';

/** The llm-d docs' InferencePool P/D example (decider layout), with the handler's parameters replaceable. */
function pdConfig(
  handlerParameters = '{primaryPort: 0, deciderPluginName: prefix-based-pd-decider}',
  extra = '',
) {
  return `${HEAD}plugins:
- type: prefill-header-handler
- type: prefix-cache-scorer
- type: queue-scorer
- type: prefill-filter
- type: decode-filter
- type: max-score-picker
- type: prefix-based-pd-decider
  parameters:
    nonCachedTokens: 16
${extra}- type: pd-profile-handler
  parameters: ${handlerParameters}
schedulingProfiles:
- name: prefill
  plugins:
  - pluginRef: prefill-filter
  - pluginRef: max-score-picker
  - pluginRef: prefix-cache-scorer
    weight: 2
  - pluginRef: queue-scorer
    weight: 1
- name: decode
  plugins:
  - pluginRef: decode-filter
  - pluginRef: max-score-picker
  - pluginRef: prefix-cache-scorer
    weight: 2
  - pluginRef: queue-scorer
    weight: 1
`;
}

const DECODE = endpoint('10.0.0.1:8000', {}, 'decode');
const PREFILL = endpoint('10.0.0.2:8000', {}, 'prefill');

/** A request whose prompt has `chars` characters, none cached on the decode endpoint. */
function context(chars: number): SchedulingContext {
  const state = new CycleState();
  const matches: PrefixMatches = {
    totalBlocks: Math.ceil(chars / 64),
    matched: new Map(),
    blockSize: 64,
    blockUnit: 'characters',
    blockTokens: 16,
  };
  state.write(PREFIX_MATCHES, matches);
  return {
    request: {
      requestId: 'r',
      model: 'm',
      targetModel: 'm',
      prompt: 'x'.repeat(chars),
      criticality: 'Standard',
      headers: {},
    },
    state,
    now: 1_000_000,
    random: seededRandom(1),
  };
}

/** What the handler runs after decode picked DECODE: ['prefill'] when it disaggregates. */
function afterDecode(config: EndpointPickerConfig, chars: number): string[] {
  const results = new Map<string, ProfileResult>([
    ['decode', { targets: [DECODE] } as unknown as ProfileResult],
  ]);
  return config.scheduler.handler.pickProfiles(context(chars), config.scheduler.profiles, results);
}

describe("pd-profile-handler in llm-d-router's decider layout", () => {
  it('loads the llm-d docs example and lets the named decider decide after decode, as upstream', () => {
    const config = loadEndpointPickerConfig(pdConfig());
    assert.deepEqual(config.warnings, []);
    const handler = config.scheduler.handler;
    assert.equal(handler.type, 'pd-profile-handler');
    const none = new Map<string, ProfileResult>();
    assert.deepEqual(handler.pickProfiles(context(400), config.scheduler.profiles, none), ['decode']);
    // nonCachedTokens 16: 400 characters (100 estimated tokens) uncached → prefill elsewhere; 40 (10) → decode only.
    assert.deepEqual(afterDecode(config, 400), ['prefill']);
    assert.deepEqual(afterDecode(config, 40), []);
    assert.equal(handler.primaryProfile(none), 'decode');
    // The prefill pick reaches the decode side, as with disagg-profile-handler.
    const result: SchedulingResult = {
      primaryProfile: 'decode',
      results: new Map([
        ['decode', { targets: [DECODE] } as unknown as ProfileResult],
        ['prefill', { targets: [PREFILL] } as unknown as ProfileResult],
      ]),
      headers: {},
    };
    assert.ok(isPreRequest(handler));
    handler.preRequest(context(400), result);
    assert.equal(result.headers[PREFILL_HEADER], '10.0.0.2:8000');
  });

  it('a decider that always disaggregates is obeyed, whatever the prompt', () => {
    const config = loadEndpointPickerConfig(
      pdConfig('{deciderPluginName: always}', '- {name: always, type: always-disagg-pd-decider}\n'),
    );
    assert.deepEqual(afterDecode(config, 1), ['prefill']);
  });

  it("without deciderPluginName or threshold it uses upstream's default decider, prefix-based-pd-decider, when there is one", () => {
    const config = loadEndpointPickerConfig(pdConfig('{}'));
    assert.deepEqual(afterDecode(config, 400), ['prefill']);
    assert.deepEqual(afterDecode(config, 40), []);
  });

  it('the earlier threshold layout keeps its meaning (uncached characters), decider plugin or not', () => {
    const config = loadEndpointPickerConfig(pdConfig('{threshold: 100}'));
    assert.deepEqual(afterDecode(config, 400), ['prefill']);
    assert.deepEqual(afterDecode(config, 80), [], '80 characters < 100, though 20 estimated tokens ≥ 16');
  });

  it('names what it does not honour: primaryPort, prefixPluginName/Type, a threshold beside a decider', () => {
    const config = loadEndpointPickerConfig(
      pdConfig(
        '{primaryPort: 8000, deciderPluginName: prefix-based-pd-decider, prefixPluginName: p, prefixPluginType: prefix-cache-scorer, threshold: 0, prefixMatchInfoProducerName: prefix-cache-scorer}',
      ),
    );
    const at = (key: string) =>
      config.warnings.find((w) => w.path === `plugins[7].parameters.${key}`)?.message;
    assert.match(at('primaryPort')!, /not honoured: requests go to the decode endpoint's own port/);
    assert.match(at('prefixPluginName')!, /never read: ignored/);
    assert.match(at('prefixPluginType')!, /never read: ignored/);
    assert.match(at('threshold')!, /ignored: deciderPluginName "prefix-based-pd-decider" decides/);
    assert.equal(config.warnings.length, 4);
    assert.deepEqual(afterDecode(config, 40), [], 'the decider decides, not threshold 0');
  });

  it('refuses a hostile value of each parameter, naming the field', () => {
    const cases: [string, string, RegExp][] = [
      ['{primaryPort: -1}', 'plugins[7].parameters.primaryPort', /between 0 and 65535/],
      ['{primaryPort: 70000}', 'plugins[7].parameters.primaryPort', /between 0 and 65535/],
      ['{primaryPort: eighty}', 'plugins[7].parameters.primaryPort', /number/],
      ['{deciderPluginName: 5}', 'plugins[7].parameters.deciderPluginName', /non-empty string/],
      [
        '{deciderPluginName: nowhere}',
        'plugins[7].parameters.deciderPluginName',
        /no plugin named "nowhere"/,
      ],
      [
        '{deciderPluginName: queue-scorer}',
        'plugins[7].parameters.deciderPluginName',
        /"queue-scorer" \(queue-scorer\) is not a prefill decider/,
      ],
      ['{prefixPluginName: [a]}', 'plugins[7].parameters.prefixPluginName', /non-empty string/],
      ['{prefixPluginType: 1}', 'plugins[7].parameters.prefixPluginType', /non-empty string/],
      [
        '{prefixMatchInfoProducerName: nowhere}',
        'plugins (pd-profile-handler).parameters.prefixMatchInfoProducerName',
        /no plugin named "nowhere"/,
      ],
      ['{decodeProfile: 3}', 'plugins[7].parameters.decodeProfile', /non-empty string/],
      ['{typo: 1}', 'plugins[7].parameters.typo', /unknown parameter for plugin type "pd-profile-handler"/],
    ];
    for (const [parameters, path, message] of cases) {
      const problems = problemsOf(pdConfig(parameters));
      assert.deepEqual(
        problems.map((p) => p.path),
        [path],
        parameters,
      );
      assert.match(problems[0]!.message, message, parameters);
    }
  });
});
