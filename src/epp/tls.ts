/**
 * @module epp/tls
 * Serving credentials for `--secure-serving`: the certificate in `--cert-path` (`tls.crt`, `tls.key`, as the
 * upstream EPP reads them) or, without one, a self-signed certificate made with the `openssl` command (Node can
 * sign but not build X.509 certificates). Gateways talk to the EPP without verifying it, as GIE's do.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LlmisvcError } from '../errors/index.js';

export interface KeyPair {
  cert: Buffer;
  key: Buffer;
}

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

export function selfSignedKeyPair(commonName = 'llmisvc-epp'): KeyPair {
  const dir = mkdtempSync(join(tmpdir(), 'llmisvc-epp-tls-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '3650',
        '-subj',
        `/CN=${commonName}`,
        '-keyout',
        join(dir, 'tls.key'),
        '-out',
        join(dir, 'tls.crt'),
      ],
      { stdio: 'ignore' },
    );
    return loadKeyPair(dir);
  } catch (error) {
    if (error instanceof LlmisvcError) throw error;
    throw new LlmisvcError(
      'LLMISVC_ERR_DEPENDENCY',
      `cannot create a self-signed certificate: ${(error as Error).message}`,
      {
        hint: 'Install openssl, or pass --cert-path with tls.crt and tls.key.',
      },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
