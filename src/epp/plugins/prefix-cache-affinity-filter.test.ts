import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint, schedulingContext } from '../../../test/harness/endpoints.js';
import { ValidationError } from '../../errors/index.js';
import { loadEndpointPickerConfig } from '../config.js';
import { CycleState, type SchedulingContext } from '../types.js';
import { prefixCacheAffinityFilter, type PrefixAffinityParameters } from './prefix-cache-affinity-filter.js';
import { PREFIX_MATCHES } from './prefix-cache-scorer.js';

const [a, b, c] = ['10.0.0.1:8000', '10.0.0.2:8000', '10.0.0.3:8000'].map((x) => endpoint(x)) as [
  ReturnType<typeof endpoint>,
  ReturnType<typeof endpoint>,
  ReturnType<typeof endpoint>,
];

/** A request whose 10 prefix blocks a holds 9 of, b 5, c none; `random` is what the exploration draw returns. */
function request(prompt = 'p', random = 0.5): SchedulingContext {
  const state = new CycleState();
  state.write(PREFIX_MATCHES, {
    totalBlocks: 10,
    matched: new Map([
      [a.address, 9],
      [b.address, 5],
    ]),
    blockSize: 64,
    blockUnit: 'characters',
    blockTokens: 16,
  });
  return { ...schedulingContext(prompt, { now: 0, random: () => random }), state };
}

const params = (p: Partial<PrefixAffinityParameters> = {}): PrefixAffinityParameters => ({
  affinityThreshold: 0.8,
  explorationProbability: 0,
  maxTTFTPenaltyMs: 1000,
  peakPrefillThroughput: 1000, // tokens/s: 1 token in flight = 1 ms
  matchInfoProducer: undefined,
  ...p,
});

const addresses = (list: readonly { address: string }[]) => list.map((e) => e.address);

test('prefix-cache-affinity-filter keeps the sticky endpoints until their queued prefill costs more than the penalty', () => {
  const filter = prefixCacheAffinityFilter('f', params());
  assert.deepEqual(addresses(filter.filter(request(), [a, b, c])), [a.address]);
  // A lower bar lets b in too; a bar no one meets keeps everyone.
  assert.deepEqual(
    addresses(
      prefixCacheAffinityFilter('f', params({ affinityThreshold: 0.5 })).filter(request(), [a, b, c]),
    ),
    [a.address, b.address],
  );
  assert.equal(
    prefixCacheAffinityFilter('f', params({ affinityThreshold: 0.95 })).filter(request(), [a, b, c]).length,
    3,
  );
  // The EPP counts each endpoint's prompt tokens in flight (the transport, test/epp-envoy.test.ts); here set by hand.
  const queued = (tokens: number) => ({ ...a, inFlightTokens: tokens });
  // 800 tokens queued on a: 800 ms behind c — within the 1,000 ms penalty: still sticky.
  assert.deepEqual(addresses(filter.filter(request(), [queued(800), b, c])), [a.address]);
  // 400 more: 1,200 ms behind: stickiness breaks, everyone is kept.
  assert.equal(filter.filter(request(), [queued(1200), b, c]).length, 3);
  // Once those finish, a is sticky again.
  assert.deepEqual(addresses(filter.filter(request(), [queued(800), b, c])), [a.address]);
  // maxTTFTPenaltyMs 0: always stick, whatever is queued.
  const always = prefixCacheAffinityFilter('f', params({ maxTTFTPenaltyMs: 0 }));
  assert.deepEqual(addresses(always.filter(request(), [queued(100_000), b, c])), [a.address]);
});

test('prefix-cache-affinity-filter: exploration, no prefix data and a single endpoint keep everyone', () => {
  const exploring = prefixCacheAffinityFilter('f', params({ explorationProbability: 0.1 }));
  assert.equal(exploring.filter(request('p', 0.05), [a, b, c]).length, 3, 'drawn under the probability');
  assert.deepEqual(addresses(exploring.filter(request('p', 0.5), [a, b, c])), [a.address]);
  const filter = prefixCacheAffinityFilter('f', params());
  const bare: SchedulingContext = { ...request(), state: new CycleState() };
  assert.equal(filter.filter(bare, [a, b, c]).length, 3);
  assert.deepEqual(addresses(filter.filter(request(), [c])), [c.address]);
});

test("prefix-cache-affinity-filter loads as llm-d's guides write it, and says what it cannot do", () => {
  const config = (plugins: string) => `apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
${plugins}- type: token-load-scorer
- type: max-score-picker
`;
  const loaded = loadEndpointPickerConfig(
    config(
      '- type: approx-prefix-cache-producer\n- type: prefix-cache-affinity-filter\n  parameters: {peakPrefillThroughput: 9866}\n',
    ),
  );
  assert.deepEqual(
    loaded.scheduler.profiles.get('default')!.filters.map((f) => f.type),
    ['prefix-cache-affinity-filter'],
  );
  const problems = (plugins: string) => {
    try {
      loadEndpointPickerConfig(config(plugins));
    } catch (error) {
      assert.ok(error instanceof ValidationError);
      return error.problems.map((p) => `${p.path}: ${p.message}`);
    }
    return [];
  };
  assert.match(
    problems('- type: prefix-cache-affinity-filter\n')[0]!,
    /needs the prefix matches before .*add an approx-prefix-cache-producer/,
  );
  assert.deepEqual(
    problems(
      '- type: approx-prefix-cache-producer\n- type: prefix-cache-affinity-filter\n  parameters: {ttftSource: latencyPredictor, prefillCalibrationFile: /etc/c.json, affinityThreshold: 2}\n',
    ).map((p) => p.split(':')[0]),
    [
      'plugins[1].parameters.ttftSource',
      'plugins[1].parameters.prefillCalibrationFile',
      'plugins[1].parameters.affinityThreshold',
    ],
  );
});
