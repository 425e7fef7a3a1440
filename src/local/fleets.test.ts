import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isLlmisvcError } from '../errors/index.js';
import { parseRoutingSetups, prefixHeavyEndpointPickerConfig } from './fleets.js';

describe('parseRoutingSetups', () => {
  const files: Record<string, string> = { 'mine.yaml': 'kind: EndpointPickerConfig\n' };
  const read = (p: string) => {
    const text = files[p];
    if (text === undefined) throw Object.assign(new Error('missing'), { code: 'ENOENT' });
    return text;
  };

  it('knows round-robin, epp and prefix-heavy, and reads name=file', () => {
    const setups = parseRoutingSetups('round-robin, epp,prefix-heavy,custom=mine.yaml', read);
    assert.deepEqual(
      setups.map((s) => [s.name, s.routing]),
      [
        ['round-robin', 'round-robin'],
        ['epp', 'epp'],
        ['prefix-heavy', 'epp'],
        ['custom', 'epp'],
      ],
    );
    assert.equal(setups[1]!.eppConfigText, undefined, 'epp runs the service’s own config');
    assert.equal(setups[2]!.eppConfigText, prefixHeavyEndpointPickerConfig);
    assert.equal(setups[3]!.eppConfigText, files['mine.yaml']);
  });

  const errors: [string, RegExp][] = [
    ['fastest', /unknown setup "fastest"/],
    ['x=missing.yaml', /cannot read missing\.yaml: ENOENT/],
    ['epp,epp', /listed twice/],
    [' , ', /at least one setup/],
  ];
  for (const [input, message] of errors) {
    it(`rejects ${JSON.stringify(input)}`, () =>
      assert.throws(
        () => parseRoutingSetups(input, read),
        (e: unknown) => isLlmisvcError(e) && message.test(e.message),
      ));
  }
});
