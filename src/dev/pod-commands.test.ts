import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { containerPlans, goFlags, type ContainerSpec } from './pod-commands.js';

const pod = (containers: ContainerSpec[]) => ({
  metadata: { name: 'q-0', namespace: 'serving' },
  spec: { containers },
  status: { podIP: '127.1.3.4' },
});

describe('what --run-pods runs for a container', () => {
  it('a vLLM container: the simulator on the pod IP, with its served model names, port and length', () => {
    const [plan] = containerPlans(
      pod([
        {
          name: 'main',
          image: 'vllm/vllm-openai:v0.11.0',
          // The presets' form: the model path in the command, the names in the arguments.
          command: ['/bin/bash', '-c', 'exec vllm serve /mnt/models "$@"', '--'],
          args: ['--served-model-name', 'Qwen/Qwen2.5', 'qwen', '--port=8001', '--max-model-len', '4096'],
        },
      ]),
    );
    assert.deepEqual(plan, {
      container: 'main',
      cliArgs: [
        'sim',
        '--host',
        '127.1.3.4',
        '--port',
        '8001',
        '--model',
        'Qwen/Qwen2.5',
        '--served-model-name',
        'qwen',
        '--max-model-len',
        '4096',
        '--pod-name',
        'q-0',
      ],
      needsKubeconfig: false,
      modelServer: '127.1.3.4:8001',
    });
  });

  it('a vLLM container whose flags are in its script (the P/D presets): the simulator on the script’s port', () => {
    const [plan] = containerPlans(
      pod([
        {
          name: 'main',
          image: 'vllm/vllm-openai:v0.11.0',
          command: ['/bin/bash', '-c'],
          args: [
            'eval "set -- ${VLLM_ADDITIONAL_ARGS:-} \\"\\$@\\""\nexec vllm serve /mnt/models \\\n  --served-model-name "meta-llama/Llama-3.1-70B-Instruct" \\\n  --port 8001 \\\n  --disable-uvicorn-access-log "$@"',
            '--',
            '--tensor-parallel-size',
            '4',
          ],
        },
      ]),
    );
    assert.ok(plan && 'cliArgs' in plan, JSON.stringify(plan));
    assert.deepEqual(plan.cliArgs.slice(0, 7), [
      'sim',
      '--host',
      '127.1.3.4',
      '--port',
      '8001',
      '--model',
      'meta-llama/Llama-3.1-70B-Instruct',
    ]);
  });

  it('another vLLM build (KServe’s CPU samples) runs the presets’ `vllm serve` script, or the server module', () => {
    const [script, module] = containerPlans(
      pod([
        {
          name: 'main',
          image: 'public.ecr.aws/q9t5s3a7/vllm-cpu-release-repo:v0.19.0',
          command: ['/bin/bash', '-c'],
          args: [
            'exec vllm serve /mnt/models --served-model-name "facebook/opt-125m" --port 8000 "$@"',
            '--',
          ],
        },
        {
          name: 'other',
          image: 'registry.example/rocm/vllm:1',
          command: ['python3', '-m', 'vllm.entrypoints.openai.api_server'],
          args: ['--model', '/mnt/models', '--port=8002'],
        },
      ]),
    );
    assert.ok(script && 'cliArgs' in script, JSON.stringify(script));
    assert.deepEqual(script.cliArgs.slice(4, 7), ['8000', '--model', 'facebook/opt-125m']);
    assert.ok(module && 'cliArgs' in module, JSON.stringify(module));
    assert.deepEqual(module.cliArgs.slice(4, 7), ['8002', '--model', '/mnt/models']);
    // vLLM's image running something else (a pipeline-parallel worker's Ray node) serves nothing.
    const ray = containerPlans(
      pod([
        {
          name: 'main',
          image: 'vllm/vllm-openai:v0.11.0',
          command: ['/bin/bash', '-c'],
          args: ['exec ray start --address="${LWS_LEADER_ADDRESS}:6379" --disable-usage-stats --block'],
        },
      ]),
    )[0]!;
    assert.ok('skipped' in ray, JSON.stringify(ray));
    // Saying "serve" is not enough: it must be vLLM that serves.
    assert.ok(
      'skipped' in containerPlans(pod([{ name: 'x', image: 'nginx', command: ['nginx', 'serve'] }]))[0]!,
    );
  });

  it('arguments the OS would refuse to run, or that are no port, get no process (and say why)', () => {
    const vllm = (args: string[]) =>
      containerPlans(pod([{ name: 'main', image: 'vllm/vllm-openai:v0.11.0', args }]))[0]!;
    // spawn fails with E2BIG past 128 KiB per argument, and on a NUL: one pod must not stop the runner's round.
    assert.match(JSON.stringify(vllm(['--served-model-name', 'x'.repeat(200_000)])), /over 65536 bytes/);
    assert.match(JSON.stringify(vllm(['--served-model-name', 'a\u0000b'])), /control character/);
    assert.match(JSON.stringify(vllm(['--port', '8001;'])), /is not a port/);
    assert.match(JSON.stringify(vllm(['--port', '0x1F41'])), /is not a port/);
    // An EPP's --config-text is YAML: line breaks are fine.
    const epp = containerPlans(
      pod([
        {
          name: 'main',
          image: 'ghcr.io/llmisvc/llmisvc:0.1.0',
          command: ['llmisvc', 'epp'],
          args: ['--config-text', 'apiVersion: x\nkind: EndpointPickerConfig\n\tplugins: []\n'],
        },
      ]),
    )[0]!;
    assert.ok('cliArgs' in epp, JSON.stringify(epp));
  });

  it('a headless vLLM (a LeaderWorkerSet worker’s data-parallel ranks) serves no API: nothing to run', () => {
    const [plan] = containerPlans(
      pod([
        {
          name: 'main',
          image: 'vllm/vllm-openai:v0.11.0',
          command: ['/bin/bash', '-c'],
          args: [
            'exec vllm serve /mnt/models \\\n  --port 8000 \\\n  --data-parallel-start-rank 2 \\\n  --headless "$@"',
          ],
        },
      ]),
    );
    assert.deepEqual(plan, {
      container: 'main',
      skipped: 'a --headless vLLM serves no API: its group leader answers',
    });
  });

  it('a vLLM container without names serves the model of its command line, on 8000', () => {
    const [plan] = containerPlans(
      pod([
        {
          name: 'main',
          image: 'docker.io/vllm/vllm-openai@sha256:abc',
          command: ['vllm', 'serve', '/mnt/models'],
        },
      ]),
    );
    assert.ok(plan && 'cliArgs' in plan);
    assert.deepEqual(plan.cliArgs.slice(0, 7), [
      'sim',
      '--host',
      '127.1.3.4',
      '--port',
      '8000',
      '--model',
      '/mnt/models',
    ]);
  });

  it('this project’s EPP: its own command line on the pod IP, and it needs the pod’s ServiceAccount', () => {
    const [plan] = containerPlans(
      pod([
        {
          name: 'main',
          image: 'ghcr.io/llmisvc/llmisvc:0.1.0',
          command: ['llmisvc', 'epp'],
          args: ['--pool-name', 'p', '--grpc-port', '9002'],
        },
      ]),
    );
    assert.deepEqual(plan, {
      container: 'main',
      cliArgs: ['epp', '--pool-name', 'p', '--grpc-port', '9002', '--host', '127.1.3.4'],
      needsKubeconfig: true,
    });
  });

  it('anything else runs nowhere, and says why', () => {
    assert.deepEqual(containerPlans(pod([{ name: 'web', image: 'nginx:1.27' }])), [
      { container: 'web', skipped: 'no stand-in for image nginx:1.27' },
    ]);
    assert.deepEqual(
      containerPlans(
        pod([{ name: 'x', image: 'ghcr.io/llmisvc/llmisvc:0.1.0', command: ['sh', '-c', 'rm -rf /'] }]),
      ),
      [{ container: 'x', skipped: 'command ["sh","-c","rm -rf /"] is not llmisvc\'s' }],
    );
    const unplaced = { ...pod([{ name: 'main', image: 'vllm/vllm-openai:v1' }]), status: {} };
    assert.deepEqual(containerPlans(unplaced), [{ container: 'main', skipped: 'the pod has no IP yet' }]);
    // Of this project's image only the EPP, and none of its flags that would name this machine's files or addresses.
    const llmisvc = (command: string[], args: string[] = []) =>
      containerPlans(pod([{ name: 'x', image: 'ghcr.io/llmisvc/llmisvc:0.1.0', command, args }]))[0]!;
    assert.deepEqual(llmisvc(['llmisvc', 'dev', 'cluster'], ['--dir', '/']), {
      container: 'x',
      skipped: 'only the EPP is run here, not llmisvc dev',
    });
    for (const flag of ['--config-file=/etc/shadow', '--cert-path', '--kubeconfig', '--endpoints']) {
      const plan = llmisvc(['llmisvc', 'epp'], ['--pool-name', 'p', flag, '/root']);
      assert.ok('skipped' in plan && plan.skipped.startsWith(flag.split('=')[0]!), JSON.stringify(plan));
    }
    // A look-alike repository is not vLLM's.
    assert.ok('skipped' in containerPlans(pod([{ name: 'm', image: 'evil/vllm-openai-x:1' }]))[0]!);
  });

  it('llm-d’s routing sidecar (a native sidecar): served on the pod IP in front of the pod’s vLLM', () => {
    // The decode preset's sidecar, and an init container that is not a sidecar (it ran before: nothing to play).
    const decodePod = {
      ...pod([{ name: 'main', image: 'vllm/vllm-openai:v0.11.0', args: ['--port', '8001'] }]),
      spec: {
        initContainers: [
          { name: 'storage-initializer', image: 'kserve/storage-initializer:v0.15.2' },
          {
            name: 'llm-d-routing-sidecar',
            image: 'ghcr.io/llm-d/llm-d-routing-sidecar:v0.3.0',
            restartPolicy: 'Always',
            args: ['--port=8000', '--vllm-port=8001', '--connector=nixlv2', '--secure-proxy=false'],
          },
        ],
        containers: [{ name: 'main', image: 'vllm/vllm-openai:v0.11.0', args: ['--port', '8001'] }],
      },
    };
    const plans = containerPlans(decodePod);
    assert.deepEqual(plans[0], {
      container: 'llm-d-routing-sidecar',
      routingSidecar: { host: '127.1.3.4', port: 8000, decoder: '127.1.3.4:8001' },
    });
    assert.equal(plans.length, 2);
    const sidecar = (args: string[]) =>
      containerPlans({
        ...decodePod,
        spec: {
          initContainers: [
            { name: 's', image: 'ghcr.io/llm-d/llm-d-routing-sidecar:v0.3.0', restartPolicy: 'Always', args },
          ],
        },
      })[0]!;
    // Its defaults: a TLS listener (which the stand-in does not speak), ports 8000 and 8001.
    assert.match(JSON.stringify(sidecar([])), /--secure-proxy: the stand-in speaks plain HTTP only/);
    assert.deepEqual(sidecar(['-secure-proxy=false', '-port', '9000']), {
      container: 's',
      routingSidecar: { host: '127.1.3.4', port: 9000, decoder: '127.1.3.4:8001' },
    });
    for (const [args, reason] of [
      [['--secure-proxy=false', '--connector=lmcache'], /NIXL v2/],
      [['--secure-proxy=false', '--decoder-use-tls'], /--decoder-use-tls/],
      [['--secure-proxy=false', '--vllm-port=99999'], /not port numbers/],
    ] as const) {
      const plan = sidecar([...args]);
      assert.ok('skipped' in plan && reason.test(plan.skipped), JSON.stringify(plan));
    }
  });

  it('reads a Go program’s flags as Go’s flag package does', () => {
    assert.deepEqual(
      [
        ...goFlags(
          ['--port=8000', '-vllm-port', '8001', '--secure-proxy', '-v=4', 'extra', '--port=1'],
          new Set(['secure-proxy']),
        ),
      ],
      [
        ['port', '8000'],
        ['vllm-port', '8001'],
        ['secure-proxy', 'true'],
        ['v', '4'],
      ],
    );
  });
});
