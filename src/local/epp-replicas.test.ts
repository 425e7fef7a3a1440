import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readyEndpointsOf } from './epp-replicas.js';

test('readyEndpointsOf reads llm_d_epp_ready_endpoints with or without labels, and nothing else', () => {
  assert.equal(readyEndpointsOf('# HELP x\nllm_d_epp_ready_endpoints{name=""} 4\n'), 4);
  assert.equal(readyEndpointsOf('llm_d_epp_ready_endpoints 2\n'), 2);
  assert.equal(readyEndpointsOf('inference_pool_ready_pods{name=""} 4\n'), undefined);
  assert.equal(readyEndpointsOf('x_llm_d_epp_ready_endpoints 4\n'), undefined);
});
