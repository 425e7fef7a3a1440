// The vLLM command of every shipped preset, run for real with bash and a stand-in `vllm` that records its argv: the
// flags in VLLM_ADDITIONAL_ARGS reach vLLM read as KServe's presets read them (quotes, ${VARIABLES}: KServe's samples
// pass JSON and the pod IP that way), the container's own args pass untouched, and vLLM replaces the shell (exec), so
// it is the process that receives the container's SIGTERM.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { LLMInferenceService } from '../api/index.js';
import { DEFAULT_API_VERSIONS, DEFAULT_RENDER_OPTIONS, type KubeObject, renderService } from './index.js';

type Json = Record<string, unknown>;
interface Container {
  name: string;
  command?: string[];
  args?: string[];
}

const dir = mkdtempSync(join(tmpdir(), 'llmisvc-vllm-command-'));
const bin = join(dir, 'bin');
const work = join(dir, 'work');
mkdirSync(bin);
mkdirSync(work);
// Files a glob in the value would expand to, if the shell globbed it.
writeFileSync(join(work, 'a-file'), '');
const ARGV = join(dir, 'argv');
writeFileSync(join(bin, 'vllm'), `#!/bin/sh\necho $$ > "${ARGV}.pid"\nprintf '%s\\0' "$@" > "${ARGV}"\n`);
writeFileSync(join(bin, 'ray'), '#!/bin/sh\nexit 0\n');
chmodSync(join(bin, 'vllm'), 0o755);
chmodSync(join(bin, 'ray'), 0o755);

function service(spec: LLMInferenceService['spec']): LLMInferenceService {
  return {
    apiVersion: 'serving.kserve.io/v1alpha2',
    kind: 'LLMInferenceService',
    metadata: { name: 'svc', namespace: 'ns' },
    spec: { model: { uri: 'hf://org/m', name: 'org/m' }, ...spec },
  };
}

/** Every pod template of the rendered workloads, with where it sits. */
function podTemplates(object: KubeObject): [string, Json][] {
  const spec = object['spec'] as Json;
  if (object.kind === 'Deployment') return [[object.kind, (spec['template'] as Json)['spec'] as Json]];
  const lws = spec['leaderWorkerTemplate'] as Json;
  return [
    ['LeaderWorkerSet leader', (lws['leaderTemplate'] as Json)['spec'] as Json],
    ['LeaderWorkerSet worker', (lws['workerTemplate'] as Json)['spec'] as Json],
  ];
}

/** The `main` containers that start vLLM, for a spec, as the renderer writes them. */
function vllmContainers(spec: LLMInferenceService['spec']): [string, Container][] {
  const out = renderService({
    service: service(spec),
    configs: [],
    apiVersions: DEFAULT_API_VERSIONS,
    options: DEFAULT_RENDER_OPTIONS,
  });
  return out.children
    .filter(
      (o) =>
        (o.kind === 'Deployment' || o.kind === 'LeaderWorkerSet') &&
        !/scheduler/.test(String(o.metadata.name)),
    )
    .flatMap((o) =>
      podTemplates(o).map(([where, pod]) => [`${where} ${String(o.metadata.name)}`, pod] as const),
    )
    .map(([where, pod]): [string, Container] => [
      where,
      (pod['containers'] as Container[]).find((c) => c.name === 'main')!,
    ])
    .filter(([, c]) => [...(c.command ?? []), ...(c.args ?? [])].join(' ').includes('vllm serve'));
}

/** Runs a container's command as the kubelet would; returns vLLM's argv, and whether vLLM had the shell's pid. */
function run(
  container: Container,
  additional: string | undefined,
  extraEnv: Record<string, string> = {},
): { argv: string[]; exec: boolean } {
  const [file, ...rest] = [...(container.command ?? []), ...(container.args ?? [])];
  const env: NodeJS.ProcessEnv = {
    PATH: `${bin}:/usr/bin:/bin`,
    HOME: '/nonexistent',
    LWS_LEADER_ADDRESS: 'svc-kserve-mn-0.svc-kserve-mn',
    LWS_WORKER_INDEX: '1',
    ...extraEnv,
  };
  if (additional !== undefined) env['VLLM_ADDITIONAL_ARGS'] = additional;
  const result = spawnSync(file!, rest, { cwd: work, env, encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  const argv = readFileSync(ARGV, 'utf8').split('\0').slice(0, -1);
  return { argv, exec: Number(readFileSync(`${ARGV}.pid`, 'utf8')) === result.pid };
}

/** What the container passes on as `"$@"`: everything after the `--` that follows the script. */
function positional(container: Container): string[] {
  const all = [...(container.command ?? []), ...(container.args ?? [])];
  return all.slice(all.indexOf('--', 2) + 1);
}

const topologies: [string, LLMInferenceService['spec']][] = [
  ['single node (with a derived tensor flag)', { parallelism: { tensor: 2 } }],
  ['multi-node data parallel', { worker: {}, parallelism: { data: 4, dataLocal: 2 } }],
  ['multi-node pipeline parallel', { worker: {}, parallelism: { pipeline: 2 } }],
  ['prefill/decode', { prefill: {}, router: { scheduler: {} } }],
  [
    'prefill/decode, both multi-node',
    {
      worker: {},
      parallelism: { data: 2, dataLocal: 1 },
      prefill: { worker: {}, parallelism: { data: 2, dataLocal: 1 } },
      router: { scheduler: {} },
    },
  ],
];

describe('VLLM_ADDITIONAL_ARGS in every preset that starts vLLM', () => {
  for (const [name, spec] of topologies) {
    const containers = vllmContainers(spec);
    it(`${name}: ${containers.length} vLLM container(s)`, () => {
      assert.ok(containers.length > 0);
      for (const [where, container] of containers) {
        const own = positional(container);
        const plain = run(container, undefined);
        assert.equal(plain.argv[0], 'serve', where);
        assert.ok(plain.exec, `${where}: vLLM must replace the shell (exec) to receive SIGTERM`);
        assert.deepEqual(plain.argv.slice(plain.argv.length - own.length), own, where);
        assert.ok(!plain.argv.includes(''), `${where}: an unset VLLM_ADDITIONAL_ARGS adds no empty argument`);

        // The audit's repro: the flags land before the container's own args (as in KServe), which come last.
        const extra = run(container, '--enforce-eager  --max-model-len 4096');
        assert.deepEqual(
          extra.argv.slice(plain.argv.length - own.length),
          ['--enforce-eager', '--max-model-len', '4096', ...own],
          where,
        );
      }
    });
  }

  it("reads the value as KServe's presets do (quotes, variables), and the container's own args not at all", () => {
    for (const [where, container] of [
      ...vllmContainers({}),
      ...vllmContainers({ prefill: {}, router: { scheduler: {} } }),
    ]) {
      // KServe's samples: JSON in single quotes (read literally, as the shell reads it in KServe's presets too), a
      // variable in double quotes (expanded from the pod's environment).
      const value = `--enforce-eager --kv-transfer-config '{"kv_role":"kv_both"}' --kv-events-config "{\\"topic\\":\\"kv@\${POD_IP}@m\\"}"`;
      const own = positional(container);
      // Arguments of the container's own that a second reading by the shell would change.
      const hostile = { ...container, args: [...(container.args ?? []), '$(touch pwned)', "it's", '*'] };
      const { argv } = run(hostile, value, { POD_IP: '10.1.2.3' });
      assert.deepEqual(
        argv.slice(argv.length - own.length - 8),
        [
          '--enforce-eager',
          '--kv-transfer-config',
          '{"kv_role":"kv_both"}',
          '--kv-events-config',
          '{"topic":"kv@10.1.2.3@m"}',
          ...own,
          '$(touch pwned)',
          "it's",
          '*',
        ],
        where,
      );
      assert.ok(!existsSync(join(work, 'pwned')), where);
    }
  });
});
