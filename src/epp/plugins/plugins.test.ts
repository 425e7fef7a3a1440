import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint, seededRandom } from '../../../test/harness/endpoints.js';
import { CycleState, type Endpoint, type SchedulingContext } from '../types.js';
import { kvCacheUtilizationScorer } from './kv-cache-utilization-scorer.js';
import { loraAffinityScorer } from './lora-affinity-scorer.js';
import { maxScorePicker } from './max-score-picker.js';
import { PrefixIndex, prefixBlockHashes } from './prefix-cache-scorer.js';
import { queueScorer } from './queue-scorer.js';
import { decodeFilter, prefillFilter } from './role-filter.js';
import { weightedRandomPicker } from './weighted-random-picker.js';
import { activeRequestScorer } from './active-request-scorer.js';
import { byLabelFilter, labelSelectorFilter, type LabelSelector } from './label-filter.js';
import { utilizationDetector } from './utilization-detector.js';

function context(prompt = '', targetModel = 'm', seed = 1): SchedulingContext {
  return {
    request: { requestId: 'r', model: 'm', targetModel, prompt, criticality: 'Standard', headers: {} },
    state: new CycleState(),
    now: 1_000_000,
    random: seededRandom(seed),
  };
}

test('scorers: table of endpoint states → scores', () => {
  const cases: {
    name: string;
    scorer: ReturnType<typeof queueScorer>;
    endpoints: Endpoint[];
    want: number[];
    model?: string;
  }[] = [
    {
      name: 'queue min-max',
      scorer: queueScorer('q'),
      endpoints: [
        endpoint('a', { waitingQueueSize: 0 }),
        endpoint('b', { waitingQueueSize: 10 }),
        endpoint('c', { waitingQueueSize: 5 }),
      ],
      want: [1, 0, 0.5],
    },
    {
      name: 'queue all equal',
      scorer: queueScorer('q'),
      endpoints: [endpoint('a', { waitingQueueSize: 3 }), endpoint('b', { waitingQueueSize: 3 })],
      want: [1, 1],
    },
    {
      name: 'kv',
      scorer: kvCacheUtilizationScorer('k'),
      endpoints: [endpoint('a', { kvCacheUsage: 0.25 }), endpoint('b', { kvCacheUsage: 1.2 })],
      want: [0.75, 0],
    },
    {
      name: 'lora affinity',
      scorer: loraAffinityScorer('l'),
      model: 'sql-lora',
      endpoints: [
        endpoint('a', { activeAdapters: new Set(['sql-lora']), maxActiveAdapters: 2 }),
        endpoint('b', { waitingAdapters: new Set(['sql-lora']), maxActiveAdapters: 2 }),
        endpoint('c', { activeAdapters: new Set(['x']), maxActiveAdapters: 2 }),
        endpoint('d', { activeAdapters: new Set(['x', 'y']), maxActiveAdapters: 2 }),
        endpoint('e'),
      ],
      want: [1, 0.8, 0.6, 0, 1],
    },
    {
      name: 'active requests',
      scorer: activeRequestScorer('a'),
      endpoints: [
        { ...endpoint('a'), inFlight: 4 },
        { ...endpoint('b'), inFlight: 0 },
        { ...endpoint('c'), inFlight: 2 },
      ],
      want: [0, 1, 0.5],
    },
  ];
  for (const c of cases) {
    assert.deepEqual([...c.scorer.score(context('', c.model ?? 'm'), c.endpoints)], c.want, c.name);
  }
});

test('role filters', () => {
  const endpoints = [endpoint('p', {}, 'prefill'), endpoint('d', {}, 'decode'), endpoint('b', {}, 'both')];
  assert.deepEqual(
    prefillFilter('p')
      .filter(context(), endpoints)
      .map((e) => e.address),
    ['p'],
  );
  assert.deepEqual(
    decodeFilter('d')
      .filter(context(), endpoints)
      .map((e) => e.address),
    ['d', 'b'],
  );
});

test('prefix hashes chain: equal prefixes share leading hashes, a change breaks every later block', () => {
  const a = prefixBlockHashes('m', 'aaaabbbbccccdddd', 4, 256);
  const b = prefixBlockHashes('m', 'aaaabbbbXcccdddd', 4, 256);
  assert.equal(a.length, 4);
  assert.deepEqual(a.slice(0, 2), b.slice(0, 2));
  assert.notEqual(a[2], b[2]);
  assert.notEqual(a[3], b[3]);
  assert.notEqual(prefixBlockHashes('other', 'aaaa', 4, 256)[0], a[0], 'model seeds the chain');
  assert.equal(prefixBlockHashes('m', 'aaaabbb', 4, 256).length, 1, 'partial tail block is not hashed');
  assert.equal(prefixBlockHashes('m', 'a'.repeat(100), 4, 3).length, 3, 'capped');
});

test('prefix index: leading-block matches and LRU eviction', () => {
  const index = new PrefixIndex(3);
  index.add('e1', [1, 2, 3]);
  index.add('e2', [1, 9]);
  assert.deepEqual([...index.match([1, 2, 3, 4])].sort(), [
    ['e1', 3],
    ['e2', 1],
  ]);
  index.add('e1', [7]); // evicts block 1 of e1 (least recently used)
  assert.deepEqual([...index.match([1, 2, 3])], [['e2', 1]]);
  index.remove('e2');
  assert.deepEqual([...index.match([1])], []);
});

test('pickers: max-score spreads ties, weighted-random follows scores', () => {
  const endpoints = ['a', 'b', 'c'].map((x) => endpoint(x));
  const counts = new Map<string, number>();
  const picker = maxScorePicker('p');
  const ctx = context('', 'm', 42);
  for (let i = 0; i < 300; i++) {
    const [e] = picker.pick(ctx, [
      { endpoint: endpoints[0]!, score: 1 },
      { endpoint: endpoints[1]!, score: 1 },
      { endpoint: endpoints[2]!, score: 0.5 },
    ]);
    counts.set(e!.address, (counts.get(e!.address) ?? 0) + 1);
  }
  assert.equal(counts.get('c'), undefined);
  assert.ok((counts.get('a') ?? 0) > 100 && (counts.get('b') ?? 0) > 100, JSON.stringify([...counts]));
  const weighted = weightedRandomPicker('w');
  const wcounts = new Map<string, number>();
  for (let i = 0; i < 1000; i++) {
    const [e] = weighted.pick(ctx, [
      { endpoint: endpoints[0]!, score: 3 },
      { endpoint: endpoints[1]!, score: 1 },
      { endpoint: endpoints[2]!, score: 0 },
    ]);
    wcounts.set(e!.address, (wcounts.get(e!.address) ?? 0) + 1);
  }
  assert.equal(wcounts.get('c'), undefined);
  assert.ok((wcounts.get('a') ?? 0) > 2 * (wcounts.get('b') ?? 0));
  assert.deepEqual(
    maxScorePicker('p', 2)
      .pick(ctx, [
        { endpoint: endpoints[0]!, score: 0.1 },
        { endpoint: endpoints[1]!, score: 0.9 },
        { endpoint: endpoints[2]!, score: 0.5 },
      ])
      .map((e) => e.address),
    ['b', 'c'],
  );
});

test('prefix index: a block used again is the newest: it goes only after capacity newer blocks', () => {
  const capacity = 100;
  const index = new PrefixIndex(capacity);
  let next = 1;
  for (let i = 0; i < 59; i++) index.add('e', [next++]);
  index.add('e', [0]);
  for (let i = 0; i < 40; i++) index.add('e', [next++]);
  assert.equal(index.size('e'), capacity);
  index.add('e', [0]); // used again: now the newest
  for (let i = 0; i < capacity - 1; i++) index.add('e', [next++]);
  assert.deepEqual([...index.match([0])], [['e', 1]], 'survives capacity - 1 newer blocks');
  assert.deepEqual([...index.match([1])], []);
  index.add('e', [next++]);
  assert.deepEqual([...index.match([0])], [], 'the next one evicts it');
  assert.equal(index.size('e'), capacity);
});

test('label filters: by-label and label-selector-filter keep what matches, with Kubernetes semantics', () => {
  const labelled = (name: string, labels: Record<string, string>): Endpoint => ({
    ...endpoint(name),
    labels,
  });
  const pool = [
    labelled('a', { track: 'stable', zone: 'a', hardware: 'h100' }),
    labelled('b', { track: 'canary', zone: 'b', hardware: 'h100' }),
    labelled('c', { zone: 'c', hardware: 'h100', draining: 'true' }),
    labelled('d', { hardware: 'l4' }),
  ];
  const names = (es: Endpoint[]) => es.map((e) => e.address);
  assert.deepEqual(names(byLabelFilter('f', 'track', ['stable'], false).filter(context(), pool)), ['a']);
  assert.deepEqual(
    names(byLabelFilter('f', 'track', ['stable'], true).filter(context(), pool)),
    ['a', 'c', 'd'],
    'allowsNoLabel lets unlabelled endpoints through',
  );
  const selector = (
    matchLabels: Record<string, string>,
    matchExpressions: LabelSelector['matchExpressions'],
  ) => names(labelSelectorFilter('s', { matchLabels, matchExpressions }).filter(context(), pool));
  assert.deepEqual(selector({ hardware: 'h100' }, []), ['a', 'b', 'c']);
  assert.deepEqual(selector({}, [{ key: 'zone', operator: 'In', values: ['a', 'c'] }]), ['a', 'c']);
  assert.deepEqual(selector({}, [{ key: 'zone', operator: 'NotIn', values: ['a'] }]), ['b', 'c', 'd']);
  assert.deepEqual(selector({}, [{ key: 'draining', operator: 'DoesNotExist', values: [] }]), [
    'a',
    'b',
    'd',
  ]);
  assert.deepEqual(selector({ hardware: 'h100' }, [{ key: 'track', operator: 'Exists', values: [] }]), [
    'a',
    'b',
  ]);
  assert.deepEqual(selector({}, []), ['a', 'b', 'c', 'd'], 'an empty selector matches everything');
});

test('utilization-detector as a filter: drops stale and over-threshold endpoints (with headroom), fails open', () => {
  const thresholds = { queueDepthThreshold: 5, kvCacheUtilThreshold: 0.8, metricsStalenessThresholdMs: 200 };
  const now = context().now;
  const fresh = { updatedAt: now - 10 };
  const pool = [
    endpoint('ok', { ...fresh, waitingQueueSize: 5, kvCacheUsage: 0.8 }),
    endpoint('queue', { ...fresh, waitingQueueSize: 6, kvCacheUsage: 0.1 }),
    endpoint('kv', { ...fresh, waitingQueueSize: 0, kvCacheUsage: 0.85 }),
    endpoint('old', { updatedAt: now - 1000 }),
  ];
  const kept = (headroom: number, endpoints = pool) =>
    utilizationDetector('u', thresholds, headroom)
      .filter(context(), endpoints)
      .map((e) => e.address);
  assert.deepEqual(kept(0), ['ok']);
  assert.deepEqual(kept(0.2), ['ok', 'queue', 'kv'], 'headroom 20%: queue ≤ 6, KV ≤ 0.96');
  assert.deepEqual(kept(0, pool.slice(1)), ['queue', 'kv', 'old'], 'none left: all are kept (fail open)');
});
