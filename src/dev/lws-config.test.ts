import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import {
  LWS_USER,
  applyReplaceOperations,
  lwsConfiguration,
  lwsRbac,
  lwsWebhookConfigurations,
} from './lws-config.js';

const manifests = `---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: mutating-webhook-configuration
webhooks:
- name: mleaderworkerset.kb.io
  clientConfig:
    service: { name: webhook-service, namespace: system, path: /mutate-leaderworkerset-x-k8s-io-v1-leaderworkerset }
- name: mpod.kb.io
  clientConfig:
    service: { name: webhook-service, namespace: system, path: /mutate--v1-pod }
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: validating-webhook-configuration
webhooks:
- name: vpod.kb.io
  clientConfig:
    service: { name: webhook-service, namespace: system, path: /validate--v1-pod }
`;
const patch = (name: string, path: string) => `- op: replace
  path: /webhooks/${name === 'vpod.kb.io' ? 0 : 1}
  value:
    name: ${name}
    clientConfig:
      service: { name: webhook-service, namespace: system, path: ${path} }
    objectSelector:
      matchExpressions:
      - { key: leaderworkerset.sigs.k8s.io/name, operator: Exists }
`;

describe('LeaderWorkerSet controller configuration', () => {
  it('points the upstream webhooks at the loopback server, trusted through caBundle, with upstream patches applied', () => {
    const [mutating, validating] = lwsWebhookConfigurations({
      manifests,
      mutatingPatch: patch('mpod.kb.io', '/mutate--v1-pod'),
      validatingPatch: patch('vpod.kb.io', '/validate--v1-pod'),
      baseUrl: 'https://127.0.0.1:9443',
      caPem: 'PEM',
    });
    assert.equal(mutating!.metadata.name, 'lws-mutating-webhook-configuration');
    assert.equal(validating!.metadata.name, 'lws-validating-webhook-configuration');
    assert.deepEqual(mutating!.webhooks[0]!.clientConfig, {
      url: 'https://127.0.0.1:9443/mutate-leaderworkerset-x-k8s-io-v1-leaderworkerset',
      caBundle: Buffer.from('PEM').toString('base64'),
    });
    assert.equal(mutating!.webhooks[1]!.clientConfig.url, 'https://127.0.0.1:9443/mutate--v1-pod');
    assert.ok(mutating!.webhooks[1]!['objectSelector'], 'the pod webhook only sees LWS pods');
    assert.ok(validating!.webhooks[0]!['objectSelector']);
  });

  it('refuses patch operations it does not implement and paths that do not exist', () => {
    assert.throws(
      () => applyReplaceOperations({ a: [1] }, [{ op: 'add', path: '/a/1', value: 2 }]),
      /unsupported/,
    );
    assert.throws(
      () => applyReplaceOperations({ a: [1] }, [{ op: 'replace', path: '/a/3', value: 2 }]),
      /exist/,
    );
    assert.deepEqual(applyReplaceOperations({ a: [1, 2] }, [{ op: 'replace', path: '/a/1', value: 3 }]), {
      a: [1, 3],
    });
  });

  it('binds the upstream manager role to its own user and keeps leader election and cert rotation off', () => {
    const [role, binding] = lwsRbac(
      'apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: manager-role\nrules: []\n',
    ) as {
      metadata: { name: string };
      roleRef?: { name: string };
      subjects?: { name: string }[];
    }[];
    assert.equal(role!.metadata.name, 'lws-manager-role');
    assert.equal(binding!.roleRef!.name, 'lws-manager-role');
    assert.equal(binding!.subjects![0]!.name, LWS_USER);
    const config = parse(lwsConfiguration({ webhookPort: 1, healthPort: 2, certDir: '/c' })) as Record<
      string,
      never
    >;
    assert.deepEqual(config['leaderElection'], { leaderElect: false });
    assert.deepEqual(config['internalCertManagement'], { enable: false });
    assert.deepEqual(config['webhook'], { host: '127.0.0.1', port: 1, certDir: '/c' });
  });
});
