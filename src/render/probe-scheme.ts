/**
 * @module render/probe-scheme
 * KServe serves its model servers over TLS, so manifests written for it probe the `main` container with
 * `scheme: HTTPS` (12 of KServe's 30 llmisvc samples do). The presets here start vLLM on plain HTTP
 * (`.GlobalConfig.EnableTLS` is false), where such a probe fails: the pod never becomes Ready, or is restarted.
 *
 * Where the container is known to serve plain HTTP — it runs vLLM's server without `--ssl-certfile` — the probe is
 * written with HTTP, so those manifests work unchanged. Anything else (an image of the author's own, a vLLM given a
 * certificate) keeps its scheme: an image that does not run vLLM visibly may serve TLS itself, so an HTTPS probe
 * there is only named, as a warning.
 */
import type { LLMInferenceServiceSpec } from '../api/index.js';
import { commandWords, lastFlagValues, runsVllmServer } from '../presets/index.js';

interface Probe {
  httpGet?: { scheme?: string };
}

interface ContainerLike {
  name?: string;
  command?: string[];
  args?: string[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
}

type PodLike = { containers?: unknown[] } | undefined;

const PROBES = ['livenessProbe', 'readinessProbe', 'startupProbe'] as const;

/** The pods of a spec that run model servers, by field path. */
function modelServerPods(spec: LLMInferenceServiceSpec): [string, PodLike][] {
  return [
    ['spec.template', spec.template],
    ['spec.worker', spec.worker],
    ['spec.prefill.template', spec.prefill?.template],
    ['spec.prefill.worker', spec.prefill?.worker],
  ];
}

function mainOf(pod: PodLike): ContainerLike | undefined {
  return (pod?.containers as ContainerLike[] | undefined)?.find((c) => c.name === 'main');
}

function isHttps(probe: Probe | undefined): boolean {
  return probe?.httpGet?.scheme?.toUpperCase() === 'HTTPS';
}

/** Whether the container runs vLLM's OpenAI server, and without a certificate: plain HTTP. */
function servesPlainVllm(container: ContainerLike): boolean {
  const words = commandWords(container);
  return runsVllmServer(words) && lastFlagValues(words, '--ssl-certfile') === undefined;
}

/** Whether the container runs vLLM's server without a certificate and probes it with HTTPS somewhere. */
function probesPlainVllmWithHttps(container: ContainerLike | undefined): container is ContainerLike {
  return container !== undefined && PROBES.some((p) => isHttps(container[p])) && servesPlainVllm(container);
}

/** `spec` with the HTTPS probes of each plain-HTTP vLLM `main` container written with HTTP (`spec` if none). */
export function withPlainHttpProbes(spec: LLMInferenceServiceSpec): LLMInferenceServiceSpec {
  if (!modelServerPods(spec).some(([, pod]) => probesPlainVllmWithHttps(mainOf(pod)))) return spec;
  // A JSON copy, not structuredClone: a probe or container shared by two pods (a YAML alias) becomes two, so a
  // certificate-holding vLLM does not lose the scheme of a probe it shares with a plain one.
  const copy = JSON.parse(JSON.stringify(spec)) as LLMInferenceServiceSpec;
  for (const [, pod] of modelServerPods(copy)) {
    const main = mainOf(pod);
    if (!probesPlainVllmWithHttps(main)) continue;
    for (const p of PROBES) if (isHttps(main[p])) main[p]!.httpGet!.scheme = 'HTTP';
  }
  return copy;
}

/**
 * Each HTTPS probe left on a `main` container that does not visibly run vLLM (the image may serve TLS itself, or
 * not), as `<field path>: <what to do>`. A vLLM with `--ssl-certfile` serves TLS: its HTTPS probes are right.
 */
export function httpsProbeWarnings(spec: LLMInferenceServiceSpec): string[] {
  const warnings: string[] = [];
  for (const [path, pod] of modelServerPods(spec)) {
    const main = mainOf(pod);
    if (!main || runsVllmServer(commandWords(main))) continue;
    for (const probe of PROBES) {
      if (!isHttps(main[probe])) continue;
      warnings.push(
        `${path}.containers[main].${probe}.httpGet.scheme: HTTPS, but the model servers here serve plain HTTP ` +
          '(.GlobalConfig.EnableTLS is false): this probe will fail unless the image serves TLS itself; drop the scheme',
      );
    }
  }
  return warnings;
}
