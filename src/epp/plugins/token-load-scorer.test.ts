import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint, schedulingContext } from '../../../test/harness/endpoints.js';
import { loadEndpointPickerConfig } from '../config.js';
import { PREFIX_MATCHES } from './prefix-cache-scorer.js';
import { tokenLoadScorer } from './token-load-scorer.js';

const a = endpoint('10.0.0.1:8000');
const b = endpoint('10.0.0.2:8000');

const request = (prompt: string) => schedulingContext(prompt);

test("token-load-scorer: 1 − (prompt tokens in flight + this request's) / queueThresholdTokens", () => {
  const scorer = tokenLoadScorer('t', 100);
  // The EPP counts each endpoint's prompt tokens in flight (the transport, test/epp-envoy.test.ts); here set by hand.
  const loaded = (tokens: number) => ({ ...a, inFlightTokens: tokens });
  // An idle pool: only the request itself (4 characters = 1 token) counts.
  assert.deepEqual([...scorer.score(request('xxxx'), [a, b])], [0.99, 0.99]);
  // 40 + 10 tokens in flight on a.
  assert.deepEqual([...scorer.score(request('xxxx'), [loaded(50), b])], [0.49, 0.99]);
  // Past the threshold the score stays at 0.
  assert.deepEqual([...scorer.score(request('xxxx'), [loaded(1050), b])], [0, 0.99]);
  assert.deepEqual([...scorer.score(request('xxxx'), [loaded(10), b])], [0.89, 0.99]);
  assert.deepEqual([...scorer.score(request('xxxx'), [loaded(0), b])], [0.99, 0.99]);
});

test('token-load-scorer: the prefix an endpoint already holds is not counted as new work there', () => {
  const scorer = tokenLoadScorer('t', 100);
  const context = request('x'.repeat(200)); // 50 tokens
  context.state.write(PREFIX_MATCHES, {
    totalBlocks: 5,
    matched: new Map([[a.address, 4]]),
    blockSize: 40,
    blockUnit: 'characters',
    blockTokens: 10,
  });
  // a holds 40 of the 50 tokens: 10 new; b holds none: 50.
  assert.deepEqual([...scorer.score(context, [a, b])], [0.9, 0.5]);
});

test('token-load-scorer loads with llm-d-router parameters', () => {
  const text = (params: string) => `apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- {type: token-load-scorer, parameters: ${params}}
`;
  const config = loadEndpointPickerConfig(
    text(
      '{queueThresholdTokens: 4194304, nonTextTokenWeight: 1.5, inFlightLoadProducerName: inflight-load-producer}',
    ),
  );
  assert.deepEqual(
    config.scheduler.profiles.get('default')!.scorers.map((s) => s.scorer.type),
    ['token-load-scorer'],
  );
  assert.throws(() => loadEndpointPickerConfig(text('{queueThresholdTokens: lots}')), /queueThresholdTokens/);
});
