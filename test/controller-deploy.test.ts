/**
 * deploy/: the kustomization passes server-side dry-run on the real API server, the RBAC is least-privilege (no
 * wildcards, no cluster-wide Secrets) and sufficient: a controller acting as its ServiceAccount reconciles a
 * service, elects itself leader and manages its webhook certificate without a single 403.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunningController } from '../src/controller/index.js';
import type { KubeClient, KubeObject } from '../src/kube/index.js';
import { CORE_RESOURCES } from '../src/kube/index.js';
import { CertKeeper, serviceDnsNames } from '../src/controller/index.js';
import {
  apply,
  client,
  createNamespace,
  ensureNamespace,
  getOrUndefined,
  installProject,
  kubeconfig,
  readYaml,
  resourceOf,
  root,
  skip,
  startController,
  waitFor,
} from './controller-support.js';

const SYSTEM = 'llmisvc-system';
let c: KubeClient;
let running: RunningController | undefined;

before(async () => {
  if (skip) return;
  c = await client();
  await installProject(c, SYSTEM);
});

after(async () => {
  await running?.stop();
  c?.close();
});

type Rule = { apiGroups?: string[]; resources?: string[]; verbs?: string[]; resourceNames?: string[] };

test('RBAC has no wildcards and reads Secrets only in its own namespace', () => {
  const objects = readYaml(join(root, 'deploy/controller/rbac.yaml'));
  for (const o of objects.filter((x) => x.kind === 'ClusterRole' || x.kind === 'Role')) {
    for (const rule of (o['rules'] as Rule[]) ?? []) {
      for (const list of [rule.apiGroups, rule.resources, rule.verbs])
        assert.ok(!(list ?? []).includes('*'), `${o.kind} ${o.metadata.name} has a wildcard`);
      if (o.kind === 'ClusterRole')
        assert.ok(!(rule.resources ?? []).includes('secrets'), 'no cluster-wide secrets');
    }
  }
});

test('the kustomization lists every preset', () => {
  const kustomization = readFileSync(join(root, 'deploy/kustomization.yaml'), 'utf8');
  for (const file of readdirSync(join(root, 'deploy/presets')).filter((f) => f.endsWith('.yaml')))
    assert.ok(kustomization.includes(`presets/${file}`), `deploy/kustomization.yaml lists presets/${file}`);
});

test(
  'kubectl apply -k deploy/ passes server-side dry-run',
  { skip: skip || (!process.env['LLMISVC_KUBECTL'] && 'needs LLMISVC_KUBECTL') },
  () => {
    const result = spawnSync(
      process.env['LLMISVC_KUBECTL']!,
      ['--kubeconfig', kubeconfig!, 'apply', '-k', join(root, 'deploy'), '--dry-run=server'],
      { encoding: 'utf8' },
    );
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(
      result.stdout,
      /deployment.apps\/llmisvc-controller (created|configured|unchanged) \(server dry run\)/,
    );
  },
);

test('the controller runs on exactly the permissions deploy/ grants', { skip }, async () => {
  await ensureNamespace(c, SYSTEM);
  await apply(c, readYaml(join(root, 'deploy/controller/rbac.yaml')));
  const ns = await createNamespace(c, 'rbac');
  const forbidden: string[] = [];
  running = await startController({
    namespace: ns,
    systemNamespace: SYSTEM,
    leaderElect: true,
    identity: `rbac-${ns}`,
    impersonate: {
      user: `system:serviceaccount:${SYSTEM}:llmisvc-controller`,
      groups: ['system:serviceaccounts', `system:serviceaccounts:${SYSTEM}`, 'system:authenticated'],
    },
    webhook: {
      port: 0,
      host: '127.0.0.1',
      serviceName: 'llmisvc-webhook',
      secretName: 'llmisvc-webhook-cert',
      webhookConfigurations: ['llmisvc-validating-webhook'],
      crds: ['llminferenceservices.serving.kserve.io', 'llminferenceserviceconfigs.serving.kserve.io'],
    },
  });
  running.client.onRequest((r) => {
    if (r.status === 403) forbidden.push(`${r.verb} ${r.path}`);
  });
  const [single] = readYaml(join(root, 'examples/single-node.yaml'));
  await apply(c, [{ ...single!, metadata: { ...single!.metadata, namespace: ns } }], ns);
  const deployments = await resourceOf(c, { apiVersion: 'apps/v1', kind: 'Deployment' });
  const routes = await resourceOf(c, { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute' });
  await waitFor('scheduler created', () =>
    getOrUndefined(c, deployments, ns, `${single!.metadata.name}-kserve-router-scheduler`),
  );
  await waitFor('route created', () =>
    getOrUndefined(c, routes, ns, `${single!.metadata.name}-kserve-route`),
  );
  await waitFor('status written', async () => {
    const s = await c.get<KubeObject & { status?: { conditions?: unknown[] } }>(
      {
        group: 'serving.kserve.io',
        version: 'v1alpha2',
        kind: 'LLMInferenceService',
        plural: 'llminferenceservices',
        namespaced: true,
      },
      ns,
      single!.metadata.name,
    );
    return s.status?.conditions?.length;
  });
  const secret = await getOrUndefined(c, CORE_RESOURCES.secret, SYSTEM, 'llmisvc-webhook-cert');
  assert.ok(secret, 'the webhook certificate Secret was created');
  const lease = await c.get<KubeObject & { spec?: { holderIdentity?: string } }>(
    CORE_RESOURCES.lease,
    SYSTEM,
    'llmisvc-controller',
  );
  assert.equal(lease.spec?.holderIdentity, `rbac-${ns}`, 'leader election worked');
  assert.deepEqual(forbidden, []);
  // The impersonation is real: what the ClusterRole does not grant is refused.
  await assert.rejects(
    running.client.list(CORE_RESOURCES.secret, undefined),
    (e: { status?: number }) => e.status === 403,
  );
});

test(
  'the webhook certificate is kept in a Secret, reused, and rotated before it expires',
  { skip },
  async () => {
    const ns = await createNamespace(c, 'certs');
    const keeper = new CertKeeper({
      client: c,
      namespace: ns,
      secretName: 'webhook-cert',
      dnsNames: serviceDnsNames('llmisvc-webhook', ns),
      webhookConfigurations: [],
      crds: [],
    });
    const first = await keeper.ensure();
    const again = await keeper.ensure();
    assert.equal(again.cert, first.cert, 'a valid certificate is reused (no write)');
    // Seventy days on, the 90-day certificate is inside its renewal window.
    const later = await keeper.ensure(new Date(Date.now() + 70 * 24 * 3600 * 1000));
    assert.notEqual(later.cert, first.cert);
    assert.ok(
      later.caBundle.includes(later.caCert) && later.caBundle.includes(first.caCert),
      'old and new CA trusted',
    );
    const stored = await c.get<KubeObject & { data: Record<string, string> }>(
      CORE_RESOURCES.secret,
      ns,
      'webhook-cert',
    );
    assert.equal(Buffer.from(stored.data['tls.crt']!, 'base64').toString(), later.cert);
  },
);

test(
  'with a webhook URL (a controller outside the cluster) the webhooks are pointed at it, path by path, once',
  { skip },
  async () => {
    const name = `llmisvc-url-${Date.now()}`;
    const webhook = (suffix: string, path: string) => ({
      name: `${suffix}.serving.kserve.io`,
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      failurePolicy: 'Ignore',
      // Matches nothing that exists: the configuration is only looked at.
      rules: [
        { apiGroups: ['example.invalid'], apiVersions: ['v1'], operations: ['CREATE'], resources: ['none'] },
      ],
      clientConfig: { service: { name: 'llmisvc-webhook', namespace: 'llmisvc-system', path } },
    });
    await c.create(CORE_RESOURCES.validatingWebhookConfiguration, {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingWebhookConfiguration',
      metadata: { name },
      webhooks: [webhook('a', '/validate-a'), webhook('b', '/validate-b')],
    });
    try {
      const keeper = new CertKeeper({
        client: c,
        namespace: 'default',
        secretName: 'unused',
        dnsNames: [],
        webhookConfigurations: [name],
        crds: [],
        url: 'https://127.0.0.1:9443',
      });
      assert.equal(await keeper.inject('CA'), 1);
      const config = await c.get<KubeObject & { webhooks: { clientConfig: Record<string, unknown> }[] }>(
        CORE_RESOURCES.validatingWebhookConfiguration,
        undefined,
        name,
      );
      assert.deepEqual(
        config.webhooks.map((w) => w.clientConfig),
        [
          { url: 'https://127.0.0.1:9443/validate-a', caBundle: Buffer.from('CA').toString('base64') },
          { url: 'https://127.0.0.1:9443/validate-b', caBundle: Buffer.from('CA').toString('base64') },
        ],
      );
      // Nothing to change the next time (the hourly check must not write every hour).
      assert.equal(await keeper.inject('CA'), 0);
    } finally {
      await c.delete(CORE_RESOURCES.validatingWebhookConfiguration, undefined, name);
    }
  },
);
