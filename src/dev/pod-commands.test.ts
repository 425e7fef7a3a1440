import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { containerPlans, type ContainerSpec } from './pod-commands.js';

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

  it('a vLLM container without names serves the model of its command line, on 8000', () => {
    const [plan] = containerPlans(
      pod([
        { name: 'main', image: 'docker.io/vllm/vllm-openai@sha256:abc', command: ['vllm serve /mnt/models'] },
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
});
