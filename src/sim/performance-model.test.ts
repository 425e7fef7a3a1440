import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultSimulatorOptions, type PerformanceOptions } from './options.js';
import {
  EngineRejection,
  PerformanceModel,
  advanceUntil,
  kvTransferMs,
  simulate,
  stepDurationMs,
  type TraceArrival,
} from './performance-model.js';
import { blockHashes } from './tokens.js';

const base: PerformanceOptions = {
  ...defaultSimulatorOptions,
  maxNumSeqs: 8,
  maxNumBatchedTokens: 4096,
  numGpuBlocks: 1024,
  blockSize: 16,
  prefillTokensPerSecond: 10_000,
  stepOverheadMs: 2,
  decodeBaseMs: 8,
  decodePerSeqMs: 1,
  maxLoras: 1,
  loraLoadMs: 50,
  kvTransferBaseMs: 5,
  kvTransferPerTokenMs: 0.01,
};

/** A prompt of `length` tokens whose first `shared` tokens come from group `group` and the rest are unique to `id`. */
function prompt(
  id: string,
  length: number,
  group = id,
  shared = length,
): { promptTokens: number; blockHashes: string[] } {
  const tokens = Array.from({ length }, (_, i) => (i < shared ? `${group}:${i}` : `${id}:${i}`));
  return { promptTokens: length, blockHashes: blockHashes(tokens, base.blockSize, 'model') };
}

function request(id: string, at: number, fields: Partial<TraceArrival> = {}): TraceArrival {
  return { id, at, ...prompt(id, 160), outputTokens: 4, ...fields };
}

function byId<T extends { id: string }>(list: readonly T[]): Record<string, T> {
  return Object.fromEntries(list.map((o) => [o.id, o]));
}

describe('stepDurationMs', () => {
  const cases: { name: string; work: Parameters<typeof stepDurationMs>[1]; expected: number }[] = [
    { name: 'idle', work: { prefillTokens: 0, decodeSeqs: 0, loraLoads: 0 }, expected: 0 },
    { name: 'prefill only', work: { prefillTokens: 1000, decodeSeqs: 0, loraLoads: 0 }, expected: 2 + 100 },
    { name: 'decode of one', work: { prefillTokens: 0, decodeSeqs: 1, loraLoads: 0 }, expected: 2 + 8 + 1 },
    { name: 'decode of 32', work: { prefillTokens: 0, decodeSeqs: 32, loraLoads: 0 }, expected: 2 + 8 + 32 },
    {
      name: 'mixed step',
      work: { prefillTokens: 500, decodeSeqs: 4, loraLoads: 1 },
      expected: 2 + 50 + 12 + 50,
    },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(stepDurationMs(base, c.work), c.expected));
  }

  it('KV transfer cost grows with the transferred tokens', () => {
    assert.equal(kvTransferMs(base, 0), 5);
    assert.equal(kvTransferMs(base, 1000), 15);
  });
});

describe('simulate: prefix caching', () => {
  const longPrompt = (id: string, group: string): Partial<TraceArrival> => prompt(id, 2000, group, 1900);

  it('reuses the cached prefix of an earlier request and cuts its time to first token', () => {
    const out = byId(
      simulate(base, [
        request('first', 0, longPrompt('first', 'system-a')),
        request('same-prefix', 5000, longPrompt('same-prefix', 'system-a')),
        request('other-prefix', 10_000, longPrompt('other-prefix', 'system-b')),
      ]),
    );
    assert.equal(out['first']?.cachedTokens, 0);
    // 1900 shared tokens: 118 full blocks of 16 are reusable.
    assert.equal(out['same-prefix']?.cachedTokens, 118 * 16);
    assert.equal(out['other-prefix']?.cachedTokens, 0);
    const ttft = (id: string): number => out[id]?.ttft as number;
    assert.ok(ttft('same-prefix') * 5 < ttft('first'), `${ttft('same-prefix')} vs ${ttft('first')}`);
    assert.equal(ttft('other-prefix'), ttft('first'));
  });

  it('computes at least the last prompt token even when the whole prompt is cached', () => {
    const out = byId(
      simulate(base, [request('a', 0, prompt('a', 64, 'g')), request('b', 1000, prompt('b', 64, 'g'))]),
    );
    assert.equal(out['b']?.cachedTokens, 48);
  });

  it('finds nothing when prefix caching is off', () => {
    const options = { ...base, enablePrefixCaching: false };
    const out = byId(simulate(options, [request('a', 0), request('b', 1000, prompt('b', 160, 'a'))]));
    assert.equal(out['b']?.cachedTokens, 0);
  });

  it('evicts the least recently used prefix when the cache is full', () => {
    // Each request holds 11 blocks (160 prompt + 4 output tokens); 22 blocks keep two prefixes, a third evicts one.
    const options = { ...base, numGpuBlocks: 22 };
    const trace = (order: string[]): TraceArrival[] =>
      order.map((group, i) => request(`${group}${i}`, i * 1000, prompt(`${group}${i}`, 160, group)));
    const evicted = simulate(options, trace(['A', 'B', 'C', 'A']));
    assert.equal(evicted[3]?.cachedTokens, 0, 'A was the oldest and was evicted by C');
    const kept = simulate(options, trace(['A', 'B', 'A', 'C', 'A']));
    assert.equal(kept[2]?.cachedTokens, 144);
    assert.equal(kept[4]?.cachedTokens, 144, 'touching A again made B the eviction victim');
  });
});

describe('simulate: queueing', () => {
  it('builds a queue when more requests arrive than the batch holds', () => {
    const options = { ...base, maxNumSeqs: 2 };
    const trace = ['r0', 'r1', 'r2', 'r3', 'r4'].map((id) => request(id, 0, { outputTokens: 20 }));
    const out = simulate(options, trace);
    assert.equal(out[0]?.admittedAt, 0);
    assert.equal(out[1]?.admittedAt, 0);
    for (const later of out.slice(2)) assert.ok(later.admittedAt > 0, `${later.id} waited`);
    const ttfts = out.map((o) => o.ttft);
    assert.ok(
      ttfts[4]! > ttfts[2]! && ttfts[2]! > ttfts[0]!,
      `TTFT grows along the queue: ${ttfts.join(', ')}`,
    );
  });

  it('holds a request until enough KV blocks are free', () => {
    // Each request needs 11 blocks; 15 blocks hold only one at a time.
    const options = { ...base, numGpuBlocks: 15 };
    const out = byId(simulate(options, [request('a', 0), request('b', 0, prompt('b', 160))]));
    assert.equal(out['b']?.admittedAt, out['a']?.finishedAt);
  });

  it('waiting requests show in the engine stats', () => {
    const model = new PerformanceModel({ ...base, maxNumSeqs: 1 });
    for (const id of ['a', 'b', 'c']) model.submit(request(id, 0), 0);
    model.step(0);
    const stats = model.stats();
    assert.equal(stats.running, 1);
    assert.equal(stats.waiting, 2);
    assert.equal(stats.kv.usedBlocks, 11);
    assert.equal(stats.kvUsage, 11 / 1024);
  });

  it('inter-token latency grows with the running batch', () => {
    const alone = simulate(base, [request('solo', 0, { outputTokens: 10 })]);
    const crowd = simulate(
      base,
      Array.from({ length: 8 }, (_, i) => request(`c${i}`, 0, { outputTokens: 10 })),
    );
    const lastGap = (o: { interTokenMs: number[] }): number => o.interTokenMs.at(-1) as number;
    assert.equal(lastGap(alone[0]!), stepDurationMs(base, { prefillTokens: 0, decodeSeqs: 1, loraLoads: 0 }));
    assert.equal(lastGap(crowd[0]!), stepDurationMs(base, { prefillTokens: 0, decodeSeqs: 8, loraLoads: 0 }));
  });

  it('splits a long prefill into chunks of the step token budget', () => {
    const out = simulate(base, [request('long', 0, { ...prompt('long', 10_000), outputTokens: 1 })]);
    // 4096 + 4096 + 1808 tokens in three steps.
    assert.equal(out[0]?.ttft, 3 * 2 + 10_000 / 10);
  });

  it('rejects a request that can never fit in the cache', () => {
    const model = new PerformanceModel({ ...base, numGpuBlocks: 4 });
    assert.throws(() => model.submit(request('big', 0), 0), EngineRejection);
  });

  it('frees the blocks of an aborted request', () => {
    const model = new PerformanceModel(base);
    model.submit(request('a', 0), 0);
    model.step(0);
    assert.equal(model.abort('a'), true);
    assert.equal(model.stats().kv.usedBlocks, 0);
    assert.equal(model.hasWork(), false);
  });

  it('is deterministic', () => {
    const trace = Array.from({ length: 30 }, (_, i) =>
      request(`r${i}`, i * 7, {
        ...prompt(`r${i}`, 100 + i * 13, `g${i % 3}`, 80),
        outputTokens: 5 + (i % 4),
      }),
    );
    assert.deepEqual(simulate(base, trace), simulate(base, trace));
  });
});

describe('simulate: LoRA', () => {
  it('keeps a second adapter waiting while the only adapter slot is busy, but not the base model', () => {
    const out = byId(
      simulate(base, [
        request('x1', 0, { lora: 'x', outputTokens: 10 }),
        request('y1', 0, { lora: 'y', ...prompt('y1', 160) }),
        request('base', 0, prompt('base', 160)),
      ]),
    );
    assert.equal(out['base']?.admittedAt, 0);
    assert.equal(out['y1']?.admittedAt, out['x1']?.finishedAt);
  });

  it('runs two adapters together when --max-loras allows it, paying each load once', () => {
    const options = { ...base, maxLoras: 2 };
    const model = new PerformanceModel(options);
    model.submit(request('x1', 0, { lora: 'x' }), 0);
    model.submit(request('y1', 0, { lora: 'y' }), 0);
    const first = model.step(0);
    assert.equal(first.admitted.length, 2);
    assert.equal(first.loraLoads, 2);
    assert.deepEqual(model.stats().runningLoras, ['x', 'y']);
    model.submit(request('x2', first.end, { lora: 'x' }), first.end);
    assert.equal(model.step(first.end).loraLoads, 0);
  });

  it('reports waiting adapters', () => {
    const model = new PerformanceModel(base);
    model.submit(request('x1', 0, { lora: 'x' }), 0);
    model.submit(request('y1', 0, { lora: 'y' }), 0);
    model.step(0);
    assert.deepEqual(model.stats().runningLoras, ['x']);
    assert.deepEqual(model.stats().waitingLoras, ['y']);
  });
});

describe('simulate: prefill/decode disaggregation', () => {
  it('a decode endpoint skips the prefill and waits for the KV transfer instead', () => {
    const long = prompt('pd', 4000);
    const local = simulate(base, [request('pd', 0, { ...long, outputTokens: 3 })]);
    const remote = simulate(base, [request('pd', 0, { ...long, outputTokens: 3, remotePrefill: true })]);
    assert.ok(Math.abs((remote[0]?.ttft as number) - kvTransferMs(base, 4000)) < 1e-9);
    assert.ok((remote[0]?.ttft as number) < (local[0]?.ttft as number));
  });

  it('transfers only the blocks the decode endpoint does not hold yet', () => {
    const out = byId(
      simulate(base, [
        request('a', 0, { ...prompt('a', 1600, 'sys', 1600), remotePrefill: true }),
        request('b', 1000, { ...prompt('b', 1600, 'sys', 1600), remotePrefill: true }),
      ]),
    );
    assert.equal(out['b']?.cachedTokens, 1584);
    assert.ok(Math.abs(out['b']?.ttft - kvTransferMs(base, 16)) < 1e-9);
  });
});

describe('advanceUntil', () => {
  it('interleaving submits with advanceUntil gives what simulate gives for the same trace', () => {
    const trace = [
      request('a', 0, prompt('a', 320, 'g', 256)),
      request('b', 5, prompt('b', 320, 'g', 256)),
      request('c', 40, { outputTokens: 30 }),
      request('d', 41, prompt('d', 320, 'g', 256)),
      request('e', 400),
    ];
    const model = new PerformanceModel(base);
    const firstToken = new Map<string, number>();
    const cached = new Map<string, number>();
    const record = (step: {
      end: number;
      emitted: string[];
      admitted: { id: string; cachedTokens: number }[];
    }) => {
      for (const a of step.admitted) cached.set(a.id, a.cachedTokens);
      for (const id of step.emitted) if (!firstToken.has(id)) firstToken.set(id, step.end);
    };
    for (const { at, ...r } of trace) {
      advanceUntil(model, at, record);
      model.submit(r, at);
    }
    advanceUntil(model, Infinity, record);
    assert.equal(model.hasWork(), false);
    for (const o of simulate(base, trace)) {
      assert.equal(firstToken.get(o.id), o.firstTokenAt, `first token of ${o.id}`);
      assert.equal(cached.get(o.id), o.cachedTokens, `cached tokens of ${o.id}`);
    }
    assert.ok((cached.get('b') ?? 0) > 0 || (cached.get('d') ?? 0) > 0, 'the shared prefix was reused');
  });

  it('stops at the time asked for, leaving later work queued', () => {
    const model = new PerformanceModel(base);
    model.submit({ id: 'a', ...prompt('a', 160), outputTokens: 50 }, 0);
    let steps = 0;
    advanceUntil(model, 30, () => steps++);
    assert.ok(model.now >= 30 && model.now < 60, `clock ${model.now}`);
    assert.ok(steps > 0 && model.hasWork());
  });
});
