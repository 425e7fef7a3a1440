/**
 * @module cli/doctor
 * `llmisvc doctor NAME`: why a service is not Ready, and the next command to run.
 */
import type { Command } from 'commander';
import { LlmisvcError } from '../errors/index.js';

export function register(program: Command): void {
  program
    .command('doctor')
    .description('diagnose why an LLMInferenceService is not Ready; exit 1 when something is wrong')
    .argument('<name>', 'the LLMInferenceService')
    .option('-n, --namespace <namespace>', 'its namespace', 'default')
    .option('--kubeconfig <file>', 'the kubeconfig (default: KUBECONFIG or ~/.kube/config)')
    .option('--context <name>', 'the kubeconfig context to use')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(
      async (
        name: string,
        flags: { namespace: string; kubeconfig?: string; context?: string; output: string },
      ) => {
        if (flags.output !== 'text' && flags.output !== 'json') {
          throw new LlmisvcError(
            'LLMISVC_ERR_CONFIG',
            `--output must be text or json, not "${flags.output}"`,
          );
        }
        // Loaded here: the Kubernetes client is not something `llmisvc render` should pay for.
        const { diagnose, formatDiagnosis, KubeClient } = await import('../deps/index.js');
        const client = await KubeClient.load(flags.kubeconfig, flags.context);
        const diagnosis = await diagnose(client, name, flags.namespace);
        process.stdout.write(
          flags.output === 'json' ? JSON.stringify(diagnosis, null, 2) + '\n' : formatDiagnosis(diagnosis),
        );
        if (!diagnosis.ready) process.exitCode = 1;
      },
    );
}
