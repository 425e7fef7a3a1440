import assert from 'node:assert/strict';
import { test } from 'node:test';
import { httpsProbeWarnings } from './probe-scheme.js';

test("HTTPS probes of every main container are named by field; HTTP ones, other containers' and none are not", () => {
  const https = { httpGet: { path: '/health', port: 8000, scheme: 'https' } };
  const warnings = httpsProbeWarnings({
    template: {
      containers: [
        { name: 'main', startupProbe: https, readinessProbe: { httpGet: { path: '/health', port: 8000 } } },
        { name: 'sidecar', livenessProbe: https },
      ],
    },
    worker: { containers: [{ name: 'main' }] },
    prefill: { worker: { containers: [{ name: 'main', livenessProbe: https }] } },
  });
  assert.deepEqual(
    warnings.map((w) => w.split(':')[0]),
    [
      'spec.template.containers[main].startupProbe.httpGet.scheme',
      'spec.prefill.worker.containers[main].livenessProbe.httpGet.scheme',
    ],
  );
  assert.deepEqual(httpsProbeWarnings({}), []);
});
