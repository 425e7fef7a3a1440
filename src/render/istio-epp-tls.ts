/**
 * @module render/istio-epp-tls
 * On a cluster with Istio, a DestinationRule that lets its gateways reach the Endpoint Picker over TLS. The picker
 * serves TLS with a self-signed certificate (as GIE's does), while an Istio gateway speaks plaintext to a service
 * outside the mesh — or Istio's own mTLS to one inside it — so without this rule every ext_proc stream fails at the
 * handshake and a FailClose pool answers every request with an error. The rule originates TLS on the picker's gRPC
 * port only, without verifying the certificate (it is self-signed; the upstream guides apply the same rule by hand),
 * and leaves the plaintext health and metrics ports alone. Rendered only when Istio's API is served, the picker
 * serves TLS and the pool points at the picker Service the service owns (never at a host the manifest names).
 */
import { type LLMInferenceService } from '../api/index.js';
import { childMetadata } from './labels.js';
import type { KubeObject } from './workload.js';

/** Istio's networking API (Istio 1.22 and later serve v1). */
export const ISTIO_NETWORKING_V1 = 'networking.istio.io/v1';

/**
 * Whether `llmisvc epp` started with `args` serves TLS, by its own rule (`src/cli/epp.ts`): `--secure-serving` as
 * given (the last one wins; bare means true), else on with `--cert-path` or `--pool-name`. GIE's and llm-d's pickers
 * default to TLS alike.
 * @example eppServesTls(['--pool-name', 'p']) // true
 * @example eppServesTls(['--pool-name', 'p', '--secure-serving=false']) // false
 */
export function eppServesTls(args: readonly string[]): boolean {
  for (let i = args.length - 1; i >= 0; i--) {
    const arg = args[i]!;
    if (arg.startsWith('--secure-serving=')) return arg.slice('--secure-serving='.length) !== 'false';
    if (arg === '--secure-serving') {
      const value = args[i + 1];
      return value === undefined || value.startsWith('-') || value !== 'false';
    }
  }
  return args.some((a) =>
    ['--cert-path', '--pool-name'].some((flag) => a === flag || a.startsWith(`${flag}=`)),
  );
}

/**
 * The DestinationRule for the picker's Service `host` (a short name: Istio reads it in the rule's namespace) and its
 * gRPC `port`, named after that Service.
 */
export function istioEppTlsRule(service: LLMInferenceService, host: string, port: number): KubeObject {
  return {
    apiVersion: ISTIO_NETWORKING_V1,
    kind: 'DestinationRule',
    metadata: childMetadata(service, host, {
      'app.kubernetes.io/component': 'llminferenceservice-router-scheduler',
    }),
    spec: {
      host,
      trafficPolicy: {
        portLevelSettings: [{ port: { number: port }, tls: { mode: 'SIMPLE', insecureSkipVerify: true } }],
      },
    },
  };
}
