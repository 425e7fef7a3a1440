import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { commandWords, lastFlagValues, servedModelPath, shellCommands } from './vllm-flags.js';

/** The words a script's commands hold, all together. */
const words = (script: string) => shellCommands(script).flat();

describe('reading vLLM flags from a container command line', () => {
  it('splits a script as the shell would: quotes, escapes, line continuations, nothing expanded', () => {
    assert.deepEqual(
      words(
        `exec vllm serve /mnt/models \\\n  --served-model-name "a b" 'c  d' e\\ f \\\n  --kv-transfer-config '{"x":1}' "$@"`,
      ),
      [
        'exec',
        'vllm',
        'serve',
        '/mnt/models',
        '--served-model-name',
        'a b',
        'c  d',
        'e f',
        '--kv-transfer-config',
        '{"x":1}',
        '$@',
      ],
    );
    assert.deepEqual(words('"say \\"hi\\"" "\\$HOME" it\'s\''), ['say "hi"', '$HOME', 'its']);
    // As bash: an escaped backslash before a newline in double quotes keeps both; only blanks split words.
    assert.deepEqual(words('"a\\\\\nb"'), ['a\\\nb']);
    assert.deepEqual(words('--port\u00a09000 x\ry'), ['--port\u00a09000', 'x\ry']);
    // Unclosed quotes and a trailing backslash end with the script rather than throwing or inventing text.
    assert.deepEqual(words(`--port "8001`), ['--port', '8001']);
    assert.deepEqual(words('--served-model-name "x\\'), ['--served-model-name', 'x\\']);
    assert.deepEqual(words('a \\'), ['a']);
  });

  it('ends commands at newlines and operators, leaves comments and redirections out', () => {
    assert.deepEqual(
      shellCommands('ray start --port=6379; exec vllm serve /m --port 8001 2>&1 | tee /log # --port 9'),
      [
        ['ray', 'start', '--port=6379'],
        ['exec', 'vllm', 'serve', '/m', '--port', '8001'],
        ['tee', '/log'],
      ],
    );
    assert.deepEqual(
      shellCommands(
        'exec vllm serve /m \\\n  --port 8001 \\\n#  --served-model-name old \\\n  --max-model-len 4096',
      ),
      [
        ['exec', 'vllm', 'serve', '/m', '--port', '8001'],
        ['--max-model-len', '4096'],
      ],
    );
    assert.deepEqual(shellCommands('a#b > out c'), [['a#b', 'c']]);
  });

  it('keeps an expansion one word, whatever it holds, so it is never a value', () => {
    for (const [script, expansion] of [
      ['--served-model-name $(cat /etc/name) --port 1', '$(cat /etc/name)'],
      ['--served-model-name `cat /etc/name` --port 1', '`cat /etc/name`'],
      ['--served-model-name $(( 4096 * 2 )) --port 1', '$(( 4096 * 2 ))'],
      ['--served-model-name ${X:-a b} --port 1', '${X:-a b}'],
      ["--served-model-name $'it\\'s' --port 1", "$'it\\'s'"],
      ['--served-model-name "$(echo "a b")" --port 1', '$(echo "a b")'],
    ] as const) {
      assert.deepEqual(words(script), ['--served-model-name', expansion, '--port', '1'], script);
      assert.deepEqual(lastFlagValues(words(script), '--served-model-name'), [], script);
    }
  });

  it('reads the script of any -c option of a shell, with "$@" where the script puts it and $0 left out', () => {
    assert.deepEqual(
      commandWords({
        command: ['/bin/bash', '-c'],
        args: ['vllm serve /m --port 8001 "$@"', '--', '--served-model-name', 'name with spaces'],
      }),
      ['vllm', 'serve', '/m', '--port', '8001', '--served-model-name', 'name with spaces'],
    );
    // bash: vLLM gets --port 9000 --port 8001 and keeps 8001.
    const late = commandWords({
      command: ['sh', '-ec', 'exec vllm serve /m "$@" --port 8001', 'x', '--port', '9000'],
    });
    assert.equal(lastFlagValues(late, '--port')?.[0], '8001');
    // A script without "$@" is not given its arguments; the item after the script is $0.
    assert.deepEqual(commandWords({ command: ['bash', '-lc', 'vllm serve /m'], args: ['--port', '9'] }), [
      'vllm',
      'serve',
      '/m',
    ]);
    // Only vLLM's command counts: another one's --port is not vLLM's.
    const ray = commandWords({
      command: ['/bin/bash', '-c', 'ray start --port=6379 --block &\nexec vllm serve /m'],
    });
    assert.equal(lastFlagValues(ray, '--port'), undefined);
    // Not a shell: every item is one argument, spaces and all.
    assert.deepEqual(commandWords({ command: ['vllm', 'serve'], args: ['-c', 'a b'] }), [
      'vllm',
      'serve',
      '-c',
      'a b',
    ]);
  });

  it('keeps the last occurrence of a flag, its values up to the next flag, shell text left out', () => {
    const list = [
      '--served-model-name',
      'a',
      'b',
      '--port',
      '1',
      '--served-model-name',
      'c',
      '$@',
      'd',
      '--x',
    ];
    assert.deepEqual(lastFlagValues(list, '--served-model-name'), ['c', 'd']);
    assert.deepEqual(lastFlagValues(['--port=2', '--port', '3'], '--port'), ['3']);
    assert.deepEqual(lastFlagValues(['--port', '3', '--port=4'], '--port'), ['4']);
    assert.deepEqual(lastFlagValues(['--port=$PORT'], '--port'), []);
    assert.equal(lastFlagValues(['--ports', '3'], '--port'), undefined);
  });

  it('finds the model after `vllm serve`, when it is known', () => {
    assert.equal(servedModelPath(['exec', 'vllm', 'serve', '/mnt/models', '--port', '1']), '/mnt/models');
    assert.equal(servedModelPath(['/usr/bin/vllm', 'serve', 'org/m']), 'org/m');
    assert.equal(servedModelPath(['vllm', 'serve', '--port', '1']), undefined);
    assert.equal(servedModelPath(['vllm', 'serve', '$MODEL_DIR']), undefined);
    assert.equal(servedModelPath(['serve', 'x']), undefined);
  });
});
