import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkInlinePickerConfig, runsThisEpp } from './service-config.js';

const inlinePickerConfigProblems = (spec: Parameters<typeof checkInlinePickerConfig>[0]) =>
  checkInlinePickerConfig(spec).problems;

const picker = (plugins: unknown[]) => ({
  apiVersion: 'inference.networking.x-k8s.io/v1alpha1',
  kind: 'EndpointPickerConfig',
  plugins,
});
const withScheduler = (scheduler: object) => ({ router: { scheduler } });

test('this EPP runs the config unless the main container runs another command', () => {
  const main = (command?: string[]) =>
    withScheduler({ template: { containers: [{ name: 'main', command }] } });
  assert.equal(runsThisEpp({}), true);
  assert.equal(runsThisEpp(main()), true);
  assert.equal(runsThisEpp(main(['llmisvc', 'epp'])), true);
  assert.equal(runsThisEpp(main(['node', '/app/bin/llmisvc.js', 'epp'])), true);
  assert.equal(runsThisEpp(main(['/usr/local/bin/llmisvc', 'epp', '--v=3'])), true);
  assert.equal(runsThisEpp(main(['/app/epp'])), false);
  assert.equal(runsThisEpp(main(['llmisvc', 'sim'])), false);
  assert.equal(runsThisEpp(main(['not-llmisvc', 'epp'])), false);
  // A sidecar's command says nothing about the picker.
  assert.equal(
    runsThisEpp(withScheduler({ template: { containers: [{ name: 'tokenizer', command: ['/tok'] }] } })),
    true,
  );
});

test('problems carry the path of the inline config in the spec', () => {
  const spec = withScheduler({
    config: { inline: picker([{ type: 'queue-scorer' }, { type: 'no-such-scorer' }]) },
  });
  const problems = inlinePickerConfigProblems(spec);
  assert.equal(problems.length, 1, JSON.stringify(problems));
  assert.equal(problems[0]!.path, 'spec.router.scheduler.config.inline.plugins[1].type');
  assert.match(problems[0]!.message, /no-such-scorer/);
  assert.equal(
    inlinePickerConfigProblems(withScheduler({ config: { inline: 'text' } }))[0]?.path,
    'spec.router.scheduler.config.inline',
  );
});

test('no problems without an inline config, for a valid one, or for another picker', () => {
  assert.deepEqual(inlinePickerConfigProblems(undefined), []);
  assert.deepEqual(inlinePickerConfigProblems(withScheduler({ config: { ref: { name: 'cm' } } })), []);
  assert.deepEqual(
    inlinePickerConfigProblems(withScheduler({ config: { inline: picker([{ type: 'queue-scorer' }]) } })),
    [],
  );
  assert.deepEqual(
    inlinePickerConfigProblems(
      withScheduler({
        config: { inline: picker([{ type: 'no-such-scorer' }]) },
        template: { containers: [{ name: 'main', command: ['/app/epp'] }] },
      }),
    ),
    [],
  );
});
