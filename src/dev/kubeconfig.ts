/**
 * @module dev/kubeconfig
 * The kubeconfig written for the development API server: one cluster, one user authenticated by a bearer token (the
 * admin's, or a ServiceAccount's for a pod's process), one context. Pure: it only renders text.
 */
import { stringify } from 'yaml';

export const DEV_CONTEXT_NAME = 'llmisvc-dev';

export interface DevKubeconfigInput {
  /** `https://127.0.0.1:PORT` */
  server: string;
  /** PEM of the CA (or self-signed certificate chain) that signed the serving certificate. */
  caPem: string;
  /** The admin's bearer token (in the `system:masters` group). */
  token: string;
  /** The context's default namespace. */
  namespace?: string;
  /** The user's name in the file (default: the admin's). */
  user?: string;
}

/** Renders a kubeconfig that `kubectl`, client-go and @kubernetes/client-node all read. */
export function renderDevKubeconfig(input: DevKubeconfigInput): string {
  const user = input.user ?? `${DEV_CONTEXT_NAME}-admin`;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    preferences: {},
    clusters: [
      {
        name: DEV_CONTEXT_NAME,
        cluster: {
          server: input.server,
          'certificate-authority-data': Buffer.from(input.caPem, 'utf8').toString('base64'),
        },
      },
    ],
    users: [{ name: user, user: { token: input.token } }],
    contexts: [
      {
        name: DEV_CONTEXT_NAME,
        context: {
          cluster: DEV_CONTEXT_NAME,
          user,
          namespace: input.namespace ?? 'default',
        },
      },
    ],
    'current-context': DEV_CONTEXT_NAME,
  });
}
