/**
 * @module epp/plugins/token-sources
 * Where precise prefix-cache routing gets its tokens, checked once every plugin of a config exists. The precise
 * producer keys KV blocks on the request's token ids; only the served model's own ids (token-producer's `vllm`
 * backend) can ever equal the keys the model servers report. Without them it keys on llm-d's byte estimate (4 UTF-8
 * bytes a "token") and never finds a cached prefix.
 *
 * Upstream (llm-d-router, preciseprefixcache/producer.go `ValidateTokenProducer`, run by the runner after the missing
 * producers are created) refuses a precise-prefix-cache-producer unless a token-producer (or its `tokenizer` alias)
 * with a rendering backend exists. Here:
 * - a config that names `backend: estimate` — written for the current upstream, which refuses it — is refused too;
 * - a config with no rendering token-producer at all, or one without parameters, is loaded with a loud warning
 *   naming the fix. Upstream releases before ValidateTokenProducer loaded such configs and routed on the estimate,
 *   and KServe's own precise samples (qwen2-7b kv-cache-routing) still pair the producer with a parameter-less
 *   token-producer: refusing them would break configs users have working;
 * - the deprecated precise-prefix-cache-scorer is not checked by ValidateTokenProducer upstream (its type differs);
 *   with `indexerConfig.tokenizersPoolConfig` it tokenizes in-process there, which maps here onto a renderer at the
 *   pool's model servers (legacy-tokenizers.ts); without it, the same loud warning.
 */
import type { FieldProblem } from '../../errors/index.js';
import type { Plugin, RequestDataPreparer } from '../types.js';
import { RENDER_ON_POOL } from './legacy-tokenizers.js';
import type { PrecisePrefixCacheOptions } from './precise-prefix-cache-producer.js';
import { renderOnPoolOptions, tokenProducer, type TokenProducerOptions } from './token-producer.js';

type TokenSource = Plugin & { readonly options: TokenProducerOptions };
type PrecisePlugin = Plugin & { readonly options: PrecisePrefixCacheOptions };

function isTokenProducer(plugin: Plugin): plugin is TokenSource {
  return plugin.type === 'token-producer';
}

function isPrecise(plugin: Plugin): plugin is PrecisePlugin {
  return plugin.type === 'precise-prefix-cache-producer' || plugin.type === 'precise-prefix-cache-scorer';
}

/** What the check found: problems refuse the config, warnings are logged; `renderers` are attached by the caller. */
export interface TokenSourceReport {
  readonly problems: FieldProblem[];
  readonly warnings: FieldProblem[];
  /** Deprecated scorers whose tokenizersPoolConfig maps onto a renderer of their own, with that renderer. */
  readonly renderers: { readonly plugin: Plugin; readonly renderer: RequestDataPreparer }[];
}

const FIX =
  'add a token-producer with modelName and vllm: {url: <render server>} or vllm: {endpointDiscovery: {}} (the model servers render)';

/**
 * Checks the token sources of every precise plugin; `pathOf` gives a plugin's config path (`plugins[3]`).
 * @example checkTokenSources(plugins, (name) => paths.get(name)!)
 */
export function checkTokenSources(
  plugins: ReadonlyMap<string, Plugin>,
  pathOf: (name: string) => string,
): TokenSourceReport {
  const report: TokenSourceReport = { problems: [], warnings: [], renderers: [] };
  const producers = [...plugins.values()].filter(isTokenProducer);
  const rendering = producers.find((p) => p.options.backend === 'vllm');
  const explicitEstimate = producers.find(
    (p) => p.options.backend === 'estimate' && p.options.backendExplicit,
  );
  for (const plugin of [...plugins.values()].filter(isPrecise)) {
    const path = pathOf(plugin.name);
    const pool = plugin.options.tokenizersPool;
    if (rendering) {
      if (pool)
        report.warnings.push({
          path: `${path}.parameters.indexerConfig.tokenizersPoolConfig`,
          message: `not used: token-producer "${rendering.name}" renders the prompt's tokens (upstream falls back to this pool only for a request that got none)`,
        });
      continue;
    }
    if (pool) {
      report.renderers.push({
        plugin,
        renderer: tokenProducer(plugin.name, renderOnPoolOptions(pool.modelName)),
      });
      report.warnings.push({
        path: `${path}.parameters.indexerConfig.tokenizersPoolConfig`,
        message: `upstream tokenizes in-process with ${pool.modelName}'s tokenizer; here ${RENDER_ON_POOL}`,
      });
      continue;
    }
    if (plugin.type === 'precise-prefix-cache-producer' && explicitEstimate) {
      if (report.problems.length > 0) continue; // one problem names the estimate backend for every producer
      report.problems.push({
        path: `${pathOf(explicitEstimate.name)}.parameters.backend`,
        message: `estimate gives byte-packed ids that never match the model servers' KV-block keys, so precise-prefix-cache-producer "${plugin.name}" could never find a cached prefix (llm-d-router refuses this too): use backend vllm with modelName and vllm.url or vllm.endpointDiscovery`,
      });
      continue;
    }
    report.warnings.push({
      path,
      message: `precise prefix-cache routing will never find a cached prefix: no token-producer renders the model's own tokens, so "${plugin.name}" keys blocks on estimated tokens (4 UTF-8 bytes each) that never match the model servers' KV-block keys; ${FIX}. Current llm-d-router refuses this config at start`,
    });
  }
  return report;
}
