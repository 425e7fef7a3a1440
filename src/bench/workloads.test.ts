import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LlmisvcError } from '../errors/index.js';
import { createWorkload, workloadNames, type WorkloadRequest } from './workloads.js';

function take(
  name: string,
  count: number,
  params: Record<string, string> = {},
  adapters?: string[],
): WorkloadRequest[] {
  const workload = createWorkload(name, { model: 'm', seed: 5, params, ...(adapters ? { adapters } : {}) });
  return Array.from({ length: count }, () => workload.next());
}

const promptOf = (r: WorkloadRequest): string => r.body['prompt'] as string;

describe('workloads', () => {
  for (const name of workloadNames) {
    it(`${name} is deterministic for a seed`, () => {
      const adapters = name === 'lora-mix' ? ['a', 'b'] : undefined;
      assert.deepEqual(take(name, 20, {}, adapters), take(name, 20, {}, adapters));
    });
  }

  it('shared-prefix: requests of a group share the system prompt, groups differ', () => {
    const requests = take('shared-prefix', 60, { groups: '3', systemPromptLen: '50', questionLen: '10' });
    const byGroup = new Map<string, string[]>();
    for (const r of requests) byGroup.set(r.group, [...(byGroup.get(r.group) ?? []), promptOf(r)]);
    assert.equal(byGroup.size, 3);
    const prefixes = [...byGroup.values()].map((prompts) => {
      const prefix = (prompts[0] as string).split(' ').slice(0, 50).join(' ');
      assert.ok(prompts.every((p) => p.startsWith(prefix)));
      assert.equal((prompts[0] as string).split(' ').length, 60);
      return prefix;
    });
    assert.equal(new Set(prefixes).size, 3);
    assert.equal(requests[0]?.body['max_tokens'], 128);
    assert.equal(requests[0]?.path, '/v1/completions');
  });

  it('multi-turn: each turn repeats the session so far and adds a user message', () => {
    const requests = take('multi-turn', 40, { sessions: '2', turns: '3' });
    const bySession = new Map<string, { role: string; content: string }[][]>();
    for (const r of requests) {
      assert.equal(r.path, '/v1/chat/completions');
      const messages = r.body['messages'] as { role: string; content: string }[];
      bySession.set(r.group, [...(bySession.get(r.group) ?? []), messages]);
    }
    for (const turnsOfSession of bySession.values()) {
      assert.ok(turnsOfSession.length <= 3);
      turnsOfSession.forEach((messages, turn) => {
        assert.equal(messages.length, 2 + 2 * turn);
        assert.equal(messages.at(-1)?.role, 'user');
        if (turn > 0) assert.deepEqual(messages.slice(0, -2), turnsOfSession[turn - 1]);
      });
    }
  });

  it('lora-mix: skewed popularity over the adapters, base model by share', () => {
    const requests = take('lora-mix', 600, { skew: '1', baseShare: '0.1' }, ['a', 'b', 'c']);
    const count = (model: string): number => requests.filter((r) => r.body['model'] === model).length;
    assert.ok(
      count('a') > count('b') && count('b') > count('c'),
      `${count('a')} ${count('b')} ${count('c')}`,
    );
    assert.ok(count('m') > 0);
    assert.equal(count('a') + count('b') + count('c') + count('m'), 600);
  });

  it('lora-mix: needs adapters', () => {
    assert.throws(() => take('lora-mix', 1), LlmisvcError);
    assert.equal(take('lora-mix', 5, { adapters: 'x' }).filter((r) => r.body['model'] === 'x').length, 5);
  });

  it('long-prompt: unique prompts within the length range', () => {
    const requests = take('long-prompt', 10, { minPromptLen: '100', maxPromptLen: '200' });
    for (const r of requests) {
      const length = promptOf(r).split(' ').length;
      assert.ok(length >= 100 && length <= 200, `${length}`);
    }
    assert.equal(new Set(requests.map(promptOf)).size, 10);
  });

  it('rejects unknown workloads and parameters', () => {
    assert.throws(() => take('nope', 1), LlmisvcError);
    assert.throws(() => take('shared-prefix', 1, { colour: 'red' }), /no parameter 'colour'/);
    assert.throws(() => take('shared-prefix', 1, { groups: 'many' }), /must be a number/);
    assert.throws(() => take('shared-prefix', 1, { groups: '0' }), /at least 1/);
  });
});
