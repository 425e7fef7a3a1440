/**
 * How the config loader answers plugin types and parameters upstream has and this EPP does not act on: a type
 * upstream registers is "not implemented" (not "unknown"); a parameter of a plugin whose upstream factory ignores its
 * parameters is a warning; the list of known types is printed once however many types are unknown.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ValidationError } from '../../errors/index.js';
import { loadEndpointPickerConfig } from '../config.js';
import { notSupported } from './unsupported.js';
import { problemsOf } from '../../../test/harness/picker-config.js';

const HEAD = 'apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\n';

describe('upstream plugin types this EPP does not implement', () => {
  it('are refused as "an llm-d plugin this EPP does not implement", each saying what to use instead', () => {
    const types = [
      'session-affinity-scorer',
      'load-aware-scorer',
      'data-parallel-profile-handler',
      'dp-rank-header-handler',
      'encode-filter',
      'passthrough-parser',
      'predicted-latency-producer',
      'latency-scorer',
      'mm-embeddings-cache-producer',
      'mm-embeddings-cache-scorer',
      'burst-prefix-cache-producer',
      'models-responder',
    ];
    const problems = problemsOf(
      `${HEAD}plugins:\n${types.map((t) => `- type: ${t}`).join('\n')}\n- type: queue-scorer\n`,
    );
    assert.deepEqual(
      problems.map((p) => p.path),
      types.map((_, i) => `plugins[${i}].type`),
    );
    problems.forEach((p, i) => {
      assert.match(
        p.message,
        new RegExp(`"${types[i]}" is an llm-d plugin this EPP does not implement: \\S`),
      );
      assert.doesNotMatch(p.message, /unknown/);
    });
    assert.match(problems[0]!.message, /prefix-cache-scorer/);
  });

  it("GIE's own (its v0.x filters, its latency predictor) say GIE", () => {
    const problems = problemsOf(
      `${HEAD}plugins:\n- type: low-queue-filter\n- type: latency-predictor-producer\n`,
    );
    assert.match(
      problems[0]!.message,
      /"low-queue-filter" is a GIE plugin this EPP does not implement: .*queue-scorer/,
    );
    assert.match(
      problems[1]!.message,
      /"latency-predictor-producer" is a GIE plugin this EPP does not implement/,
    );
  });

  it('a profile naming a refused plugin is not reported a second time (KServe latency-predictor sample)', () => {
    const problems = problemsOf(`${HEAD}plugins:
- type: approx-prefix-cache-producer
  parameters: {maxPrefixTokensToMatch: 262144}
- type: predicted-latency-producer
- type: prefix-cache-affinity-filter
  name: loose-affinity-filter
  parameters: {affinityThreshold: 0.8}
- type: latency-scorer
- type: weighted-random-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: predicted-latency-producer
  - pluginRef: loose-affinity-filter
  - pluginRef: latency-scorer
  - pluginRef: weighted-random-picker
`);
    assert.deepEqual(
      problems.map((p) => p.path),
      ['plugins[1].type', 'plugins[3].type'],
    );
  });

  it('every listed type has a message', () => {
    for (const [type, why] of Object.entries(notSupported)) assert.ok(why.length > 10, type);
  });
});

describe('plugins whose upstream factory ignores its parameters', () => {
  it('load with unknown parameters, each named in a warning (llm-d pd guide v0.3.2: queue-scorer with prefix parameters)', () => {
    const config = loadEndpointPickerConfig(`${HEAD}plugins:
- type: queue-scorer
  parameters: {hashBlockSize: 5, maxPrefixBlocksToMatch: 256, lruCapacityPerServer: 31250}
- type: kv-cache-utilization-scorer
  parameters: {x: 1}
- type: decode-filter
  parameters: {y: 2}
- type: single-profile-handler
  parameters: {z: 3}
- type: max-score-picker
`);
    assert.deepEqual(
      config.warnings.map((w) => w.path),
      [
        'plugins[0].parameters.hashBlockSize',
        'plugins[0].parameters.maxPrefixBlocksToMatch',
        'plugins[0].parameters.lruCapacityPerServer',
        'plugins[1].parameters.x',
        'plugins[2].parameters.y',
        'plugins[3].parameters.z',
      ],
    );
    assert.match(
      config.warnings[0]!.message,
      /accepted, not acted on: plugin type "queue-scorer" takes no such parameter \(upstream ignores its parameters too\)/,
    );
    const profile = config.scheduler.profiles.get('default')!;
    assert.deepEqual(
      profile.scorers.map((s) => s.scorer.type),
      ['queue-scorer', 'kv-cache-utilization-scorer'],
      'the plugins run as without parameters',
    );
  });

  it('plugins whose upstream decoder is strict still refuse unknown parameters, and wrong types stay errors', () => {
    const problems = problemsOf(`${HEAD}plugins:
- type: max-score-picker
  parameters: {maxNumOfEndpoints: "many", typo: 1}
- type: prefix-cache-scorer
  parameters: {typo: 1}
- type: queue-scorer
`);
    assert.deepEqual(
      problems.map((p) => p.path),
      ['plugins[0].parameters.maxNumOfEndpoints', 'plugins[0].parameters.typo', 'plugins[1].parameters.typo'],
    );
    assert.match(problems[1]!.message, /unknown parameter for plugin type "max-score-picker"/);
  });
});

describe('error output stays bounded', () => {
  it('20,000 unknown plugin types list the known types once, not 20,000 times', () => {
    const n = 20_000;
    const types = Array.from({ length: n }, (_, i) => `- type: no-such-plugin-${i}`).join('\n');
    let error: unknown;
    try {
      loadEndpointPickerConfig(`${HEAD}plugins:\n${types}\n`);
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof ValidationError);
    assert.equal(error.problems.length, n, 'every unknown type is still a problem');
    assert.match(
      error.problems[0]!.message,
      /unknown plugin type "no-such-plugin-0" \(known: .*queue-scorer/,
    );
    assert.equal(
      error.problems[1]!.message,
      'unknown plugin type "no-such-plugin-1" (the known types are listed at plugins[0].type)',
    );
    const listed = error.problems.filter((p) => p.message.includes('queue-scorer')).length;
    assert.equal(listed, 1);
    // Each later problem is one short line (the known list alone was ~900 characters a line before).
    const longest = Math.max(...error.problems.slice(1).map((p) => p.path.length + p.message.length));
    assert.ok(longest < 120, `${longest} characters`);
  });
});
