import assert from 'node:assert/strict';
import { test } from 'node:test';
import { httpsProbeWarnings, withPlainHttpProbes } from './probe-scheme.js';

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

test('the HTTPS probes of a vLLM serving plain HTTP are written with HTTP; a vLLM with a certificate keeps them', () => {
  const https = { httpGet: { path: '/health', port: 8000, scheme: 'HTTPS' } };
  const vllm = { command: ['vllm', 'serve', '/mnt/models'], args: ['--port', '8000'] };
  const spec = {
    template: { containers: [{ name: 'main', ...vllm, livenessProbe: https, readinessProbe: https }] },
    prefill: {
      template: {
        containers: [
          {
            name: 'main',
            command: ['/bin/bash', '-c', 'exec vllm serve /mnt/models --ssl-certfile /tls/tls.crt "$@"'],
            livenessProbe: https,
          },
        ],
      },
    },
    worker: { containers: [{ name: 'main', image: 'example.com/own:1', livenessProbe: https }] },
  };
  const out = withPlainHttpProbes(spec);
  const main = (pod: { containers?: unknown[] } | undefined) =>
    (pod?.containers as Record<string, { httpGet: { scheme: string } }>[])[0]!;
  // One probe object in every pod, as a YAML alias makes it: each pod's stays its own.
  assert.equal(main(out.template)['livenessProbe']!.httpGet.scheme, 'HTTP');
  assert.equal(main(out.template)['readinessProbe']!.httpGet.scheme, 'HTTP');
  assert.equal(
    main(out.prefill?.template)['livenessProbe']!.httpGet.scheme,
    'HTTPS',
    'vLLM with a certificate',
  );
  assert.equal(main(out.worker)['livenessProbe']!.httpGet.scheme, 'HTTPS', 'an image of its own');
  assert.equal(main(spec.template)['livenessProbe']!.httpGet.scheme, 'HTTPS', 'the input is not changed');
  // What is left is only a warning where the image may not serve TLS: not for the vLLM with a certificate.
  assert.deepEqual(
    httpsProbeWarnings(out).map((w) => w.split(':')[0]),
    ['spec.worker.containers[main].livenessProbe.httpGet.scheme'],
  );
  const plain = { template: { containers: [{ name: 'main', ...vllm }] } };
  assert.equal(withPlainHttpProbes(plain), plain, 'nothing to change: the same object');
});
