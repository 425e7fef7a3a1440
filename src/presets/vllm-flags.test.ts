import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { commandWords, lastFlagValues, servedModelPath, shellWords } from './vllm-flags.js';

describe('reading vLLM flags from a container command line', () => {
  it('splits a script as the shell would: quotes, escapes, line continuations, nothing expanded', () => {
    assert.deepEqual(
      shellWords(
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
    assert.deepEqual(shellWords('"say \\"hi\\"" "\\$HOME" it\'s\''), ['say "hi"', '$HOME', 'its']);
    // Unclosed quotes end with the script rather than throwing: the words are read, not run.
    assert.deepEqual(shellWords(`--port "8001`), ['--port', '8001']);
  });

  it('takes the -c script apart, and every other item as one argument', () => {
    assert.deepEqual(
      commandWords({
        command: ['/bin/bash', '-c'],
        args: ['vllm serve /m --port 8001 "$@"', '--', '--served-model-name', 'name with spaces'],
      }),
      [
        '/bin/bash',
        '-c',
        'vllm',
        'serve',
        '/m',
        '--port',
        '8001',
        '$@',
        '--',
        '--served-model-name',
        'name with spaces',
      ],
    );
  });

  it('keeps the last occurrence of a flag, its values up to the next flag, shell text left out', () => {
    const words = [
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
    assert.deepEqual(lastFlagValues(words, '--served-model-name'), ['c', 'd']);
    assert.deepEqual(lastFlagValues(['--port=2', '--port', '3'], '--port'), ['3']);
    assert.deepEqual(lastFlagValues(['--port', '3', '--port=4'], '--port'), ['4']);
    assert.equal(lastFlagValues(['--ports', '3'], '--port'), undefined);
  });

  it('finds the model after `vllm serve`', () => {
    assert.equal(servedModelPath(['exec', 'vllm', 'serve', '/mnt/models', '--port', '1']), '/mnt/models');
    assert.equal(servedModelPath(['/usr/bin/vllm', 'serve', 'org/m']), 'org/m');
    assert.equal(servedModelPath(['vllm', 'serve', '--port', '1']), undefined);
    assert.equal(servedModelPath(['serve', 'x']), undefined);
  });
});
