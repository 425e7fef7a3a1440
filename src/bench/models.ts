/**
 * @module bench/models
 * Asks an OpenAI-compatible server which models it serves, so `llmisvc bench` needs no `--model` against a
 * simulator or a single-model gateway, and the LoRA workload finds the adapters by itself.
 */
import { request } from 'undici';
import { LlmisvcError } from '../errors/index.js';
import { baseUrl } from './load.js';

export interface ServedModels {
  /** Models without a parent (base models). */
  base: string[];
  /** Models with a parent (vLLM lists LoRA adapters this way). */
  adapters: string[];
}

export async function discoverModels(url: string): Promise<ServedModels> {
  const target = `${baseUrl(url)}/v1/models`;
  let body: { data?: { id?: unknown; parent?: unknown }[] };
  try {
    const response = await request(target, { headersTimeout: 10_000, bodyTimeout: 10_000 });
    if (response.statusCode !== 200) {
      await response.body.dump();
      throw new Error(`HTTP ${response.statusCode}`);
    }
    body = (await response.body.json()) as typeof body;
  } catch (error) {
    throw new LlmisvcError(
      'LLMISVC_ERR_INPUT',
      `could not list the models at ${target}: ${(error as Error).message}`,
      {
        hint: 'check --url, or name the model with --model',
      },
    );
  }
  const models = (body.data ?? []).filter(
    (m): m is { id: string; parent?: unknown } => typeof m.id === 'string',
  );
  return {
    base: models.filter((m) => !m.parent).map((m) => m.id),
    adapters: models.filter((m) => Boolean(m.parent)).map((m) => m.id),
  };
}
