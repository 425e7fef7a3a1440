import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError, parseGenerationRequest, type Endpoint } from './openai.js';

describe('parseGenerationRequest', () => {
  const bad: { name: string; endpoint: Endpoint; body: unknown; param: string | null }[] = [
    { name: 'a non-object body', endpoint: 'completion', body: [1], param: null },
    { name: 'a missing prompt', endpoint: 'completion', body: { model: 'm' }, param: 'prompt' },
    { name: 'an empty prompt', endpoint: 'completion', body: { prompt: '' }, param: 'prompt' },
    { name: 'several prompts', endpoint: 'completion', body: { prompt: ['a', 'b'] }, param: 'prompt' },
    { name: 'a numeric model', endpoint: 'completion', body: { model: 3, prompt: 'x' }, param: 'model' },
    {
      name: 'max_tokens 0',
      endpoint: 'completion',
      body: { prompt: 'x', max_tokens: 0 },
      param: 'max_tokens',
    },
    {
      name: 'fractional max_tokens',
      endpoint: 'completion',
      body: { prompt: 'x', max_tokens: 1.5 },
      param: 'max_tokens',
    },
    {
      name: 'stream as a string',
      endpoint: 'completion',
      body: { prompt: 'x', stream: 'yes' },
      param: 'stream',
    },
    {
      name: 'stream_options without stream',
      endpoint: 'completion',
      body: { prompt: 'x', stream_options: { include_usage: true } },
      param: 'stream_options',
    },
    { name: 'n of 2', endpoint: 'completion', body: { prompt: 'x', n: 2 }, param: 'n' },
    {
      name: 'temperature 3',
      endpoint: 'completion',
      body: { prompt: 'x', temperature: 3 },
      param: 'temperature',
    },
    { name: 'no messages', endpoint: 'chat', body: { messages: [] }, param: 'messages' },
    {
      name: 'an unknown role',
      endpoint: 'chat',
      body: { messages: [{ role: 'wizard', content: 'x' }] },
      param: 'messages[0].role',
    },
    {
      name: 'an image part',
      endpoint: 'chat',
      body: { messages: [{ role: 'user', content: [{ type: 'image_url' }] }] },
      param: 'messages[0].content',
    },
    { name: 'logprobs 21', endpoint: 'completion', body: { prompt: 'x', logprobs: 21 }, param: 'logprobs' },
    {
      name: 'logprobs as a number in a chat',
      endpoint: 'chat',
      body: { messages: [{ role: 'user', content: 'x' }], logprobs: 5 },
      param: 'logprobs',
    },
    {
      name: 'top_logprobs -1',
      endpoint: 'chat',
      body: { messages: [{ role: 'user', content: 'x' }], top_logprobs: -1 },
      param: 'top_logprobs',
    },
    { name: 'a numeric stop', endpoint: 'completion', body: { prompt: 'x', stop: 3 }, param: 'stop' },
    {
      name: 'a stop list with a number',
      endpoint: 'completion',
      body: { prompt: 'x', stop: ['a', 1] },
      param: 'stop',
    },
    {
      name: 'max_completion_tokens -1',
      endpoint: 'chat',
      body: { messages: [{ role: 'user', content: 'x' }], max_completion_tokens: -1 },
      param: 'max_completion_tokens',
    },
    {
      name: 'kv_transfer_params as a string',
      endpoint: 'completion',
      body: { prompt: 'x', kv_transfer_params: 'remote' },
      param: 'kv_transfer_params',
    },
    {
      name: 'kv_transfer_params.do_remote_prefill as a string',
      endpoint: 'completion',
      body: { prompt: 'x', kv_transfer_params: { do_remote_prefill: 'yes' } },
      param: 'kv_transfer_params.do_remote_prefill',
    },
  ];
  for (const c of bad) {
    it(`answers 400 for ${c.name}`, () => {
      assert.throws(
        () => parseGenerationRequest(c.endpoint, c.body),
        (error: unknown) => error instanceof ApiError && error.status === 400 && error.param === c.param,
      );
    });
  }

  it('reads a streaming completion request', () => {
    assert.deepEqual(
      parseGenerationRequest('completion', {
        model: 'm',
        prompt: 'hello',
        max_tokens: 5,
        stream: true,
        stream_options: { include_usage: true },
      }),
      {
        endpoint: 'completion',
        model: 'm',
        prompt: 'hello',
        maxTokens: 5,
        stream: true,
        includeUsage: true,
        kvTransfer: undefined,
      },
    );
  });

  it('reads kv_transfer_params as llm-d’s routing sidecar sends them (nulls for what is not known yet)', () => {
    const read = (params: unknown) =>
      parseGenerationRequest('completion', { prompt: 'x', kv_transfer_params: params }).kvTransfer;
    assert.deepEqual(
      read({
        do_remote_decode: true,
        do_remote_prefill: false,
        remote_engine_id: null,
        remote_block_ids: null,
      }),
      { doRemoteDecode: true, doRemotePrefill: false },
    );
    assert.deepEqual(read({ do_remote_prefill: true, remote_block_ids: [0, 1] }), {
      doRemoteDecode: false,
      doRemotePrefill: true,
    });
    assert.equal(read(null), undefined);
  });

  it('renders chat messages through a template and prefers max_completion_tokens', () => {
    const parsed = parseGenerationRequest('chat', {
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: [{ type: 'text', text: 'Hi' }] },
      ],
      max_tokens: 9,
      max_completion_tokens: 3,
    });
    assert.equal(parsed.prompt, '<|system|>\nBe brief.\n<|user|>\nHi\n<|assistant|>\n');
    assert.equal(parsed.maxTokens, 3);
    assert.equal(parsed.model, undefined);
  });

  it('accepts token ids as a prompt', () => {
    assert.equal(parseGenerationRequest('completion', { prompt: [1, 2, 3] }).prompt, ' 1 2 3');
  });

  it('accepts the stop and logprobs vLLM accepts', () => {
    for (const extra of [
      { stop: 'x', logprobs: 0 },
      { stop: ['a', 'b'], logprobs: 20 },
      { stop: null, logprobs: null },
      { logprobs: true },
    ])
      assert.equal(parseGenerationRequest('completion', { prompt: 'x', ...extra }).prompt, 'x');
    const chat = { messages: [{ role: 'user', content: 'x' }], logprobs: true, top_logprobs: 20 };
    assert.equal(parseGenerationRequest('chat', chat).endpoint, 'chat');
  });

  it('refuses more token ids than the context holds before turning them into text', () => {
    assert.throws(
      () => parseGenerationRequest('completion', { prompt: Array(33).fill(7), max_tokens: 2 }, 32),
      (error: unknown) =>
        error instanceof ApiError &&
        /maximum context length is 32 tokens.*33 in the messages/.test(error.message),
    );
  });

  it('quotes at most a few dozen characters of a wrong value', () => {
    assert.throws(
      () => parseGenerationRequest('completion', { prompt: 'x', max_tokens: 'y'.repeat(1_000_000) }),
      (error: unknown) => error instanceof ApiError && error.message.length < 200 && /y…/.test(error.message),
    );
  });

  it('shapes errors as vLLM does', () => {
    assert.deepEqual(new ApiError(404, 'The model `x` does not exist.', 'model').body(), {
      error: { message: 'The model `x` does not exist.', type: 'NotFoundError', param: 'model', code: 404 },
    });
  });
});
