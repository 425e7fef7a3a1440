/**
 * Token sources of precise prefix-cache routing, as configs written for llm-d spell them: the `tokenizer` alias,
 * `udsTokenizerConfig`, the deprecated scorer's `tokenizersPoolConfig`, and what happens without any renderer.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { endpoint } from '../../../test/harness/endpoints.js';
import { loadEndpointPickerConfig, type EndpointPickerConfig } from '../config.js';
import { isRequestDataPreparer, type Plugin } from '../types.js';
import {
  PENDING_TOKENS,
  TOKENIZED_PROMPT,
  type TokenizedPrompt,
  type TokenProducer,
} from './token-producer.js';
import { problemsOf } from '../../../test/harness/picker-config.js';

const HEAD = 'apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n';

function warning(config: EndpointPickerConfig, path: string): string {
  const found = config.warnings.find((w) => w.path === path);
  assert.ok(found, `a warning at ${path} (got ${config.warnings.map((w) => w.path).join(', ')})`);
  return found.message;
}

const PRECISE = `- type: precise-prefix-cache-producer
  parameters: {tokenProcessorConfig: {blockSize: 16}}
- type: prefix-cache-scorer
  parameters: {prefixMatchInfoProducerName: precise-prefix-cache-producer}
`;

describe('the tokenizer plugin type (token-producer under its earlier name)', () => {
  it('loads as a token-producer with the same parameters and meaning, and a deprecation warning', () => {
    const config = loadEndpointPickerConfig(
      `${HEAD}plugins:\n- type: tokenizer\n  parameters: {modelName: m, vllm: {url: "http://render:8000", timeout: 2s}}\n${PRECISE}`,
    );
    const tokens = config.plugins.get('tokenizer') as TokenProducer;
    assert.equal(tokens.type, 'token-producer');
    assert.deepEqual(
      [tokens.options.backend, tokens.options.modelName, tokens.options.url, tokens.options.timeoutMs],
      ['vllm', 'm', 'http://render:8000', 2000],
    );
    assert.ok(config.preparers.includes(tokens));
    assert.match(
      warning(config, 'plugins[0].type'),
      /"tokenizer": deprecated upstream.*loaded as token-producer/,
    );
    assert.deepEqual(
      config.warnings.map((w) => w.path),
      ['plugins[0].type'],
      'a rendering tokenizer satisfies the precise producer',
    );
  });

  it('without parameters it is the estimate backend, as token-producer is', () => {
    const config = loadEndpointPickerConfig(`${HEAD}plugins:\n- type: tokenizer\n- type: queue-scorer\n`);
    assert.equal((config.plugins.get('tokenizer') as TokenProducer).options.backend, 'estimate');
  });

  it('udsTokenizerConfig renders at the pool instead, saying so; with vllm too it is refused, as upstream', () => {
    const config = loadEndpointPickerConfig(
      `${HEAD}plugins:\n- type: tokenizer\n  parameters: {modelName: Qwen/Qwen3-32B, udsTokenizerConfig: {socketFile: /tmp/tokenizer/tokenizer-uds.socket}}\n${PRECISE}`,
    );
    const tokens = config.plugins.get('tokenizer') as TokenProducer;
    assert.equal(tokens.options.backend, 'vllm');
    assert.equal(tokens.options.endpointDiscovery, true);
    assert.equal(tokens.options.url, undefined);
    assert.match(
      warning(config, 'plugins[0].parameters.udsTokenizerConfig'),
      /UDS tokenizer sidecar \(\/tmp\/tokenizer\/tokenizer-uds\.socket\) is not supported here: the prompt is rendered by the pool's model servers/,
    );
    const cases: [string, string][] = [
      ['{udsTokenizerConfig: {socketFile: /s}, vllm: {url: "http://r:1"}}', 'udsTokenizerConfig'],
      ['{udsTokenizerConfig: {socketFile: /s}, backend: estimate}', 'udsTokenizerConfig'],
      ['{udsTokenizerConfig: /tmp/s}', 'udsTokenizerConfig'],
      ['{udsTokenizerConfig: {socketFile: 7}}', 'udsTokenizerConfig.socketFile'],
    ];
    for (const [parameters, field] of cases)
      assert.deepEqual(
        problemsOf(
          `${HEAD}plugins:\n- type: tokenizer\n  parameters: ${parameters}\n- type: queue-scorer\n`,
        ).map((p) => p.path),
        [`plugins[0].parameters.${field}`],
        parameters,
      );
  });
});

describe("llm-d's precise guide (tokenizer + deprecated scorer with tokenizersPoolConfig) loads", () => {
  // llm-d guides/precise-prefix-cache-aware/scheduler/precise-prefix-cache-aware.values.yaml (commit 019a3f3).
  const GUIDE = `${HEAD}plugins:
  - type: tokenizer
    parameters:
      modelName: Qwen/Qwen3-32B
      udsTokenizerConfig:
        socketFile: /tmp/tokenizer/tokenizer-uds.socket
  - type: single-profile-handler
  - type: decode-filter
  - type: precise-prefix-cache-scorer
    parameters:
      tokenProcessorConfig:
        blockSize: 64
        hashSeed: "42"
      indexerConfig:
        tokenizersPoolConfig:
          modelName: Qwen/Qwen3-32B
          uds:
            socketFile: /tmp/tokenizer/tokenizer-uds.socket
        kvBlockIndexConfig:
          enableMetrics: true
      kvEventsConfig:
        topicFilter: "kv@"
        concurrency: 4
        discoverPods: false
        zmqEndpoint: "tcp://*:5557"
  - type: kv-cache-utilization-scorer
  - type: queue-scorer
  - type: max-score-picker
schedulingProfiles:
  - name: default
    plugins:
      - pluginRef: decode-filter
      - pluginRef: tokenizer
      - pluginRef: precise-prefix-cache-scorer
        weight: 2.0
      - pluginRef: kv-cache-utilization-scorer
        weight: 1.0
      - pluginRef: queue-scorer
        weight: 1.0
      - pluginRef: max-score-picker
`;

  it('with the tokenizer rendering and the pool named as unused', () => {
    const config = loadEndpointPickerConfig(GUIDE);
    assert.deepEqual(config.warnings.map((w) => w.path).sort(), [
      'plugins[0].parameters.udsTokenizerConfig',
      'plugins[0].type',
      'plugins[3].parameters.indexerConfig.tokenizersPoolConfig',
      // The guide sets the event decoders' concurrency: events are decoded as they arrive here.
      'plugins[3].parameters.kvEventsConfig.concurrency',
      'schedulingProfiles[0].plugins[1].pluginRef',
    ]);
    assert.match(
      warning(config, 'plugins[3].parameters.indexerConfig.tokenizersPoolConfig'),
      /not used: token-producer "tokenizer" renders the prompt's tokens/,
    );
    const scorer = config.plugins.get('precise-prefix-cache-scorer')!;
    assert.equal(isRequestDataPreparer(scorer), false, 'no second renderer');
    assert.deepEqual(
      config.scheduler.profiles.get('default')!.scorers.map((s) => [s.scorer.type, s.weight]),
      [
        ['precise-prefix-cache-scorer', 2],
        ['kv-cache-utilization-scorer', 1],
        ['queue-scorer', 1],
      ],
    );
  });
});

describe('the deprecated scorer with tokenizersPoolConfig and no token-producer', () => {
  // llm-d-router deploy/config/dp-kvcache-epp-config.yaml (commit ba93165), without its dp-rank-header-handler.
  const DP = `${HEAD}plugins:
- type: precise-prefix-cache-scorer
  parameters:
    kvEventsConfig:
      zmqEndpoint: tcp://0.0.0.0:5557
      discoverPods: true
      podDiscoveryConfig:
        socketPort: 5557
    indexerConfig:
      tokenProcessorConfig:
        blockSize: 16
        hashSeed: "42"
      tokenizersPoolConfig:
        modelName: Qwen/Qwen2.5-1.5B-Instruct
        hf:
          tokenizersCacheDir: "/cache/tokenizers"
      kvBlockIndexConfig:
        enableMetrics: false
- type: decode-filter
- type: max-score-picker
- type: single-profile-handler
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: decode-filter
  - pluginRef: max-score-picker
  - pluginRef: precise-prefix-cache-scorer
    weight: 10
`;

  async function renderServer(
    tokens: number[],
  ): Promise<{ server: Server; address: string; paths: string[] }> {
    const paths: string[] = [];
    const server = createServer((req, res) => {
      paths.push(req.url ?? '');
      req.resume();
      req.on('end', () => res.end(JSON.stringify([{ token_ids: tokens }])));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { server, address: `127.0.0.1:${(server.address() as AddressInfo).port}`, paths };
  }

  it("renders each request at the pool's model servers before scheduling, and says so", async () => {
    const config = loadEndpointPickerConfig(DP);
    assert.match(
      warning(config, 'plugins[0].parameters.indexerConfig.tokenizersPoolConfig'),
      /upstream tokenizes in-process with Qwen\/Qwen2.5-1.5B-Instruct's tokenizer; here the prompt is rendered by the pool's model servers/,
    );
    const scorer: Plugin = config.plugins.get('precise-prefix-cache-scorer')!;
    assert.ok(config.preparers.includes(scorer as never), 'the scorer renders before scheduling');
    const { server, address, paths } = await renderServer([11, 12, 13]);
    try {
      const data = new Map<string, unknown>();
      await config.preparers[0]!.prepareRequestData(
        {
          path: '/v1/completions',
          headers: {},
          body: Buffer.from(JSON.stringify({ model: 'Qwen/Qwen2.5-1.5B-Instruct', prompt: 'hello there' })),
        },
        [endpoint(address)],
        data,
      );
      // Within its short wait the render's tokens are the request's; past it, they follow (no timing asserted).
      const tokens =
        (data.get(TOKENIZED_PROMPT) as TokenizedPrompt | undefined)?.tokens ??
        (await (data.get(PENDING_TOKENS) as Promise<number[] | undefined>));
      assert.deepEqual(paths, ['/v1/completions/render']);
      assert.deepEqual(tokens, [11, 12, 13]);
    } finally {
      server.close();
    }
  });

  it('refuses a hostile tokenizersPoolConfig naming the field', () => {
    const cases: [string, string][] = [
      ['{}', 'indexerConfig.tokenizersPoolConfig.modelName'],
      ['{modelName: ""}', 'indexerConfig.tokenizersPoolConfig.modelName'],
      ['{modelName: [a]}', 'indexerConfig.tokenizersPoolConfig.modelName'],
      ['qwen', 'indexerConfig.tokenizersPoolConfig'],
    ];
    for (const [pool, field] of cases)
      assert.deepEqual(
        problemsOf(
          `${HEAD}plugins:\n- type: precise-prefix-cache-scorer\n  parameters: {indexerConfig: {tokenizersPoolConfig: ${pool}}}\n`,
        ).map((p) => p.path),
        [`plugins[0].parameters.${field}`],
        pool,
      );
  });

  it('precise-prefix-cache-producer refuses tokenizersPoolConfig, as upstream, saying what to do instead', () => {
    const problems = problemsOf(
      `${HEAD}plugins:\n- type: token-producer\n  parameters: {modelName: m}\n- type: precise-prefix-cache-producer\n  parameters: {indexerConfig: {tokenizersPoolConfig: {modelName: m}}}\n`,
    );
    assert.deepEqual(
      problems.map((p) => p.path),
      ['plugins[1].parameters.indexerConfig.tokenizersPoolConfig'],
    );
    assert.match(
      problems[0]!.message,
      /refused by precise-prefix-cache-producer, as upstream .*add a token-producer/,
    );
    assert.doesNotMatch(problems[0]!.message, /nor upstream/);
  });
});

describe('precise routing without the model’s own tokens', () => {
  it('is refused when the config says backend: estimate, as current llm-d-router refuses it', () => {
    const problems = problemsOf(
      `${HEAD}plugins:\n- type: token-producer\n  parameters: {backend: estimate}\n${PRECISE}`,
    );
    assert.deepEqual(
      problems.map((p) => p.path),
      ['plugins[0].parameters.backend'],
    );
    assert.match(problems[0]!.message, /never match the model servers' KV-block keys.*use backend vllm/);
  });

  it('loads with a loud warning naming the fix when no token-producer renders (KServe qwen2-7b sample)', () => {
    for (const tokens of ['- type: token-producer\n', '']) {
      const config = loadEndpointPickerConfig(`${HEAD}plugins:\n${tokens}${PRECISE}`);
      const path = tokens ? 'plugins[1]' : 'plugins[0]';
      assert.match(
        warning(config, path),
        /precise prefix-cache routing will never find a cached prefix: .*add a token-producer with modelName and vllm: \{url: <render server>\} or vllm: \{endpointDiscovery: \{\}\}/,
      );
    }
  });

  it('the deprecated scorer without a pool or a renderer warns the same', () => {
    const config = loadEndpointPickerConfig(
      `${HEAD}plugins:\n- type: precise-prefix-cache-scorer\n- type: max-score-picker\n`,
    );
    assert.match(warning(config, 'plugins[0]'), /will never find a cached prefix/);
  });

  it('a rendering token-producer raises nothing (our own precise configs)', () => {
    const config = loadEndpointPickerConfig(
      `${HEAD}plugins:\n- type: token-producer\n  parameters: {modelName: m, vllm: {endpointDiscovery: {}}}\n${PRECISE}`,
    );
    assert.deepEqual(config.warnings, []);
  });
});
