/**
 * @module cli/autoscaling-flags
 * The autoscaling settings of the renderer as flags, shared by `render` and `controller` (KServe keeps them in the
 * `autoscaling-wva-controller-config` key of its ConfigMap).
 */
import { Option } from 'commander';
import { LlmisvcError } from '../errors/index.js';
import { type AutoscalingOptions, DEFAULT_AUTOSCALING } from '../render/index.js';

export interface AutoscalingFlags {
  prometheusUrl: string;
  prometheusUnsafeSsl: boolean;
  wvaDiscovery: string;
}

const DISCOVERY = ['VariantAutoscaling', 'annotations'] as const;

/** --prometheus-url, --prometheus-unsafe-ssl and --wva-discovery, for `command.addOption`. */
export const AUTOSCALING_FLAGS: readonly [Option, Option, Option] = [
  new Option(
    '--prometheus-url <url>',
    'Prometheus that KEDA queries for wva_desired_replicas (scaling.wva.keda)',
  ).default(DEFAULT_AUTOSCALING.prometheusUrl),
  new Option('--prometheus-unsafe-ssl', 'skip TLS verification of that Prometheus').default(false),
  new Option('--wva-discovery <form>', 'how WVA finds variants: a VariantAutoscaling object, or annotations')
    .choices([...DISCOVERY])
    .default(DEFAULT_AUTOSCALING.wvaDiscovery),
];

/** The renderer's autoscaling options from the flags. */
export function autoscalingOptions(flags: AutoscalingFlags): AutoscalingOptions {
  if (!/^https?:\/\/\S+$/.test(flags.prometheusUrl)) {
    throw new LlmisvcError(
      'LLMISVC_ERR_CONFIG',
      `--prometheus-url must be an http(s) URL, not "${flags.prometheusUrl}"`,
    );
  }
  return {
    prometheusUrl: flags.prometheusUrl,
    prometheusUnsafeSsl: flags.prometheusUnsafeSsl,
    wvaDiscovery: flags.wvaDiscovery as AutoscalingOptions['wvaDiscovery'],
  };
}
