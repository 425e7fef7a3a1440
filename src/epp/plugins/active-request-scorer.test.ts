import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint } from '../../../test/harness/endpoints.js';
import { ValidationError } from '../../errors/index.js';
import { loadEndpointPickerConfig } from '../config.js';
import type { Endpoint, SchedulingContext, Scorer } from '../types.js';
import { activeRequestScorer } from './active-request-scorer.js';

/** Endpoints with these many requests in flight. */
function inFlight(...counts: number[]): Endpoint[] {
  return counts.map((n, i) => Object.assign(endpoint(`e${i}`), { inFlight: n }));
}

function scores(scorer: Scorer, counts: number[]): number[] {
  return [...scorer.score({} as SchedulingContext, inFlight(...counts))];
}

/** llm-d-router's Score, written out: idle (≤ idleThreshold) → 1, busy → (max − n) / max × maxBusyScore. */
function upstream(counts: number[], idleThreshold: number, maxBusyScore: number): number[] {
  const max = Math.max(0, ...counts);
  return counts.map((n) => (n <= idleThreshold ? 1 : ((max - n) / max) * maxBusyScore));
}

/**
 * KServe's docs/samples/llmisvc/precise-prefix-kv-cache-routing/llm-inference-service-qwen2-7b-gpu-kv-cache-routing.yaml
 * (commit 149c4db), its spec.router.scheduler.config.inline verbatim.
 */
const KSERVE_QWEN2_KV_CACHE_ROUTING = `apiVersion: llm-d.ai/v1
kind: EndpointPickerConfig
plugins:
- type: single-profile-handler
- type: token-producer
- type: precise-prefix-cache-producer
  parameters:
    tokenProcessorConfig:
      blockSize: 64
    kvEventsConfig:
      topicFilter: kv@
      discoverPods: true
      podDiscoveryConfig:
        socketPort: 5557
    indexerConfig:
      kvBlockIndexConfig:
        enableMetrics: true
- type: prefix-cache-scorer
  parameters:
    prefixMatchInfoProducerName: precise-prefix-cache-producer
- type: kv-cache-utilization-scorer
- type: queue-scorer
- type: active-request-scorer
  parameters:
    requestTimeout: 2m
    idleThreshold: 0
    maxBusyScore: 0
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: prefix-cache-scorer
    weight: 3
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: active-request-scorer
    weight: 3
  - pluginRef: max-score-picker
`;

const HEAD = 'apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\n';

function scorerOf(parameters: string): { scorer: Scorer; warnings: { path: string; message: string }[] } {
  const config = loadEndpointPickerConfig(
    `${HEAD}plugins:\n- type: active-request-scorer\n  parameters: ${parameters}\n`,
  );
  return {
    scorer: config.scheduler.profiles.get('default')!.scorers[0]!.scorer,
    warnings: [...config.warnings],
  };
}

describe('active-request-scorer', () => {
  it('scores idle and busy endpoints as llm-d-router does', () => {
    const table: [number[], number, number, number[]][] = [
      // counts, idleThreshold, maxBusyScore, want
      [[0, 2, 4], 0, 1, [1, 0.5, 0]],
      [[0, 0, 0], 0, 1, [1, 1, 1]],
      [[3, 3], 0, 1, [0, 0]], // all equally busy: all score 0 (max − n = 0), as upstream
      [[0, 2, 4], 0, 0, [1, 0, 0]], // KServe's samples: any busy endpoint scores 0
      [[0, 1, 4], 0, 0.5, [1, 0.375, 0]],
      [[1, 2, 8], 2, 1, [1, 1, 0]],
      [[1, 3, 8], 2, 0.5, [1, 0.3125, 0]],
      [[5, 9], 10, 0, [1, 1]],
    ];
    for (const [counts, idleThreshold, maxBusyScore, want] of table) {
      const got = scores(activeRequestScorer('a', { idleThreshold, maxBusyScore }), counts);
      assert.deepEqual(got, want, `${counts.join(',')} idle≤${idleThreshold} busy≤${maxBusyScore}`);
      assert.deepEqual(got, upstream(counts, idleThreshold, maxBusyScore));
    }
  });

  it('defaults to idleThreshold 0, maxBusyScore 1 (the plain min-max score it had before)', () => {
    assert.deepEqual(scores(activeRequestScorer('a'), [0, 5, 10]), [1, 0.5, 0]);
    assert.deepEqual(scores(scorerOf('{}').scorer, [0, 5, 10]), [1, 0.5, 0]);
  });

  it('reads idleThreshold and maxBusyScore from the config and scores with them', () => {
    const { scorer, warnings } = scorerOf('{idleThreshold: 2, maxBusyScore: 0.5}');
    assert.deepEqual(warnings, []);
    assert.deepEqual(scores(scorer, [1, 3, 8]), [1, 0.3125, 0]);
  });

  it('accepts requestTimeout (deprecated, ignored upstream) and inFlightLoadProducerName, each with a warning', () => {
    const { scorer, warnings } = scorerOf(
      '{requestTimeout: 2m, inFlightLoadProducerName: inflight, maxBusyScore: 0}',
    );
    assert.deepEqual(
      warnings.map((w) => w.path),
      ['plugins[0].parameters.requestTimeout', 'plugins[0].parameters.inFlightLoadProducerName'],
    );
    assert.match(warnings[0]!.message, /deprecated upstream and ignored/);
    assert.match(warnings[1]!.message, /not acted on: the EPP counts/);
    assert.deepEqual(scores(scorer, [0, 1]), [1, 0]);
  });

  it('refuses a hostile value of each parameter, naming its path', () => {
    const cases: [string, string, RegExp][] = [
      ['{idleThreshold: -1}', 'idleThreshold', /between 0 and/],
      ['{idleThreshold: 1.5}', 'idleThreshold', /integer/],
      ['{idleThreshold: "many"}', 'idleThreshold', /number/],
      ['{idleThreshold: 1e300}', 'idleThreshold', /between 0 and 9007199254740991/],
      ['{maxBusyScore: -0.1}', 'maxBusyScore', /between 0 and 1/],
      ['{maxBusyScore: 2}', 'maxBusyScore', /between 0 and 1/],
      ['{maxBusyScore: [1]}', 'maxBusyScore', /between 0 and 1/],
      ['{requestTimeout: 120}', 'requestTimeout', /Go duration/],
      ['{requestTimeout: soon}', 'requestTimeout', /Go duration/],
      ['{requestTimeout: "-2m"}', 'requestTimeout', /Go duration/],
      ['{inFlightLoadProducerName: 7}', 'inFlightLoadProducerName', /non-empty string/],
      ['{inFlightLoadProducerName: ""}', 'inFlightLoadProducerName', /non-empty string/],
      ['{typo: 1}', 'typo', /unknown parameter.*idleThreshold/],
    ];
    for (const [parameters, field, message] of cases) {
      assert.throws(
        () => scorerOf(parameters),
        (error: unknown) =>
          error instanceof ValidationError &&
          error.problems.length === 1 &&
          error.problems[0]!.path === `plugins[0].parameters.${field}` &&
          message.test(error.problems[0]!.message),
        parameters,
      );
    }
  });

  it("loads KServe's precise kv-cache-routing sample (qwen2-7b) and scores busy endpoints 0 as it asks", () => {
    const config = loadEndpointPickerConfig(KSERVE_QWEN2_KV_CACHE_ROUTING);
    const active = config.scheduler.profiles
      .get('default')!
      .scorers.find((s) => s.scorer.type === 'active-request-scorer')!;
    assert.equal(active.weight, 3);
    assert.deepEqual(scores(active.scorer, [0, 1, 7]), [1, 0, 0]);
    assert.ok(
      config.warnings.some((w) => w.path === 'plugins[6].parameters.requestTimeout'),
      'requestTimeout named as ignored',
    );
  });
});
