/**
 * @module render/probe-scheme
 * KServe serves its model servers over TLS, so manifests written for it often probe the `main` container with
 * `scheme: HTTPS`. The presets here start vLLM on plain HTTP (`.GlobalConfig.EnableTLS` is false), and such a probe
 * fails: the pod never becomes Ready, or is restarted. The scheme is the author's to change (their own image may
 * serve TLS), so this names each one instead of rewriting it.
 */
import type { LLMInferenceServiceSpec } from '../api/index.js';

interface Probe {
  httpGet?: { scheme?: string };
}

interface ContainerLike {
  name?: string;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
}

const PROBES = ['livenessProbe', 'readinessProbe', 'startupProbe'] as const;

/** Each HTTPS probe of a `main` container in the effective spec, as `<field path>: <what to do>`. */
export function httpsProbeWarnings(spec: LLMInferenceServiceSpec): string[] {
  const pods: [string, { containers?: unknown[] } | undefined][] = [
    ['spec.template', spec.template],
    ['spec.worker', spec.worker],
    ['spec.prefill.template', spec.prefill?.template],
    ['spec.prefill.worker', spec.prefill?.worker],
  ];
  const warnings: string[] = [];
  for (const [path, pod] of pods) {
    const main = (pod?.containers as ContainerLike[] | undefined)?.find((c) => c.name === 'main');
    for (const probe of PROBES) {
      if (main?.[probe]?.httpGet?.scheme?.toUpperCase() !== 'HTTPS') continue;
      warnings.push(
        `${path}.containers[main].${probe}.httpGet.scheme: HTTPS, but the presets' vLLM serves plain HTTP ` +
          '(.GlobalConfig.EnableTLS is false): this probe will fail unless the image serves TLS itself; drop the scheme',
      );
    }
  }
  return warnings;
}
