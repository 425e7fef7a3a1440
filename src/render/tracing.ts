/**
 * @module render/tracing
 * `spec.tracing` (KServe v0.20): OpenTelemetry settings as the standard `OTEL_*` environment on the `main` container
 * of every model server (leaders, workers, prefill) and of the scheduler (EPP), each with a service name of its own
 * so traces tell the components apart; and vLLM's `--otlp-traces-endpoint` flag. Variables a template already sets
 * are kept: the user's value wins.
 */
import type { Container, LLMInferenceServiceSpec, PodSpec, TracingSpec } from '../api/index.js';
import type { KubeObject } from './workload.js';

export const TRACING_DEFAULTS: Required<TracingSpec> = {
  exporterEndpoint: 'http://otel-collector:4317',
  sampler: 'parentbased_traceidratio',
  samplerArg: '0.05',
  exporter: 'otlp',
};

function settings(tracing: TracingSpec): Required<TracingSpec> {
  return { ...TRACING_DEFAULTS, ...tracing };
}

/** vLLM's tracing flag; only for the OTLP exporter, the only one vLLM speaks. */
export function tracingFlags(tracing: TracingSpec | undefined): string[] {
  if (!tracing) return [];
  const { exporter, exporterEndpoint } = settings(tracing);
  return exporter === 'otlp' ? ['--otlp-traces-endpoint', exporterEndpoint] : [];
}

function withEnv(container: Container, tracing: Required<TracingSpec>, serviceName: string): Container {
  const wanted = [
    { name: 'OTEL_SERVICE_NAME', value: serviceName },
    { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: tracing.exporterEndpoint },
    { name: 'OTEL_TRACES_EXPORTER', value: tracing.exporter },
    { name: 'OTEL_TRACES_SAMPLER', value: tracing.sampler },
    { name: 'OTEL_TRACES_SAMPLER_ARG', value: tracing.samplerArg },
  ];
  const env = container.env ?? [];
  const missing = wanted.filter((w) => !env.some((e) => e.name === w.name));
  return missing.length ? { ...container, env: [...env, ...missing] } : container;
}

function withPodTracing(pod: PodSpec, tracing: Required<TracingSpec>, serviceName: string): PodSpec {
  return {
    ...pod,
    containers: (pod.containers ?? []).map((c) => (c.name === 'main' ? withEnv(c, tracing, serviceName) : c)),
  };
}

type Template = { metadata?: unknown; spec: PodSpec };

function mapTemplate(object: KubeObject, path: string[], map: (template: Template) => Template): KubeObject {
  const [head, ...rest] = path;
  const value = object[head!] as Record<string, unknown>;
  if (rest.length === 0) return { ...object, [head!]: map(value as unknown as Template) };
  return { ...object, [head!]: mapTemplate(value as KubeObject, rest, map) };
}

/**
 * The children with tracing set up in every model server and scheduler pod; unchanged without `spec.tracing`.
 * Service names are the workload names (`<name>-kserve`, `<name>-kserve-prefill`, `<name>-kserve-router-scheduler`;
 * LeaderWorkerSet workers add `-worker`).
 */
export function withTracing(children: readonly KubeObject[], spec: LLMInferenceServiceSpec): KubeObject[] {
  if (!spec.tracing) return [...children];
  const tracing = settings(spec.tracing);
  const traced = (name: string) => (t: Template) => ({ ...t, spec: withPodTracing(t.spec, tracing, name) });
  return children.map((object) => {
    const name = String(object.metadata['name']);
    if (object.kind === 'Deployment') return mapTemplate(object, ['spec', 'template'], traced(name));
    if (object.kind === 'LeaderWorkerSet') {
      const leader = mapTemplate(object, ['spec', 'leaderWorkerTemplate', 'leaderTemplate'], traced(name));
      return mapTemplate(
        leader,
        ['spec', 'leaderWorkerTemplate', 'workerTemplate'],
        traced(`${name}-worker`),
      );
    }
    return object;
  });
}
