import assert from 'node:assert/strict';
import { test } from 'node:test';
import { replicaOrder } from './epp-replicas.js';

test('replicaOrder: round robin from the start, failing replicas last but still tried', () => {
  const table: [number, number, number[], number[]][] = [
    [1, 0, [], [0]],
    [3, 0, [], [0, 1, 2]],
    [3, 2, [], [2, 0, 1]],
    [3, 1, [2], [1, 0, 2]],
    [3, 1, [1], [2, 0, 1]],
    [3, 0, [0, 1, 2], [0, 1, 2]],
  ];
  for (const [count, start, failing, want] of table)
    assert.deepEqual(
      replicaOrder(count, start, new Set(failing)),
      want,
      `${count} ${start} ${failing.join()}`,
    );
});
