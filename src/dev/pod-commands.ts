/**
 * @module dev/pod-commands
 * What `llmisvc dev cluster --run-pods` runs for a pod's containers, in place of the images no machine here can
 * run: a vLLM container (vLLM's image, or any whose command line runs `vllm serve`) becomes `llmisvc sim` (the
 * vLLM-compatible simulator: no GPU, no model weights) with the served model names and port of its own arguments,
 * the EPP container of this project's image runs its own command line with this checkout's CLI, and llm-d's routing
 * sidecar (a native sidecar: an init container that keeps running) is played in the dev cluster's process
 * (dev/routing-sidecar). Every process listens on the pod's IP, as the container would.
 * Other images and commands get no process (and a reason): whoever may create pods is not this machine's user, so
 * nothing of a pod's spec reaches a shell, another subcommand, a path or address of this machine, or the processes'
 * environment (a pod's `env` could set NODE_OPTIONS). Pure.
 */
import { commandWords, lastFlagValues, runsVllmServer, servedModelPath } from '../presets/index.js';
import { hostPort } from '../transport/index.js';

export interface ContainerSpec {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  /** `Always` on an init container makes it a native sidecar: it runs beside the containers. */
  restartPolicy?: string;
}

export interface PodSpecLike {
  metadata: { name: string; namespace?: string };
  spec?: { containers?: ContainerSpec[]; initContainers?: ContainerSpec[]; serviceAccountName?: string };
  status?: { podIP?: string };
}

/** One process standing for one container. */
export interface ContainerProcess {
  container: string;
  /** Arguments after `node <cli>` (both are the runner's). */
  cliArgs: string[];
  /** The container talks to the API server (the EPP in Kubernetes mode): it gets the pod's ServiceAccount. */
  needsKubeconfig: boolean;
  /** A model server's `ip:port` (the simulators): where a routing sidecar of the namespace may send prefills. */
  modelServer?: string;
}

/** llm-d's routing sidecar, played in the dev cluster's process on the pod's IP. */
export interface RoutingSidecarPlan {
  container: string;
  routingSidecar: { host: string; port: number; decoder: string };
}

export type ContainerPlan = ContainerProcess | RoutingSidecarPlan | { container: string; skipped: string };

/** vLLM's OpenAI server image, whose entrypoint is the server (its arguments are the flags). */
const VLLM_IMAGE = /(^|\/)vllm\/vllm-openai(:|@|$)/;
/**
 * Whether a container runs vLLM's OpenAI server: vLLM's image, or any image whose command line runs `vllm serve` or
 * the server module — KServe's own samples use vLLM's CPU, ROCm and vendor builds under other names, with the
 * presets' `vllm serve` script. Nothing of the container is run: only its flags are read.
 */
function isVllmContainer(container: ContainerSpec, words: readonly string[]): boolean {
  if (runsVllmServer(words)) return true;
  // vLLM's image runs the server when its entrypoint is kept; a command of its own (a pipeline-parallel worker's
  // `ray start`) runs something else.
  return VLLM_IMAGE.test(container.image ?? '') && (container.command ?? []).length === 0;
}
/** This project's image (the EPP, the controller). */
const LLMISVC_IMAGE = /(^|\/)llmisvc\/llmisvc(:|@|$)/;
/** llm-d's P/D routing sidecar, as the decode preset names it. */
const ROUTING_SIDECAR_IMAGE = /(^|\/)llm-d\/llm-d-routing-sidecar(:|@|$)/;
/** The routing sidecar's boolean flags (Go's `flag`: `-name`, `-name=false`; never a separate value). */
const SIDECAR_BOOLEAN_FLAGS = new Set([
  'secure-proxy',
  'prefiller-use-tls',
  'decoder-use-tls',
  'prefiller-tls-insecure-skip-verify',
  'decoder-tls-insecure-skip-verify',
  'enable-ssrf-protection',
]);

/**
 * EPP flags that name files or addresses inside the container: on this machine they would name the host's (its
 * files, its kubeconfig, any address to scrape), and the pod's author is not this machine's user.
 */
const CONTAINER_LOCAL_FLAGS = ['--config-file', '--cert-path', '--kubeconfig', '--endpoints'];

/**
 * A Go program's flags (`-name value`, `--name=value`; the boolean ones take no separate value), the last value of
 * each, up to the first argument that is not a flag.
 * @example goFlags(['--port=8000', '-vllm-port', '8001', '--secure-proxy'], new Set(['secure-proxy']))
 *   // → Map { port → '8000', vllm-port → '8001', secure-proxy → 'true' }
 */
export function goFlags(args: readonly string[], booleans: ReadonlySet<string>): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const match = /^--?([^-=][^=]*)(?:=(.*))?$/s.exec(args[i]!);
    if (!match) break;
    const name = match[1]!;
    if (match[2] !== undefined) flags.set(name, match[2]);
    else if (booleans.has(name)) flags.set(name, 'true');
    else if (i + 1 < args.length) flags.set(name, args[++i]!);
  }
  return flags;
}

/** A TCP port number from a flag's text, or undefined. */
function portOf(text: string): number | undefined {
  return /^\d{1,5}$/.test(text) && Number(text) >= 1 && Number(text) <= 65535 ? Number(text) : undefined;
}

/** The routing sidecar's plan: its listening port and the local vLLM's, on the pod's IP; or why it is not played. */
function routingSidecarPlan(container: ContainerSpec, ip: string): ContainerPlan {
  const flags = goFlags(
    [...(container.command ?? []).slice(1), ...(container.args ?? [])],
    SIDECAR_BOOLEAN_FLAGS,
  );
  const skipped = (why: string) => ({ container: container.name, skipped: why });
  const connector = flags.get('connector') ?? 'nixlv2';
  if (connector !== 'nixlv2')
    return skipped(`--connector=${connector}: the stand-in speaks NIXL v2 (nixlv2) only`);
  // The sidecar's default is a TLS listener with a self-signed certificate; the presets turn it off.
  for (const [flag, fallback] of [
    ['secure-proxy', 'true'],
    ['prefiller-use-tls', 'false'],
    ['decoder-use-tls', 'false'],
  ] as const) {
    if ((flags.get(flag) ?? fallback) !== 'false')
      return skipped(`--${flag}: the stand-in speaks plain HTTP only (set --${flag}=false)`);
  }
  const port = portOf(flags.get('port') ?? '8000');
  const decoderPort = portOf(flags.get('vllm-port') ?? '8001');
  if (port === undefined || decoderPort === undefined)
    return skipped(`--port ${flags.get('port')} / --vllm-port ${flags.get('vllm-port')}: not port numbers`);
  return {
    container: container.name,
    routingSidecar: { host: ip, port, decoder: hostPort(ip, decoderPort) },
  };
}

/** The process for each container of a pod (which must have its IP), or why a container gets none. */
export function containerPlans(pod: PodSpecLike): ContainerPlan[] {
  const ip = pod.status?.podIP;
  // Native sidecars run beside the containers; other init containers ran to completion before them (KWOK's pod is
  // Running already), so there is nothing of theirs to stand in for.
  const sidecars = (pod.spec?.initContainers ?? []).filter((c) => c.restartPolicy === 'Always');
  return [...sidecars, ...(pod.spec?.containers ?? [])].map((container) =>
    withinBounds(planFor(container, pod, ip)),
  );
}

/**
 * A plan whose arguments the OS will take: none over `MAX_ARG_BYTES` (spawn fails with E2BIG past 128 KiB), all
 * together under `MAX_ARGS_BYTES`, no NUL or other control character but tab and line breaks (an EPP's
 * `--config-text` is YAML).
 */
function withinBounds(plan: ContainerPlan): ContainerPlan {
  if (!('cliArgs' in plan)) return plan;
  const sizes = plan.cliArgs.map((a) => Buffer.byteLength(a));
  if (sizes.some((n) => n > MAX_ARG_BYTES) || sizes.reduce((a, b) => a + b, 0) > MAX_ARGS_BYTES)
    return {
      container: plan.container,
      skipped: `its arguments are over ${MAX_ARG_BYTES} bytes or ${MAX_ARGS_BYTES} in all`,
    };
  if (plan.cliArgs.some((a) => CONTROL_CHARACTER.test(a)))
    return { container: plan.container, skipped: 'an argument holds a control character' };
  return plan;
}

const MAX_ARG_BYTES = 64 * 1024;
const MAX_ARGS_BYTES = 1024 * 1024;
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const CONTROL_CHARACTER = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

/** The plan for one container of a pod on `ip` (undefined: the pod has none yet). */
function planFor(container: ContainerSpec, pod: PodSpecLike, ip: string | undefined): ContainerPlan {
  const image = container.image ?? '';
  const args = [...(container.args ?? [])];
  if (!ip) return { container: container.name, skipped: 'the pod has no IP yet' };
  if (ROUTING_SIDECAR_IMAGE.test(image)) return routingSidecarPlan(container, ip);
  const words = commandWords(container);
  if (isVllmContainer(container, words)) {
    // A LeaderWorkerSet worker's data-parallel ranks: engine cores that serve no API (the group's leader does).
    if (words.includes('--headless'))
      return {
        container: container.name,
        skipped: 'a --headless vLLM serves no API: its group leader answers',
      };
    const names = lastFlagValues(words, '--served-model-name') ?? [];
    const model = names[0] ?? servedModelPath(words) ?? lastFlagValues(words, '--model')?.[0] ?? 'model';
    const portText = lastFlagValues(words, '--port')?.[0] ?? '8000';
    const port = portOf(portText);
    if (port === undefined)
      return {
        container: container.name,
        skipped: `--port ${JSON.stringify(portText.slice(0, 40))} is not a port`,
      };
    const maxModelLen = lastFlagValues(words, '--max-model-len')?.[0];
    return {
      container: container.name,
      cliArgs: [
        'sim',
        '--host',
        ip,
        '--port',
        String(port),
        '--model',
        model,
        ...(names.length > 1 ? ['--served-model-name', ...names.slice(1)] : []),
        ...(maxModelLen ? ['--max-model-len', maxModelLen] : []),
        '--pod-name',
        pod.metadata.name,
      ],
      needsKubeconfig: false,
      modelServer: hostPort(ip, port),
    };
  }
  if (LLMISVC_IMAGE.test(image)) {
    const command = container.command ?? [];
    if (command[0] !== 'llmisvc') {
      return { container: container.name, skipped: `command ${JSON.stringify(command)} is not llmisvc's` };
    }
    const line = [...command.slice(1), ...args];
    if (line[0] !== 'epp') {
      return {
        container: container.name,
        skipped: `only the EPP is run here, not llmisvc ${line[0] ?? ''}`,
      };
    }
    const local = line.find((a) => CONTAINER_LOCAL_FLAGS.some((f) => a === f || a.startsWith(`${f}=`)));
    if (local) {
      return {
        container: container.name,
        skipped: `${local.split('=')[0]} names a file or address of the container's, not of this machine`,
      };
    }
    return {
      container: container.name,
      // Last, so that it wins over a --host of the pod's (commander keeps an option's last value).
      cliArgs: [...line, '--host', ip],
      needsKubeconfig: true,
    };
  }
  return { container: container.name, skipped: `no stand-in for image ${image || '(none)'}` };
}
