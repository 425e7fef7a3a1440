/**
 * @module local/fleets
 * Routing setups for `llmisvc bench --compare`: each starts the same simulated fleet with `startLocalStack` and a
 * different way of choosing endpoints, so the benchmark sees identical model servers and traffic and only routing
 * differs. `round-robin` is what a plain Kubernetes Service gives (no EPP); `epp` is the service's own
 * EndpointPickerConfig (the default one for the quickstart); `prefix-heavy` weights prefix affinity over load;
 * `name=FILE` runs any EndpointPickerConfig file.
 */
import { readFileSync } from 'node:fs';
import { LlmisvcError } from '../errors/index.js';
import { weightedEndpointPickerConfig } from '../epp/index.js';
import { DEFAULT_RENDER_OPTIONS, parseApiVersions, renderService } from '../render/index.js';
import { DEFAULT_SERVICE_FILE, readServiceFile, startLocalStack, type LocalStackOptions } from './stack.js';
import { localTopology } from './topology.js';

/** Prefix-cache affinity first, load second: queue 1, KV-cache 1, prefix 5, active requests 1. */
export const prefixHeavyEndpointPickerConfig = weightedEndpointPickerConfig({
  queue: 1,
  kvCache: 1,
  prefix: 5,
  activeRequests: 1,
});

export interface RoutingSetup {
  name: string;
  routing: 'epp' | 'round-robin';
  /** Replaces the service's EndpointPickerConfig; undefined = the service's own. */
  eppConfigText: string | undefined;
}

export const BUILTIN_SETUPS = ['round-robin', 'epp', 'prefix-heavy'] as const;

/**
 * Parses `--compare`: `round-robin,epp,prefix-heavy,mine=./config.yaml`.
 * @example parseRoutingSetups('round-robin,epp').map((s) => s.name) // → ['round-robin', 'epp']
 */
export function parseRoutingSetups(
  text: string,
  readFile = (p: string) => readFileSync(p, 'utf8'),
): RoutingSetup[] {
  const setups = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((item): RoutingSetup => {
      if (item === 'round-robin') return { name: item, routing: 'round-robin', eppConfigText: undefined };
      if (item === 'epp') return { name: item, routing: 'epp', eppConfigText: undefined };
      if (item === 'prefix-heavy')
        return { name: item, routing: 'epp', eppConfigText: prefixHeavyEndpointPickerConfig };
      const m = /^([A-Za-z0-9_.-]+)=(.+)$/.exec(item);
      if (!m) {
        throw new LlmisvcError('LLMISVC_ERR_CONFIG', `--compare: unknown setup "${item}"`, {
          hint: `Use ${BUILTIN_SETUPS.join(', ')} or name=path/to/EndpointPickerConfig.yaml.`,
        });
      }
      let config: string;
      try {
        config = readFile(m[2]!);
      } catch (error) {
        throw new LlmisvcError(
          'LLMISVC_ERR_INPUT',
          `--compare ${item}: cannot read ${m[2]}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
        );
      }
      return { name: m[1]!, routing: 'epp', eppConfigText: config };
    });
  if (setups.length === 0)
    throw new LlmisvcError('LLMISVC_ERR_CONFIG', '--compare needs at least one setup', {
      hint: `For example --compare ${BUILTIN_SETUPS.join(',')}.`,
    });
  const names = new Set<string>();
  for (const s of setups) {
    if (names.has(s.name))
      throw new LlmisvcError('LLMISVC_ERR_CONFIG', `--compare: "${s.name}" is listed twice`);
    names.add(s.name);
  }
  return setups;
}

/** A bench target (`{ name, start() }`) that runs the fleet with one routing setup on ephemeral ports. */
export function fleetTarget(
  setup: RoutingSetup,
  fleet: Omit<LocalStackOptions, 'routing' | 'eppConfigText' | 'port' | 'gateway'>,
): { name: string; start(): Promise<{ url: string; stop(): Promise<void> }> } {
  return {
    name: setup.name,
    async start() {
      const stack = await startLocalStack({
        ...fleet,
        port: 0,
        gateway: 'builtin',
        routing: setup.routing,
        eppConfigText: setup.eppConfigText,
      });
      return { url: stack.baseUrl, stop: () => stack.stop() };
    },
  };
}

/** The model a fleet of this service file serves (without starting it). */
export function fleetModel(file: string | undefined): string {
  const { service, configs } = readServiceFile(file ?? DEFAULT_SERVICE_FILE);
  return localTopology(
    renderService({
      service,
      configs,
      apiVersions: parseApiVersions(undefined),
      options: DEFAULT_RENDER_OPTIONS,
    }),
  ).model;
}
