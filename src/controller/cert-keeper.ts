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
  /**
   * Where the API server reaches the webhooks (`https://host:port`) when not through their Service: a controller
   * run outside the cluster, as in development. Each clientConfig then names this URL, with its own path, instead
   * of the Service.
   */
  url?: string;
  logger?: Logger;
}

interface ClientConfig {
  caBundle?: string;
  url?: string;
  service?: { path?: string };
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
      // Issued again when it no longer covers every name and address (a --webhook-url host added, say).
      if (current && !needsRotation(current, [...dnsNames, ...(this.options.ipAddresses ?? [])], now))
        return current;
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

  /**
   * A webhook's clientConfig with `caBundle` (base64): the same but for the CA, or with `url` set, that URL with the
   * webhook's path in place of the Service.
   */
  private clientConfig(
    current: ClientConfig | undefined,
    encoded: string,
    defaultPath: string,
  ): ClientConfig {
    const base = this.options.url;
    if (base === undefined) return { ...current, caBundle: encoded };
    const path = current?.service?.path ?? (current?.url ? new URL(current.url).pathname : defaultPath);
    return { url: `${base.replace(/\/+$/, '')}${path}`, caBundle: encoded };
  }

  /** Puts `caBundle` (and `url`, when set) into the webhook configurations and CRD conversion configs where it differs. */
  async inject(caBundle: string): Promise<number> {
    const { client } = this.options;
    const encoded = b64(caBundle);
    // Field by field: the API server's key order is not ours. (Without a URL the Service is the current one.)
    const same = (a: ClientConfig | undefined, b: ClientConfig) =>
      a?.caBundle === b.caBundle &&
      a?.url === b.url &&
      (a?.service === undefined) === (b.service === undefined);
    let writes = 0;
    for (const name of this.options.webhookConfigurations) {
      let config: KubeObject & { webhooks?: { clientConfig?: ClientConfig }[] };
      try {
        config = await client.get(CORE_RESOURCES.validatingWebhookConfiguration, undefined, name);
      } catch (error) {
        if (isNotFound(error)) continue;
        throw error;
      }
      const webhooks = config.webhooks ?? [];
      const wanted = webhooks.map((w) => this.clientConfig(w.clientConfig, encoded, '/'));
      if (webhooks.every((w, i) => same(w.clientConfig, wanted[i]!))) continue;
      webhooks.forEach((w, i) => (w.clientConfig = wanted[i]!));
      await client.update(CORE_RESOURCES.validatingWebhookConfiguration, config);
      writes += 1;
    }
    for (const name of this.options.crds) {
      let crd: KubeObject & {
        spec?: { conversion?: { strategy?: string; webhook?: { clientConfig?: ClientConfig } } };
      };
      try {
        crd = await client.get(CORE_RESOURCES.crd, undefined, name);
      } catch (error) {
        if (isNotFound(error)) continue;
        throw error;
      }
      const conversion = crd.spec?.conversion;
      const current = conversion?.webhook?.clientConfig;
      const wanted = this.clientConfig(current, encoded, '/convert');
      if (conversion?.strategy !== 'Webhook' || same(current, wanted)) continue;
      // A merge patch: the Service goes (null) when a URL takes its place.
      const clientConfig =
        this.options.url === undefined ? { caBundle: encoded } : { ...wanted, service: null };
      await client.mergePatch(CORE_RESOURCES.crd, undefined, name, {
        spec: { conversion: { webhook: { clientConfig } } },
      });
      writes += 1;
    }
    return writes;
  }
}
