import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { durationParameterMs, goDurationMs } from './go-duration.js';
import { loadEndpointPickerConfig } from './config.js';
import { ValidationError } from '../errors/index.js';

describe("Go's time.ParseDuration syntax", () => {
  it('reads every form Go accepts, in milliseconds', () => {
    const cases: [string, number][] = [
      ['0', 0],
      ['+0', 0],
      ['-0', 0],
      ['1h', 3_600_000],
      ['1m30s', 90_000],
      ['2h45m', 9_900_000],
      ['1.5s', 1500],
      ['.5s', 500],
      ['1.s', 1000],
      ['500us', 0.5],
      ['500µs', 0.5],
      ['500μs', 0.5],
      ['250000ns', 0.25],
      ['200ms', 200],
      ['1h0m0.5s', 3_600_500],
      ['+5s', 5000],
      ['-1.5h', -5_400_000],
      ['0s', 0],
    ];
    for (const [text, ms] of cases) assert.equal(goDurationMs(text), ms, text);
  });

  it('refuses what Go refuses', () => {
    for (const text of [
      '',
      '-',
      '90',
      '1.5',
      's',
      '.s',
      '1 s',
      ' 1s',
      '1s ',
      '1d',
      '1S',
      '1sec',
      '1e3s',
      '1s-2s',
      '--1s',
      '1..5s',
      '3000000h', // past Go's int64 nanoseconds (~292 years)
      '99999999999999999999999ns',
    ])
      assert.equal(goDurationMs(text), undefined, JSON.stringify(text));
  });

  it('as a plugin parameter: only strings, in range, else a message saying what it must be', () => {
    assert.equal(durationParameterMs('1m30s', 'positive'), 90_000);
    assert.equal(durationParameterMs('0', 'non-negative'), 0);
    for (const [value, range] of [
      ['0', 'positive'],
      ['-1s', 'non-negative'],
      [200, 'positive'],
      [true, 'positive'],
      [{ s: 1 }, 'positive'],
      ['x'.repeat(100_000), 'positive'],
    ] as const) {
      const message = durationParameterMs(value, range);
      assert.equal(typeof message, 'string', JSON.stringify(value).slice(0, 20));
      assert.match(message as string, /must be a (positive )?Go duration like "200ms"/);
      assert.ok((message as string).length < 200, 'a hostile value is not echoed whole');
    }
  });
});

describe('plugin duration parameters take Go durations', () => {
  const config = (parameters: string) =>
    `apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: utilization-detector
  parameters: {metricsStalenessThreshold: ${parameters}}
- type: queue-scorer
flowControl: {saturationDetector: {pluginRef: utilization-detector}}
`;

  it('metricsStalenessThreshold: 1m30s, 1h, 500us and 1.5s load with their value', () => {
    for (const [text, ms] of [
      ['1m30s', 90_000],
      ['1h', 3_600_000],
      ['500us', 0.5],
      ['1.5s', 1500],
    ] as const)
      assert.equal(loadEndpointPickerConfig(config(`"${text}"`)).saturation.metricsStalenessThresholdMs, ms);
  });

  it('refuses 0 (upstream wants it strictly positive), a bare number and a negative, naming the field', () => {
    for (const bad of ['"0"', '200', '"-1s"', '"1d"']) {
      assert.throws(
        () => loadEndpointPickerConfig(config(bad)),
        (error: unknown) =>
          error instanceof ValidationError &&
          error.problems.length === 1 &&
          error.problems[0]!.path === 'plugins[0].parameters.metricsStalenessThreshold' &&
          /positive Go duration/.test(error.problems[0]!.message),
        bad,
      );
    }
  });

  it('speculativeTTL, vllm.timeout, vllm.mmTimeout, attemptTimeout and missWait take the full syntax too', () => {
    const loaded = loadEndpointPickerConfig(`apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: token-producer
  parameters:
    modelName: m
    vllm: {endpointDiscovery: {attemptTimeout: 1.5s}, timeout: 1m30s, mmTimeout: 2m}
    prefixStore: {missWait: 500us}
- type: precise-prefix-cache-producer
  parameters: {speculativeIndexing: true, speculativeTTL: 1m30s}
- type: prefix-cache-scorer
  parameters: {prefixMatchInfoProducerName: precise-prefix-cache-producer}
`);
    const tokens = loaded.plugins.get('token-producer') as unknown as {
      options: { timeoutMs: number; chatTimeoutMs: number; prefixStore: { missWaitMs: number } };
    };
    assert.equal(tokens.options.timeoutMs, 90_000);
    assert.equal(tokens.options.chatTimeoutMs, 120_000);
    assert.equal(tokens.options.prefixStore.missWaitMs, 0.5);
    const producer = loaded.plugins.get('precise-prefix-cache-producer') as unknown as {
      options: { speculativeTtlMs: number };
    };
    assert.equal(producer.options.speculativeTtlMs, 90_000);
  });

  it('refuses the rest, each under its own path', () => {
    try {
      loadEndpointPickerConfig(`apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: token-producer
  parameters:
    modelName: m
    vllm: {endpointDiscovery: {attemptTimeout: 5}, timeout: 5, mmTimeout: "1 s"}
    prefixStore: {missWait: 1h}
- type: precise-prefix-cache-producer
  parameters: {speculativeTTL: "-2s"}
`);
      assert.fail('loaded');
    } catch (error) {
      assert.ok(error instanceof ValidationError);
      assert.deepEqual(error.problems.map((p) => p.path).sort(), [
        'plugins[0].parameters.prefixStore.missWait',
        'plugins[0].parameters.vllm.endpointDiscovery.attemptTimeout',
        'plugins[0].parameters.vllm.mmTimeout',
        'plugins[0].parameters.vllm.timeout',
        'plugins[1].parameters.speculativeTTL',
      ]);
    }
  });

  it('speculativeTTL "0" means the 2 s default, as upstream', () => {
    const loaded = loadEndpointPickerConfig(`apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: token-producer
  parameters: {modelName: m}
- type: precise-prefix-cache-producer
  parameters: {speculativeTTL: "0"}
`);
    const producer = loaded.plugins.get('precise-prefix-cache-producer') as unknown as {
      options: { speculativeTtlMs: number };
    };
    assert.equal(producer.options.speculativeTtlMs, 2000);
  });
});
