import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EngineLoop } from './engine-loop.js';
import { defaultSimulatorOptions } from './options.js';
import { simulate, type TraceArrival } from './performance-model.js';
import { blockHashes } from './tokens.js';

function arrival(id: string, promptTokens: number, outputTokens: number): TraceArrival {
  const tokens = Array.from({ length: promptTokens }, (_, i) => `${id}${i}`);
  return { id, at: 0, promptTokens, blockHashes: blockHashes(tokens, 16), outputTokens };
}

describe('EngineLoop', () => {
  it('delivers each request the token times the pure model computes', async () => {
    // A clock under the test's control: requests arrive at 0, then time jumps far ahead so every step is due.
    let wall = 0;
    const loop = new EngineLoop(defaultSimulatorOptions, 1, () => wall);
    const trace = [arrival('a', 3000, 5), arrival('b', 100, 3)];
    const seen = new Map<string, { tokens: number[]; cached: number; finished: number }>();
    const done = trace.map(
      (request) =>
        new Promise<void>((resolve) => {
          const record = { tokens: [] as number[], cached: -1, finished: NaN };
          seen.set(request.id, record);
          const { at: _at, ...engineRequest } = request;
          loop.submit(engineRequest, {
            onAdmitted: (cached) => (record.cached = cached),
            onToken: (index, at) => {
              assert.equal(index, record.tokens.length);
              record.tokens.push(at);
            },
            onFinished: (at) => {
              record.finished = at;
              resolve();
            },
          });
        }),
    );
    wall = 1e9;
    await Promise.all(done);
    loop.close();
    for (const expected of simulate(defaultSimulatorOptions, trace)) {
      const got = seen.get(expected.id);
      assert.equal(got?.cached, expected.cachedTokens);
      assert.equal(got?.tokens[0], expected.firstTokenAt);
      assert.equal(got?.finished, expected.finishedAt);
      assert.equal(got?.tokens.length, trace.find((t) => t.id === expected.id)?.outputTokens);
    }
  });

  it('drops an aborted request without calling it back', async () => {
    let wall = 0;
    const loop = new EngineLoop(defaultSimulatorOptions, 1, () => wall);
    const calls: string[] = [];
    loop.submit(
      { id: 'gone', promptTokens: 10, blockHashes: [], outputTokens: 5 },
      { onToken: () => calls.push('token'), onFinished: () => calls.push('finished') },
    );
    loop.abort('gone');
    const finished = new Promise<void>((resolve) =>
      loop.submit(
        { id: 'stays', promptTokens: 10, blockHashes: [], outputTokens: 2 },
        { onToken: () => {}, onFinished: () => resolve() },
      ),
    );
    wall = 1e9;
    await finished;
    loop.close();
    assert.deepEqual(calls, []);
    assert.equal(loop.model.stats().kv.usedBlocks, 0);
  });
});
