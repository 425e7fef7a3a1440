import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ValidationError } from '../errors/index.js';
import { defaultSimulatorOptions, flagName, parseLoraModules, resolveSimulatorOptions } from './options.js';

describe('simulator options', () => {
  it('fills defaults and ignores undefined fields', () => {
    const resolved = resolveSimulatorOptions({ model: 'llama', maxNumSeqs: undefined });
    assert.equal(resolved.model, 'llama');
    assert.equal(resolved.maxNumSeqs, defaultSimulatorOptions.maxNumSeqs);
  });

  it('names every wrong flag at once', () => {
    assert.throws(
      () => resolveSimulatorOptions({ maxNumSeqs: 0, timeScale: 0, failureRate: 2, role: 'x' as 'both' }),
      (error: unknown) =>
        error instanceof ValidationError &&
        ['--max-num-seqs', '--time-scale', '--failure-rate', '--role'].every((flag) =>
          error.problems.some((p) => p.path === flag),
        ),
    );
  });

  it('rejects an adapter named like the base model', () => {
    assert.throws(() => resolveSimulatorOptions({ model: 'm', loraModules: ['m=/x'] }), ValidationError);
  });

  it('parses the three --lora-modules forms', () => {
    assert.deepEqual(parseLoraModules(['a', 'b=/p/b', '{"name":"c","path":"/p/c"}']), [
      { name: 'a', path: 'a' },
      { name: 'b', path: '/p/b' },
      { name: 'c', path: '/p/c' },
    ]);
  });

  it('names a --prefill-allow-list entry that is not a host:port', () => {
    assert.throws(
      () => resolveSimulatorOptions({ prefillAllowList: ['10.0.0.5:8000', 'http://x'] }),
      (error: unknown) =>
        error instanceof ValidationError &&
        error.problems.some((p) => p.path === '--prefill-allow-list' && p.message.includes('http://x')),
    );
  });

  it('refuses a request timeout shorter than the headers timeout', () => {
    assert.throws(
      () => resolveSimulatorOptions({ headersTimeoutMs: 5000, requestTimeoutMs: 1000 }),
      (error: unknown) =>
        error instanceof ValidationError && error.problems.some((p) => p.path === '--request-timeout-ms'),
    );
    assert.throws(() => resolveSimulatorOptions({ maxConnections: 0 }), ValidationError);
  });

  it('spells option names as flags', () => {
    assert.equal(flagName('maxNumBatchedTokens'), '--max-num-batched-tokens');
  });
});
