/**
 * @module dev/kubeconfig
 * The kubeconfig written for the development API server: one cluster, one admin user authenticated by a bearer
 * token, one context. Pure: it only renders text.
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
}

/** Renders a kubeconfig that `kubectl`, client-go and @kubernetes/client-node all read. */
export function renderDevKubeconfig(input: DevKubeconfigInput): string {
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
    users: [{ name: `${DEV_CONTEXT_NAME}-admin`, user: { token: input.token } }],
    contexts: [
      {
        name: DEV_CONTEXT_NAME,
        context: {
          cluster: DEV_CONTEXT_NAME,
          user: `${DEV_CONTEXT_NAME}-admin`,
          namespace: input.namespace ?? 'default',
        },
      },
    ],
    'current-context': DEV_CONTEXT_NAME,
  });
}
