/**
 * @module test/harness/h2spec
 * The h2spec provisioner: h2spec (an HTTP/2 conformance suite, summerwind/h2spec) built once per machine from its Go
 * module into the llmisvc cache, and exported to the tests as `H2SPEC_BIN`.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { runGo } from '../../src/dev/go.js';
import { defaultCacheDir } from '../../src/gateway/index.js';
import type { Provisioner } from './provision.js';

const MODULE = 'github.com/summerwind/h2spec/cmd/h2spec';
const VERSION = 'v2.2.1+incompatible';

export const h2specProvisioner: Provisioner = {
  name: 'h2spec',
  async provision({ env, log }) {
    const dir = join(defaultCacheDir(env), 'h2spec', VERSION);
    const bin = join(dir, 'h2spec');
    if (!existsSync(bin)) {
      mkdirSync(dir, { recursive: true });
      log(`building ${MODULE}@${VERSION} (once per machine)`);
      await runGo(
        { env: { ...env, GOBIN: dir, GOFLAGS: '-mod=mod' }, log },
        ['install', `${MODULE}@${VERSION}`],
        {
          cwd: dir,
        },
      );
    }
    log(bin);
    return { H2SPEC_BIN: bin };
  },
};
