/**
 * @module dev/pod-commands
 * What `llmisvc dev cluster --run-pods` runs for a pod's containers, in place of the images no machine here can
 * run: a vLLM container becomes `llmisvc sim` (the vLLM-compatible simulator: no GPU, no model weights) with the
 * served model names and port of the container's own arguments, and the EPP container of this project's image runs
 * its own command line with this checkout's CLI. Every process listens on the pod's IP, as the container would.
 * Other images and commands get no process (and a reason): whoever may create pods is not this machine's user, so
 * nothing of a pod's spec reaches a shell, another subcommand, a path or address of this machine, or the processes'
 * environment (a pod's `env` could set NODE_OPTIONS). Pure.
 */

export interface ContainerSpec {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
}

export interface PodSpecLike {
  metadata: { name: string; namespace?: string };
  spec?: { containers?: ContainerSpec[]; serviceAccountName?: string };
  status?: { podIP?: string };
}

/** One process standing for one container. */
export interface ContainerProcess {
  container: string;
  /** Arguments after `node <cli>` (both are the runner's). */
  cliArgs: string[];
  /** The container talks to the API server (the EPP in Kubernetes mode): it gets the pod's ServiceAccount. */
  needsKubeconfig: boolean;
}

export type ContainerPlan = ContainerProcess | { container: string; skipped: string };

/** vLLM's OpenAI server image, as the presets name it. */
const VLLM_IMAGE = /(^|\/)vllm\/vllm-openai(:|@|$)/;
/** This project's image (the EPP, the controller). */
const LLMISVC_IMAGE = /(^|\/)llmisvc\/llmisvc(:|@|$)/;

/**
 * EPP flags that name files or addresses inside the container: on this machine they would name the host's (its
 * files, its kubeconfig, any address to scrape), and the pod's author is not this machine's user.
 */
const CONTAINER_LOCAL_FLAGS = ['--config-file', '--cert-path', '--kubeconfig', '--endpoints'];

/** The values after a flag, up to the next flag (`--served-model-name a b --port 1` → ['a', 'b']). */
function flagValues(args: readonly string[], flag: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg.startsWith(`${flag}=`)) values.push(arg.slice(flag.length + 1));
    else if (arg === flag) {
      for (let j = i + 1; j < args.length && !args[j]!.startsWith('--'); j++) values.push(args[j]!);
    }
  }
  return values;
}

/**
 * The words of a container's command line, its `/bin/bash -c` script included (the presets put vLLM's flags there
 * or in the arguments): split at white space, line continuations dropped, one level of quotes taken off. Enough to
 * read flags; nothing here is ever run by a shell.
 */
function commandWords(container: ContainerSpec): string[] {
  return [...(container.command ?? []), ...(container.args ?? [])]
    .join(' ')
    .split(/\s+/)
    .filter((w) => w !== '' && w !== '\\')
    .map((w) => w.replace(/^(["'])(.*)\1$/, '$2'));
}

/** The process for each container of a pod (which must have its IP), or why a container gets none. */
export function containerPlans(pod: PodSpecLike): ContainerPlan[] {
  const ip = pod.status?.podIP;
  return (pod.spec?.containers ?? []).map((container): ContainerPlan => {
    const image = container.image ?? '';
    const args = [...(container.args ?? [])];
    if (!ip) return { container: container.name, skipped: 'the pod has no IP yet' };
    if (VLLM_IMAGE.test(image)) {
      const words = commandWords(container);
      const names = flagValues(words, '--served-model-name');
      const served = words[words.indexOf('serve') + 1];
      const model = names[0] ?? (words.includes('serve') && served ? served : 'model');
      // vLLM's parser keeps a flag's last value.
      const port = flagValues(words, '--port').at(-1) ?? '8000';
      const maxModelLen = flagValues(words, '--max-model-len').at(-1);
      return {
        container: container.name,
        cliArgs: [
          'sim',
          '--host',
          ip,
          '--port',
          port,
          '--model',
          model,
          ...(names.length > 1 ? ['--served-model-name', ...names.slice(1)] : []),
          ...(maxModelLen ? ['--max-model-len', maxModelLen] : []),
          '--pod-name',
          pod.metadata.name,
        ],
        needsKubeconfig: false,
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
  });
}
