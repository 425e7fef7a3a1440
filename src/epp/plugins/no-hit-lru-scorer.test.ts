import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint, seededRandom } from '../../../test/harness/endpoints.js';
import { loadEndpointPickerConfig } from '../config.js';
import type { FieldProblem } from '../../errors/index.js';
import { CycleState, type Endpoint, type SchedulingContext, type SchedulingResult } from '../types.js';
import { createPlugin } from './index.js';
import { noHitLruScorer } from './no-hit-lru-scorer.js';
import { PREFIX_MATCHES, prefixMatchKey, type PrefixMatches } from './prefix-cache-scorer.js';

function context(): SchedulingContext {
  return {
    request: {
      requestId: 'r',
      model: 'm',
      targetModel: 'm',
      prompt: 'p',
      criticality: 'Standard',
      headers: {},
    },
    state: new CycleState(),
    now: 1_000_000,
    random: seededRandom(1),
  };
}

function routed(targets: Record<string, Endpoint>, primaryProfile = 'default'): SchedulingResult {
  return {
    primaryProfile,
    results: new Map(Object.entries(targets).map(([profile, t]) => [profile, { profile, targets: [t] }])),
    headers: {},
  };
}

const matches = (matched: [string, number][]): PrefixMatches => ({
  totalBlocks: 4,
  matched: new Map(matched),
  blockSize: 64,
  blockUnit: 'characters',
  blockTokens: 16,
});

const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((address) => endpoint(address)) as [
  Endpoint,
  Endpoint,
  Endpoint,
  Endpoint,
];

test('no-hit-lru-scorer: lruSize bounds the endpoints remembered; one forgotten ranks as never used', () => {
  const scoresAfterColdRequestsTo = (lruSize: number): number[] => {
    const scorer = noHitLruScorer('n', { lruSize });
    for (const target of [a, b, c]) scorer.preRequest(context(), routed({ default: target }));
    return [...scorer.score(context(), [a, b, c, d])].map((x) => Math.round(x * 3) / 3);
  };
  // Unbounded enough: d never got a cold request, a got the oldest one.
  assert.deepEqual(scoresAfterColdRequestsTo(1024), [2 / 3, 1 / 3, 0, 1]);
  // Two remembered: a was evicted, so it ranks with d as never used (candidate order breaks the tie).
  assert.deepEqual(scoresAfterColdRequestsTo(2), [1, 1 / 3, 0, 2 / 3]);
});

test('no-hit-lru-scorer: prefixMatchInfoProducerName decides "cold" from that producer\'s matches', () => {
  const ctx = context();
  ctx.state.write(PREFIX_MATCHES, matches([['a', 2]]));
  ctx.state.write(prefixMatchKey('precise'), matches([]));
  assert.deepEqual([...noHitLruScorer('n').score(ctx, [a, b])], [0.5, 0.5], 'warm by the first matches');
  const named = noHitLruScorer('n', { lruSize: 8, matchInfoProducer: 'precise' });
  assert.deepEqual([...named.score(ctx, [a, b])], [1, 0], 'cold by the named producer: candidate order');
  named.preRequest(ctx, routed({ default: a }));
  assert.deepEqual([...named.score(context(), [a, b])], [0, 1], 'the cold request to a was remembered');
});

test('no-hit-lru-scorer: the prefill pick of a cold request counts as used too', () => {
  const scorer = noHitLruScorer('n');
  scorer.preRequest(context(), routed({ decode: a, prefill: b }, 'decode'));
  assert.deepEqual([...scorer.score(context(), [a, b, c])], [0.5, 0, 1]);
});

test('no-hit-lru-scorer parameters: bounds and upstream names, each mistake under its path', () => {
  const problems: FieldProblem[] = [];
  const create = (parameters: Record<string, unknown>) =>
    createPlugin('no-hit-lru-scorer', 'n', parameters, 'plugins[1]', { problems, warnings: [] });
  create({ lruSize: 2048, prefixPluginName: 'prefix-cache-scorer', prefixPluginType: 'prefix-cache-scorer' });
  assert.equal(problems.length, 0, 'the deprecated names are accepted');
  create({ lruSize: 0 });
  create({ lruSize: 1.5 });
  create({ lruSize: 'many', prefixMatchInfoProducerName: 7, prefillProfile: 'prefill' });
  assert.deepEqual(
    problems.map((p) => p.path),
    [
      'plugins[1].parameters.lruSize',
      'plugins[1].parameters.lruSize',
      'plugins[1].parameters.lruSize',
      'plugins[1].parameters.prefixMatchInfoProducerName',
      'plugins[1].parameters.prefillProfile',
    ],
  );
  assert.match(problems[0]!.message, /between 1 and/);
  assert.match(problems[4]!.message, /unknown parameter.*lruSize/);
});

test('no-hit-lru-scorer in a config: lruSize loads (llm-d-router sim sample); a missing producer is refused', () => {
  const config = (noHitLru: string) => `apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: prefix-cache-scorer
- type: no-hit-lru-scorer
  parameters: ${noHitLru}
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: prefix-cache-scorer
    weight: 2
  - pluginRef: no-hit-lru-scorer
`;
  assert.ok(loadEndpointPickerConfig(config('{lruSize: 2048}')).plugins.has('no-hit-lru-scorer'));
  assert.throws(
    () => loadEndpointPickerConfig(config('{prefixMatchInfoProducerName: nowhere}')),
    /\(no-hit-lru-scorer\)\.parameters\.prefixMatchInfoProducerName: no plugin named "nowhere"/,
  );
});
