/**
 * @module cli/sim
 * `llmisvc sim`: runs one vLLM-compatible simulator until SIGINT or SIGTERM. Flags map one to one onto
 * `SimulatorOptions` (and mostly onto vLLM's own flag names).
 */
import { Option, type Command } from 'commander';
import { LlmisvcError } from '../errors/index.js';
import { defaultSimulatorOptions as d, startSimulator, type SimulatorOptions } from '../sim/index.js';

function number(flag: string) {
  return (value: string): number => {
    const parsed = Number(value);
    if (value.trim() === '' || !Number.isFinite(parsed))
      throw new LlmisvcError('LLMISVC_ERR_CONFIG', `${flag} must be a number, got '${value}'`);
    return parsed;
  };
}

function list(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...value.split(/[\s,]+/).filter(Boolean)];
}

export function register(program: Command): void {
  const n = (flag: string, description: string, fallback: number): Option =>
    new Option(`${flag} <n>`, description).argParser(number(flag)).default(fallback);
  program
    .command('sim')
    .description('run a vLLM-compatible model-server simulator with a deterministic performance model')
    .addOption(n('--port', 'port to listen on (0 picks a free one)', d.port))
    .option('--host <address>', 'address to bind', d.host)
    .option('--model <name>', 'base model name served', d.model)
    .option('--served-model-name <names...>', 'further names for the base model', list)
    .option('--lora-modules <adapters...>', 'LoRA adapters as name or name=path', list)
    .option('--pod-name <name>', 'name reported in the x-inference-pod header (default sim-<port>)')
    .addOption(new Option('--role <role>', 'P/D role').choices(['both', 'prefill', 'decode']).default(d.role))
    .option(
      '--prefill-allow-list <endpoints...>',
      'decode role: the only prefill endpoints (host:port) x-prefiller-host-port may name; others get 403',
      list,
    )
    .addOption(n('--seed', 'seed for generated text and failure injection', d.seed))
    .addOption(n('--time-scale', 'wall seconds per modelled second (0.01 = 100x faster)', d.timeScale))
    .addOption(n('--max-num-seqs', 'most sequences in the running batch', d.maxNumSeqs))
    .addOption(n('--max-num-batched-tokens', 'token budget of one engine step', d.maxNumBatchedTokens))
    .addOption(n('--num-gpu-blocks', 'KV-cache blocks', d.numGpuBlocks))
    .addOption(n('--block-size', 'tokens per KV-cache block', d.blockSize))
    .option('--no-enable-prefix-caching', 'turn prefix caching off (it is on by default, as in vLLM)')
    .addOption(n('--max-model-len', 'longest prompt + output in tokens', d.maxModelLen))
    .addOption(n('--max-loras', 'most LoRA adapters in one batch', d.maxLoras))
    .addOption(n('--prefill-tokens-per-second', 'prefill speed', d.prefillTokensPerSecond))
    .addOption(n('--step-overhead-ms', 'fixed cost of every engine step', d.stepOverheadMs))
    .addOption(n('--decode-base-ms', 'decode-step cost with a batch of one', d.decodeBaseMs))
    .addOption(n('--decode-per-seq-ms', 'extra decode-step cost per running sequence', d.decodePerSeqMs))
    .addOption(n('--lora-load-ms', 'cost of loading a LoRA adapter', d.loraLoadMs))
    .addOption(n('--kv-transfer-base-ms', 'fixed cost of receiving a remote prefill', d.kvTransferBaseMs))
    .addOption(n('--kv-transfer-per-token-ms', 'KV-transfer cost per prompt token', d.kvTransferPerTokenMs))
    .addOption(
      n('--default-max-tokens', 'output length bound when a request sets no max_tokens', d.defaultMaxTokens),
    )
    .addOption(
      n('--max-waiting-requests', 'shed with 429 beyond this queue length (0: never)', d.maxWaitingRequests),
    )
    .addOption(n('--failure-rate', 'fraction of requests answered with an injected failure', d.failureRate))
    .option('--failure-kinds <kinds...>', 'server_error, rate_limit, unavailable', list)
    .addOption(n('--stall-rate', 'fraction of streams that stall before their first token', d.stallRate))
    .addOption(n('--stall-ms', 'length of a stall in modelled milliseconds', d.stallMs))
    .addOption(n('--max-connections', 'most client connections open at once', d.maxConnections))
    .addOption(n('--headers-timeout-ms', 'time a client has to send a request head', d.headersTimeoutMs))
    .addOption(
      n(
        '--request-timeout-ms',
        'time a client has to send a whole request, body included',
        d.requestTimeoutMs,
      ),
    )
    .action(async (flags: Partial<SimulatorOptions>) => {
      const simulator = await startSimulator(flags);
      const o = simulator.options;
      console.log(
        `llmisvc sim: ${simulator.podName} serving ${o.model} at ${simulator.url} (role ${o.role}, ` +
          `${o.numGpuBlocks}x${o.blockSize}-token KV blocks, batch ${o.maxNumSeqs}, time scale ${o.timeScale})`,
      );
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      await simulator.close();
    });
}
