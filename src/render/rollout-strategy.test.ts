import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deploymentStrategy, leaderWorkerSetRolloutStrategy } from './rollout-strategy.js';

describe('rolloutStrategy', () => {
  it('fills a Deployment strategy with the Kubernetes default for the field left out', () => {
    assert.deepEqual(deploymentStrategy({ rolloutStrategy: { maxUnavailable: 0 } }), {
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: '25%' } },
    });
  });

  it('fills a LeaderWorkerSet rolloutStrategy with the LeaderWorkerSet defaults (1 and 0)', () => {
    assert.deepEqual(leaderWorkerSetRolloutStrategy({ rolloutStrategy: { maxSurge: '50%' } }), {
      rolloutStrategy: {
        type: 'RollingUpdate',
        rollingUpdateConfiguration: { maxUnavailable: 1, maxSurge: '50%' },
      },
    });
    assert.deepEqual(leaderWorkerSetRolloutStrategy({ rolloutStrategy: {} }), {
      rolloutStrategy: {
        type: 'RollingUpdate',
        rollingUpdateConfiguration: { maxUnavailable: 1, maxSurge: 0 },
      },
    });
  });

  it('writes nothing without rolloutStrategy, so the live defaults stay', () => {
    assert.deepEqual(deploymentStrategy({}), {});
    assert.deepEqual(leaderWorkerSetRolloutStrategy({}), {});
  });
});
