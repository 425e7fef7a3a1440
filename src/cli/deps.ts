/**
 * @module cli/deps
 * `llmisvc deps plan|install|verify|lb`: what the services need from a cluster, installing it in order, checking
 * it, and getting a Gateway an address on clusters without a cloud load balancer.
 */
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { toTypedObject } from '../api/index.js';
import type { LbAdvice, ServiceNeeds } from '../deps/index.js';
import { LlmisvcError } from '../errors/index.js';
import { collect, readObjects, splitTyped } from './inputs.js';

interface InputFlags {
  file: string[];
  configDir: string[];
  provider?: string;
}

interface ClusterFlags {
  kubeconfig?: string;
  context?: string;
}

/** The deps module, loaded when a command runs: it brings the Kubernetes client, which `render` need not pay for. */
const load = () => import('../deps/index.js');

/** The needs of the `-f` services, or every feature when no file is given. */
async function needsOf(flags: InputFlags): Promise<ServiceNeeds[]> {
  const { ALL_FEATURES, servicesNeeds } = await load();
  if (flags.file.length === 0) return [ALL_FEATURES];
  const typed = readObjects(flags.file).map(toTypedObject);
  const { services, configs } = splitTyped(typed, flags.configDir);
  if (services.length === 0) {
    throw new LlmisvcError('LLMISVC_ERR_INPUT', 'the input holds no LLMInferenceService (only configs)', {
      hint: 'pass the services with -f, or no -f at all for every feature',
    });
  }
  return servicesNeeds(services, configs);
}

function outputFormat(value: string): 'text' | 'json' {
  if (value !== 'text' && value !== 'json') {
    throw new LlmisvcError('LLMISVC_ERR_CONFIG', `--output must be text or json, not "${value}"`);
  }
  return value;
}

function inputOptions(command: Command): Command {
  return command
    .option(
      '-f, --file <file>',
      'LLMInferenceService files to plan for (repeatable; default: every feature)',
      collect,
      [],
    )
    .option(
      '--config-dir <dir>',
      'a folder of LLMInferenceServiceConfig files for baseRefs (repeatable)',
      collect,
      [],
    );
}

function clusterOptions(command: Command): Command {
  return command
    .option('--kubeconfig <file>', 'the kubeconfig (default: KUBECONFIG or ~/.kube/config)')
    .option('--context <name>', 'the kubeconfig context to use');
}

function printAdvice(advice: LbAdvice): void {
  process.stdout.write(
    advice.commands.join('\n') + '\n\n' + advice.notes.map((n) => `# ${n}`).join('\n') + '\n',
  );
}

export function register(program: Command): void {
  const deps = program
    .command('deps')
    .description('the dependencies of LLMInferenceService: plan, install, verify, load balancers');

  inputOptions(deps.command('plan'))
    .description('the install steps the services need, in the only safe order')
    .option(
      '--provider <name>',
      'gateway provider: envoy-gateway, istio, kgateway or agentgateway',
      'envoy-gateway',
    )
    .option(
      '-o, --output <format>',
      'text or json (an array of {name, version, reason, commands, verify})',
      'text',
    )
    .action(async (flags: InputFlags & { output: string }) => {
      const { formatPlan, parseProvider, planSteps } = await load();
      const format = outputFormat(flags.output);
      const provider = parseProvider(flags.provider);
      const all = await needsOf(flags);
      const steps = planSteps(all, provider);
      process.stdout.write(
        format === 'json'
          ? JSON.stringify(steps, null, 2) + '\n'
          : formatPlan(steps, all, provider, flags.file.map((f) => `-f ${f}`).join(' ')),
      );
    });

  clusterOptions(inputOptions(deps.command('install')))
    .description('apply the plan to the current cluster, step by step, waiting until each is healthy')
    .option(
      '--provider <name>',
      'gateway provider: envoy-gateway, istio, kgateway or agentgateway',
      'envoy-gateway',
    )
    .option(
      '--from <dir>',
      'apply local manifests DIR/<step>.yaml instead of downloading (air-gapped clusters)',
    )
    .option('--dry-run', 'print what would be done and do nothing')
    .option('--timeout <seconds>', 'how long each step may take to become healthy', '300')
    .option('--helm <path>', 'the helm binary for provider steps without --from', 'helm')
    .action(
      async (
        flags: InputFlags & ClusterFlags & { from?: string; dryRun?: boolean; timeout: string; helm: string },
      ) => {
        const { installPlan, KubeClient, parseProvider, planSteps } = await load();
        const provider = parseProvider(flags.provider);
        const steps = planSteps(await needsOf(flags), provider);
        const seconds = Number(flags.timeout);
        if (!Number.isFinite(seconds) || seconds <= 0) {
          throw new LlmisvcError(
            'LLMISVC_ERR_CONFIG',
            `--timeout must be a number of seconds, not "${flags.timeout}"`,
          );
        }
        const client = flags.dryRun ? undefined : await KubeClient.load(flags.kubeconfig, flags.context);
        const log = (line: string) => process.stdout.write(line + '\n');
        const result = await installPlan(client, steps, {
          provider,
          ...(flags.from ? { from: flags.from } : {}),
          dryRun: Boolean(flags.dryRun),
          stepTimeoutMs: seconds * 1000,
          helm: flags.helm,
          log,
        });
        if (!flags.dryRun) {
          const applied = result.steps.filter((s) => s.action === 'applied').length;
          log(
            `done: ${applied} step(s) applied, ${result.steps.length - applied} already healthy` +
              (result.restartedProvider ? `, ${provider} restarted` : '') +
              `; check with: llmisvc deps verify${provider === 'envoy-gateway' ? '' : ` --provider ${provider}`}`,
          );
        }
      },
    );

  clusterOptions(inputOptions(deps.command('verify')))
    .description(
      'check the cluster has everything the services need, healthy; exit 1 with the fixes otherwise',
    )
    .option(
      '--provider <name>',
      'gateway provider (default: the one running in the cluster, else envoy-gateway)',
    )
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (flags: InputFlags & ClusterFlags & { output: string }) => {
      const { detectProvider, evaluateCluster, formatVerify, KubeClient, observeCluster, parseProvider } =
        await load();
      const format = outputFormat(flags.output);
      const all = await needsOf(flags);
      const client = await KubeClient.load(flags.kubeconfig, flags.context);
      const snapshot = await observeCluster(client);
      const provider = flags.provider
        ? parseProvider(flags.provider)
        : (detectProvider(snapshot) ?? 'envoy-gateway');
      const result = evaluateCluster(snapshot, all, provider);
      process.stdout.write(format === 'json' ? JSON.stringify(result, null, 2) + '\n' : formatVerify(result));
      if (!result.healthy) process.exitCode = 1;
    });

  const lb = deps
    .command('lb')
    .description('give Gateways an address on clusters without a cloud load balancer');
  lb.command('kind')
    .description('the commands to run cloud-provider-kind')
    .action(async () => printAdvice((await load()).kindLoadBalancer()));
  clusterOptions(lb.command('metallb'))
    .description('MetalLB address pool manifests (IPAddressPool + L2Advertisement, or --legacy ConfigMap)')
    .option(
      '--range <range>',
      'addresses to hand out, FIRST-LAST or a CIDR (default: derived from the nodes)',
    )
    .option('--prefix <length>', 'prefix length of the nodes’ network when deriving the range', '24')
    .option('--legacy', 'print the ConfigMap form for MetalLB older than 0.13')
    .action(async (flags: ClusterFlags & { range?: string; prefix: string; legacy?: boolean }) => {
      const { deriveRange, KubeClient, metallbManifests, parseRange } = await load();
      let range: string;
      let origin: string;
      if (flags.range) {
        range = parseRange(flags.range);
        origin = 'given with --range';
      } else {
        const client = await KubeClient.load(flags.kubeconfig, flags.context);
        const nodes = await client.list('/api/v1/nodes');
        const ips = nodes.flatMap((n) =>
          ((n['status'] as { addresses?: { type: string; address: string }[] } | undefined)?.addresses ?? [])
            .filter((a) => a.type === 'InternalIP')
            .map((a) => a.address),
        );
        range = deriveRange(ips, Number(flags.prefix));
        origin = `derived from node address(es) ${ips.join(', ')} with /${flags.prefix}; pass --range if these are taken`;
      }
      const manifests = metallbManifests(range);
      const objects = flags.legacy ? manifests.legacy : manifests.current;
      process.stdout.write(
        [
          '# Install MetalLB first:',
          ...manifests.install.map((c) => `#   ${c}`),
          `# Address range ${range} (${origin}).`,
          `# Then apply this file: llmisvc deps lb metallb ... | kubectl apply -f -`,
          ...(flags.legacy ? ['# Legacy form: MetalLB < 0.13 reads the `config` ConfigMap.'] : []),
        ].join('\n') +
          '\n' +
          objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n'),
      );
    });
  lb.command('port-forward')
    .description('the port-forward command for the gateway Service, and its limits')
    .option('--provider <name>', 'gateway provider', 'envoy-gateway')
    .option('--gateway <namespace/name>', 'the Gateway', 'llmisvc-system/llmisvc-gateway')
    .option('--local-port <port>', 'the local port', '8080')
    .action(async (flags: { provider: string; gateway: string; localPort: string }) => {
      const { parseProvider, portForward } = await load();
      const [namespace, name, ...rest] = flags.gateway.split('/');
      if (!namespace || !name || rest.length) {
        throw new LlmisvcError('LLMISVC_ERR_CONFIG', `--gateway "${flags.gateway}" must be NAMESPACE/NAME`, {
          hint: 'for example --gateway llmisvc-system/llmisvc-gateway',
        });
      }
      printAdvice(portForward(parseProvider(flags.provider), { namespace, name }, Number(flags.localPort)));
    });
}
