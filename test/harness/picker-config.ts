/**
 * @module test/harness/picker-config
 * The problems an EndpointPickerConfig is refused with, for tests that check what the loader says about a config.
 */
import assert from 'node:assert/strict';
import { loadEndpointPickerConfig } from '../../src/epp/index.js';
import { ValidationError, type FieldProblem } from '../../src/errors/index.js';

/** The problems `text` is refused with; fails the test when it loads. */
export function problemsOf(text: string): FieldProblem[] {
  try {
    loadEndpointPickerConfig(text);
  } catch (error) {
    assert.ok(error instanceof ValidationError, String(error));
    return [...error.problems];
  }
  assert.fail('the config loaded but should not have');
}
