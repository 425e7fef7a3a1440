/**
 * @module epp/tls
 * Serving credentials for `--secure-serving`: the certificate in `--cert-path` (`tls.crt`, `tls.key`, as the
 * upstream EPP reads them) or, without one, a self-signed certificate made in memory (`certs/`): the EPP's pod has a
 * read-only root file system and its image no `openssl`. Gateways talk to the EPP without verifying it, as GIE's do.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyPair } from '../certs/index.js';
import { LlmisvcError } from '../errors/index.js';

export function loadKeyPair(certPath: string): KeyPair {
  try {
    return { cert: readFileSync(join(certPath, 'tls.crt')), key: readFileSync(join(certPath, 'tls.key')) };
  } catch (error) {
    throw new LlmisvcError(
      'LLMISVC_ERR_CONFIG',
      `--cert-path ${certPath}: cannot read tls.crt and tls.key: ${(error as Error).message}`,
      {
        hint: 'Point --cert-path at a folder holding tls.crt and tls.key (a mounted kubernetes.io/tls Secret works).',
      },
    );
  }
}
