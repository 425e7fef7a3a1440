/**
 * @module controller/cert-keeper
 * Keeps the webhook serving certificate in a Secret in the controller's namespace (so every replica serves the same
 * one), rotates it before it expires, and injects the CA bundle into the ValidatingWebhookConfiguration and the
 * CRDs' conversion webhook. Writes only when something differs, so a steady cluster sees no writes from here. During
 * a rotation the injected bundle holds the new and the previous CA, so requests in flight stay trusted.
 */
import type { Logger } from 'pino';
import type { KubeClient, KubeObject } from '../kube/index.js';
import { CORE_RESOURCES, isConflict, isNotFound } from '../kube/index.js';
import type { CertBundle } from '../certs/index.js';
import { issueBundle, needsRotation } from '../certs/index.js';

export interface CertKeeperOptions {
  client: KubeClient;
  namespace: string;
  secretName: string;
  dnsNames: string[];
  ipAddresses?: string[];
  /** ValidatingWebhookConfigurations whose webhooks get the CA bundle. */
  webhookConfigurations: string[];
  /** CRDs whose conversion webhook gets the CA bundle. */
  crds: string[];
  logger?: Logger;
}

interface Secret extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const unb64 = (s: string | undefined): string | undefined =>
  s === undefined ? undefined : Buffer.from(s, 'base64').toString();

export interface ServingCert extends CertBundle {
  /** What clients should trust: the current CA, plus the previous one during a rotation. */
  caBundle: string;
}

function fromSecret(secret: Secret): ServingCert | undefined {
  const d = secret.data ?? {};
  const bundle = {
    cert: unb64(d['tls.crt']),
    key: unb64(d['tls.key']),
    caCert: unb64(d['ca.crt']),
    caKey: unb64(d['ca.key']),
    caBundle: unb64(d['ca-bundle.crt']),
  };
  if (!bundle.cert || !bundle.key || !bundle.caCert || !bundle.caKey) return undefined;
  return { ...bundle, caBundle: bundle.caBundle ?? bundle.caCert } as ServingCert;
}

export class CertKeeper {
  constructor(private readonly options: CertKeeperOptions) {}

  /** Returns a valid serving certificate, issuing (and storing) a new one when due. */
  async ensure(now = new Date()): Promise<ServingCert> {
    const { client, namespace, secretName, dnsNames } = this.options;
    for (let attempt = 0; ; attempt++) {
      let secret: Secret | undefined;
      try {
        secret = await client.get<Secret>(CORE_RESOURCES.secret, namespace, secretName);
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
      const current = secret ? fromSecret(secret) : undefined;
      if (current && !needsRotation(current, dnsNames, now)) return current;
      const fresh = issueBundle({ dnsNames, ipAddresses: this.options.ipAddresses, now });
      const caBundle =
        fresh.caCert +
        (current && !needsRotation({ ...current, cert: current.caCert }, [], now, 0) ? current.caCert : '');
      const data = {
        'tls.crt': b64(fresh.cert),
        'tls.key': b64(fresh.key),
        'ca.crt': b64(fresh.caCert),
        'ca.key': b64(fresh.caKey),
        'ca-bundle.crt': b64(caBundle),
      };
      try {
        if (secret)
          await client.update<Secret>(CORE_RESOURCES.secret, { ...secret, type: 'kubernetes.io/tls', data });
        else
          await client.create<Secret>(CORE_RESOURCES.secret, {
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: { name: secretName, namespace, labels: { 'app.kubernetes.io/managed-by': 'llmisvc' } },
            type: 'kubernetes.io/tls',
            data,
          });
        this.options.logger?.info(
          { secret: `${namespace}/${secretName}` },
          'issued a new webhook serving certificate',
        );
        return { ...fresh, caBundle };
      } catch (error) {
        // Another replica rotated at the same moment: take theirs.
        if ((isConflict(error) || (error as { status?: number }).status === 409) && attempt < 3) continue;
        throw error;
      }
    }
  }

  /** Puts `caBundle` into the webhook configurations and CRD conversion configs where it differs. */
  async inject(caBundle: string): Promise<number> {
    const { client } = this.options;
    const encoded = b64(caBundle);
    let writes = 0;
    for (const name of this.options.webhookConfigurations) {
      let config: KubeObject & { webhooks?: { clientConfig?: { caBundle?: string } }[] };
      try {
        config = await client.get(CORE_RESOURCES.validatingWebhookConfiguration, undefined, name);
      } catch (error) {
        if (isNotFound(error)) continue;
        throw error;
      }
      if ((config.webhooks ?? []).every((w) => w.clientConfig?.caBundle === encoded)) continue;
      for (const w of config.webhooks ?? [])
        w.clientConfig = { ...(w.clientConfig ?? {}), caBundle: encoded };
      await client.update(CORE_RESOURCES.validatingWebhookConfiguration, config);
      writes += 1;
    }
    for (const name of this.options.crds) {
      let crd: KubeObject & {
        spec?: { conversion?: { strategy?: string; webhook?: { clientConfig?: { caBundle?: string } } } };
      };
      try {
        crd = await client.get(CORE_RESOURCES.crd, undefined, name);
      } catch (error) {
        if (isNotFound(error)) continue;
        throw error;
      }
      const conversion = crd.spec?.conversion;
      if (conversion?.strategy !== 'Webhook' || conversion.webhook?.clientConfig?.caBundle === encoded)
        continue;
      await client.mergePatch(CORE_RESOURCES.crd, undefined, name, {
        spec: { conversion: { webhook: { clientConfig: { caBundle: encoded } } } },
      });
      writes += 1;
    }
    return writes;
  }
}
