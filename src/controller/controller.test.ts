import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Condition } from './conditions.js';
import { eventWorthy } from './controller.js';

const c = (type: string, status: Condition['status']): Condition => ({ type, status });

test('events for changes users care about, not for a new service that is simply not ready yet', () => {
  const fresh = [
    c('PresetsCombined', 'True'),
    c('DependenciesReady', 'True'),
    c('Ready', 'False'),
    c('WorkloadsReady', 'False'),
  ];
  assert.deepEqual(eventWorthy(fresh, []), []);
  assert.deepEqual(eventWorthy([c('DependenciesReady', 'False')], []), [c('DependenciesReady', 'False')]);
  assert.deepEqual(eventWorthy([c('Ready', 'True')], [c('Ready', 'False')]), [c('Ready', 'True')]);
  assert.deepEqual(eventWorthy([c('MainWorkloadReady', 'True')], [c('MainWorkloadReady', 'False')]), []);
});
