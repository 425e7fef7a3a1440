/**
 * Integration: after real requests through a real Envoy to the EPP and small model-server fixtures, the EPP's
 * /metrics carries GIE's (`inference_objective_*`, `inference_pool_*`, `inference_extension_*`) and llm-d-router's
 * (`llm_d_epp_*`) metric names with their label names and values that agree with what was sent.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { request } from 'undici';
import { startEpp, type RunningEpp } from '../src/epp/index.js';
import { startEnvoy, type RunningEnvoy } from '../src/gateway/index.js';
import { startModelServerFixture, type ModelServerFixture } from '../src/bench/index.js';

const ENVOY_BIN = process.env['ENVOY_BIN'];

/** The value of the one sample whose name and labels match exactly (labels in exposition order). */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  assert.ok(
    line,
    `no sample ${series} in:\n${text
      .split('\n')
      .filter((l) => l.startsWith(series.split('{')[0]!))
      .join('\n')}`,
  );
  return Number(line.slice(series.length + 1));
}

describe(
  'EPP /metrics under upstream names',
  { skip: ENVOY_BIN ? false : 'ENVOY_BIN not set (run through npm test)' },
  () => {
    const fixtures: ModelServerFixture[] = [];
    let epp: RunningEpp;
    let envoy: RunningEnvoy;

    before(async () => {
      for (const name of ['a', 'b']) fixtures.push(await startModelServerFixture(name));
      epp = await startEpp({
        host: '127.0.0.1',
        grpcPort: 0,
        grpcHealthPort: 0,
        metricsPort: 0,
        endpoints: fixtures.map((f) => ({ address: f.address })),
        refreshMetricsIntervalMs: 25,
        directory: {
          models: new Map([['test-model', { criticality: 'Standard', targets: [] }]]),
          objectives: new Map([['batch', -1]]),
        },
        logger: pino({ level: 'silent' }),
      });
      // The token and response-size metrics need the response body, which GIE's gateways stream through the EPP
      // (our own bootstrap's default, NONE, leaves it out for speed).
      envoy = await startEnvoy(ENVOY_BIN!, {
        eppHost: '127.0.0.1',
        eppPort: epp.grpcPort,
        responseBodyMode: 'FULL_DUPLEX_STREAMED',
      });
      for (let i = 0; i < 400 && epp.datastore.endpoints().some((e) => e.stale); i++) await sleep(25);
    });

    after(async () => {
      await envoy?.close();
      await epp?.close();
      for (const f of fixtures) await f.close();
    });

    test('requests, errors, durations, sizes, tokens, pool, scheduler and plugin metrics', async () => {
      const post = async (model: string, headers: Record<string, string> = {}) => {
        const res = await request(`http://127.0.0.1:${envoy.port}/v1/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ model, prompt: 'Summarise the following. '.repeat(8), max_tokens: 1 }),
        });
        return { status: res.statusCode, body: await res.body.text() };
      };
      const served: string[] = [];
      for (let i = 0; i < 3; i++) {
        const reply = await post('test-model', {
          'x-llm-d-inference-fairness-id': 'tenant-a',
          'x-gateway-inference-objective': 'batch',
        });
        assert.equal(reply.status, 200, reply.body);
        served.push(reply.body);
      }
      assert.equal((await post('no-such-model')).status, 404);

      const text = await (await fetch(`http://127.0.0.1:${epp.metricsPort}/metrics`)).text();
      const gie = 'model_name="test-model",target_model_name="test-model"';
      const llmd = `${gie},fairness_id="tenant-a",priority="-1"`;
      assert.equal(sample(text, `inference_objective_request_total{${gie}}`), 3);
      assert.equal(sample(text, `llm_d_epp_request_total{${llmd}}`), 3);
      const refused = 'model_name="no-such-model",target_model_name="no-such-model"';
      assert.equal(sample(text, `inference_objective_request_total{${refused}}`), 1);
      assert.equal(
        sample(text, `inference_objective_request_error_total{${refused},error_code="BadRequest"}`),
        1,
      );
      assert.equal(
        sample(
          text,
          `llm_d_epp_request_error_total{${refused},fairness_id="default-flow",priority="0",error_code="BadRequest"}`,
        ),
        1,
      );
      for (const [family, labels] of [
        ['inference_objective_request_duration_seconds', gie],
        ['llm_d_epp_request_duration_seconds', llmd],
        ['inference_objective_normalized_time_per_output_token_seconds', gie],
        ['llm_d_epp_request_ntpot_seconds', llmd],
      ] as const) {
        assert.equal(sample(text, `${family}_count{${labels}}`), 3, family);
        const sum = sample(text, `${family}_sum{${labels}}`);
        assert.ok(sum > 0 && sum < 60, `${family}_sum = ${sum}`);
      }
      const bodyBytes = served.reduce((n, b) => n + Buffer.byteLength(b), 0);
      assert.equal(sample(text, `inference_objective_response_sizes_sum{${gie}}`), bodyBytes);
      assert.equal(sample(text, `llm_d_epp_response_size_bytes_sum{${llmd}}`), bodyBytes);
      const requestBytes =
        3 *
        Buffer.byteLength(
          JSON.stringify({
            model: 'test-model',
            prompt: 'Summarise the following. '.repeat(8),
            max_tokens: 1,
          }),
        );
      assert.equal(sample(text, `inference_objective_request_sizes_sum{${gie}}`), requestBytes);
      // The fixture's usage: 1 prompt token, 1 completion token per response.
      assert.equal(sample(text, `inference_objective_input_tokens_sum{${gie}}`), 3);
      assert.equal(sample(text, `inference_objective_output_tokens_sum{${gie}}`), 3);
      assert.equal(sample(text, `llm_d_epp_request_output_tokens_count{${llmd}}`), 3);
      assert.equal(sample(text, 'inference_objective_running_requests{model_name="test-model"}'), 0);
      assert.equal(sample(text, `llm_d_epp_request_running{${llmd}}`), 0);

      assert.equal(sample(text, 'inference_pool_ready_pods{name="epp"}'), 2);
      assert.equal(sample(text, 'llm_d_epp_ready_endpoints{name="epp"}'), 2);
      assert.equal(sample(text, 'inference_pool_average_queue_size{name="epp"}'), 0);
      assert.equal(sample(text, 'inference_pool_average_kv_cache_utilization{name="epp"}'), 0);
      assert.equal(
        sample(
          text,
          `inference_pool_per_pod_queue_size{name="epp",model_server_pod="${fixtures[0]!.address}"}`,
        ),
        0,
      );

      assert.equal(sample(text, 'inference_extension_scheduler_e2e_duration_seconds_count'), 4);
      assert.equal(sample(text, 'llm_d_epp_scheduler_e2e_duration_seconds_count'), 4);
      assert.equal(sample(text, 'inference_extension_scheduler_attempts_total{status="success"}'), 3);
      const scorer = 'extension_point="Scorer",plugin_type="queue-scorer",plugin_name="queue-scorer"';
      assert.equal(sample(text, `inference_extension_plugin_duration_seconds_count{${scorer}}`), 3);
      assert.equal(sample(text, `llm_d_epp_plugin_duration_seconds_count{${scorer}}`), 3);
      assert.equal(sample(text, 'llm_d_epp_request_processing_duration_seconds_count'), 4);
      assert.match(text, /\ninference_extension_info\{commit="[^"]*",build_ref="[^"]*"\} 1\n/);
      assert.match(text, /\nllm_d_epp_info\{commit="[^"]*",build_ref="[^"]*"\} 1\n/);
    });
  },
);
