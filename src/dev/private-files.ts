/**
 * @module dev/private-files
 * Credentials the dev cluster hands to the processes it runs, as files only this machine's user can read (0600): the
 * keys of a Secret (certificates), and a kubeconfig holding a bearer token.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { LlmisvcError } from '../errors/index.js';
import type { KubeClient } from '../kube/index.js';
import { renderDevKubeconfig, type DevKubeconfigInput } from './kubeconfig.js';

/**
 * Writes the keys of Secret `namespace/name` as files of `dir` (named by key: the API server allows only
 * `[-._a-zA-Z0-9]` in them): the `keys` given, each of which must be there, or all of them.
 */
export async function writeSecretFiles(
  client: KubeClient,
  secret: { namespace: string; name: string },
  dir: string,
  keys?: readonly string[],
): Promise<void> {
  const { data = {} } = await client.request<{ data?: Record<string, string> }>(
    'GET',
    `/api/v1/namespaces/${secret.namespace}/secrets/${secret.name}`,
    { verb: 'get' },
  );
  for (const key of keys ?? Object.keys(data)) {
    const value = data[key];
    if (!value)
      throw new LlmisvcError(
        'LLMISVC_ERR_PROCESS',
        `Secret ${secret.namespace}/${secret.name} has no ${key}`,
      );
    await writeFile(join(dir, key), Buffer.from(value, 'base64'), { mode: 0o600 });
  }
}

/** Writes a kubeconfig with a bearer token at `path` (its folder made 0700 if missing); returns the path. */
export async function writeTokenKubeconfig(path: string, input: DevKubeconfigInput): Promise<string> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFile(path, renderDevKubeconfig(input), { mode: 0o600 });
  return path;
}
