/**
 * @module test/harness/inference-sim
 * llm-d-inference-sim (v0.10.2, built once per machine from its Go module, ~3.5 min cold on 2 cores; shared with
 * `npm run bench:peers`): the independent model server whose real KV-cache events the precise-routing tests
 * follow. Exported to the tests as `LLMISVC_INFERENCE_SIM`.
 */
import { existsSync } from 'node:fs';
import { provisionInferenceSim } from '../../src/bench/index.js';
import type { Provisioner } from './provision.js';

export const inferenceSimProvisioner: Provisioner = {
  name: 'llm-d-inference-sim',
  async provision({ env, log }) {
    const given = env['LLMISVC_INFERENCE_SIM'];
    if (given && existsSync(given)) return { LLMISVC_INFERENCE_SIM: given };
    return { LLMISVC_INFERENCE_SIM: await provisionInferenceSim({ env, log }) };
  },
};
