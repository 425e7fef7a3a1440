// evaluateCluster is pure: table-driven cases over hand-made snapshots, for the edges the integration tests do not
// reach (equal timestamps, old bundles, a foreign GatewayClass, the pre-v1 InferencePool API).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ALL_FEATURES, type ServiceNeeds } from './plan.js';
import {
  type Check,
  type ClusterSnapshot,
  evaluateCluster,
  type WebhookConfigurationState,
} from './verify.js';

const CREATED = '2026-01-01T10:00:00Z';

function healthySnapshot(): ClusterSnapshot {
  const crd = (bundle?: string) => ({
    created: CREATED,
    established: true,
    ...(bundle ? { bundleVersion: bundle } : {}),
  });
  const running = (name: string, startTime = '2026-01-01T10:05:00Z') => ({
    available: true,
    pods: [{ name, startTime, running: true }],
  });
  return {
    served: new Map([
      ['gateway.networking.k8s.io', ['v1', 'v1beta1']],
      ['inference.networking.k8s.io', ['v1']],
      ['leaderworkerset.x-k8s.io', ['v1']],
    ]),
    crds: new Map([
      ['gatewayclasses.gateway.networking.k8s.io', crd('v1.5.1')],
      ['gateways.gateway.networking.k8s.io', crd('v1.5.1')],
      ['httproutes.gateway.networking.k8s.io', crd('v1.5.1')],
      ['inferencepools.inference.networking.k8s.io', crd('v1.5.0')],
      ['certificates.cert-manager.io', crd()],
      ['issuers.cert-manager.io', crd()],
      ['leaderworkersets.leaderworkerset.x-k8s.io', crd()],
    ]),
    deployments: new Map([
      ['cert-manager/cert-manager', running('cm')],
      ['cert-manager/cert-manager-cainjector', running('cainjector')],
      ['cert-manager/cert-manager-webhook', running('webhook')],
      ['envoy-gateway-system/envoy-gateway', running('eg-1')],
      ['envoy-ai-gateway-system/ai-gateway-controller', running('aigw-1')],
      ['lws-system/lws-controller-manager', running('lws-1')],
    ]),
    gatewayClasses: new Map([
      [
        'eg',
        {
          controllerName: 'gateway.envoyproxy.io/gatewayclass-controller',
          accepted: { type: 'Accepted', status: 'True' },
        },
      ],
    ]),
    gateways: [
      { namespace: 'llmisvc-system', name: 'llmisvc-gateway', className: 'eg', addresses: ['10.0.0.200'] },
    ],
    lwsWebhooks: lwsWebhooks({ service: true }),
  };
}

/**
 * LWS's two webhook configurations as its release manifests install them: calling lws-webhook-service, with the CA
 * bundle its controller writes (`service`), or with a URL of a controller outside the cluster (`llmisvc dev cluster`);
 * `injectCaFrom` is the annotation an install that uses cert-manager adds.
 */
function lwsWebhooks(form: {
  service?: boolean;
  injectCaFrom?: string;
  caBundle?: boolean;
}): Map<string, WebhookConfigurationState> {
  const webhook = (name: string) => ({
    name,
    hasCaBundle: form.caBundle ?? true,
    ...(form.service
      ? { service: { namespace: 'lws-system', name: 'lws-webhook-service', exists: true } }
      : { url: `https://127.0.0.1:40123/${name}` }),
  });
  const config = (names: string[]): WebhookConfigurationState => ({
    ...(form.injectCaFrom ? { injectCaFrom: form.injectCaFrom } : {}),
    webhooks: names.map(webhook),
  });
  return new Map([
    ['lws-mutating-webhook-configuration', config(['mleaderworkerset.x-k8s.io', 'mpod.kb.io'])],
    ['lws-validating-webhook-configuration', config(['vleaderworkerset.x-k8s.io', 'vpod.kb.io'])],
  ]);
}

/** Without cert-manager: no CRDs, no Deployments. */
function withoutCertManager(s: ClusterSnapshot): void {
  for (const name of ['certificates.cert-manager.io', 'issuers.cert-manager.io']) s.crds.delete(name);
  for (const name of ['cert-manager', 'cert-manager-cainjector', 'cert-manager-webhook'])
    s.deployments.delete(`cert-manager/${name}`);
}

const failures = (checks: Check[]) => checks.filter((c) => c.status === 'fail').map((c) => c.message);

describe('evaluateCluster', () => {
  it('is healthy when everything every feature needs runs', () => {
    const result = evaluateCluster(healthySnapshot(), [ALL_FEATURES], 'envoy-gateway');
    assert.deepEqual(failures(result.checks), []);
    assert.equal(result.healthy, true);
  });

  const cases: { name: string; change: (s: ClusterSnapshot) => void; expect: RegExp; fix?: RegExp }[] = [
    {
      name: 'a provider pod that started in the same second as the CRD counts as after it',
      change: (s) => {
        s.deployments.get('envoy-gateway-system/envoy-gateway')!.pods[0]!.startTime = CREATED;
      },
      expect: /^$/,
    },
    {
      name: 'one provider pod older than the CRD is enough to need a restart',
      change: (s) => {
        s.deployments.get('envoy-gateway-system/envoy-gateway')!.pods.push({
          name: 'eg-0',
          startTime: '2026-01-01T09:59:59Z',
          running: true,
        });
      },
      expect: /eg-0 \(started 2026-01-01T09:59:59Z\) started before the InferencePool CRD/,
      fix: /^kubectl rollout restart deployment\/envoy-gateway -n envoy-gateway-system/,
    },
    {
      name: 'a Gateway API bundle older than v1.5.0 fails with the upgrade command',
      change: (s) => {
        s.crds.get('gateways.gateway.networking.k8s.io')!.bundleVersion = 'v1.2.1';
      },
      expect: /Gateway API v1\.2\.1 is older than v1\.5\.0/,
      fix: /standard-install\.yaml/,
    },
    {
      name: 'a GatewayClass of another controller is not ours',
      change: (s) => {
        s.gatewayClasses.set('eg', { controllerName: 'example.com/other' });
      },
      expect: /GatewayClass eg belongs to controller example\.com\/other/,
    },
    {
      name: 'a provider Deployment without running pods',
      change: (s) => {
        s.deployments.get('envoy-gateway-system/envoy-gateway')!.pods[0]!.running = false;
      },
      expect: /pods of envoy-gateway not running and ready: eg-1/,
      fix: /kubectl describe pod eg-1 -n envoy-gateway-system/,
    },
    {
      name: 'an unavailable LWS controller',
      change: (s) => {
        Object.assign(s.deployments.get('lws-system/lws-controller-manager')!, {
          available: false,
          problem: 'Available=False',
        });
      },
      expect: /Deployment lws-system\/lws-controller-manager is not Available: Available=False/,
      fix: /kubectl logs deployment\/lws-controller-manager -n lws-system/,
    },
    {
      name: "LWS installed to use cert-manager needs cert-manager's Deployments",
      change: (s) => {
        s.lwsWebhooks = lwsWebhooks({ service: true, injectCaFrom: 'lws-system/lws-serving-cert' });
        s.deployments.delete('cert-manager/cert-manager-cainjector');
      },
      expect: /Deployment cert-manager\/cert-manager-cainjector does not exist/,
      fix: /llmisvc deps install/,
    },
    {
      name: 'a webhook cert-manager should have filled but has not points at the cainjector',
      change: (s) => {
        s.lwsWebhooks = lwsWebhooks({ service: true, injectCaFrom: 'lws-system/lws-serving-cert' });
        for (const w of s.lwsWebhooks.get('lws-mutating-webhook-configuration')!.webhooks)
          w.hasCaBundle = false;
      },
      expect:
        /lws-mutating-webhook-configuration has no CA bundle for mleaderworkerset\.x-k8s\.io, mpod\.kb\.io: cert-manager's cainjector has not injected it from Certificate lws-system\/lws-serving-cert/,
      fix: /kubectl describe certificate lws-serving-cert -n lws-system && kubectl logs deployment\/cert-manager-cainjector/,
    },
    {
      name: "LWS's own certificate management without a CA bundle means its controller has not run",
      change: (s) => {
        withoutCertManager(s);
        const validating = s.lwsWebhooks.get('lws-validating-webhook-configuration')!;
        validating.webhooks[1]!.hasCaBundle = false;
      },
      expect:
        /lws-validating-webhook-configuration has no CA bundle for vpod\.kb\.io: the LWS controller writes it/,
      fix: /kubectl logs deployment\/lws-controller-manager -n lws-system/,
    },
    {
      name: 'a webhook Service that does not exist',
      change: (s) => {
        for (const config of s.lwsWebhooks.values())
          for (const w of config.webhooks) w.service = { ...w.service!, exists: false };
      },
      expect:
        /Service lws-system\/lws-webhook-service, which webhooks mleaderworkerset\.x-k8s\.io, mpod\.kb\.io, vleaderworkerset\.x-k8s\.io, vpod\.kb\.io call, does not exist/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const snapshot = healthySnapshot();
      c.change(snapshot);
      const result = evaluateCluster(snapshot, [ALL_FEATURES], 'envoy-gateway');
      const failed = result.checks.filter((check) => check.status === 'fail');
      if (c.expect.source === '^$') {
        assert.deepEqual(failed, []);
        return;
      }
      assert.equal(failed.length, 1, JSON.stringify(failed));
      assert.match(failed[0]!.message, c.expect);
      if (c.fix) assert.match(failed[0]!.fix ?? '', c.fix);
    });
  }

  it('only warns when just the pre-v1 InferencePool API is served', () => {
    const snapshot = healthySnapshot();
    snapshot.served.delete('inference.networking.k8s.io');
    snapshot.served.set('inference.networking.x-k8s.io', ['v1alpha2']);
    snapshot.crds.delete('inferencepools.inference.networking.k8s.io');
    const result = evaluateCluster(snapshot, [ALL_FEATURES], 'envoy-gateway');
    assert.equal(result.healthy, true);
    assert.ok(result.checks.some((c) => c.status === 'warn' && /pre-v1 InferencePool API/.test(c.message)));
  });

  it("checks the services' own Gateways when services are given", () => {
    const services: ServiceNeeds[] = [{ service: 'llm/a', needs: [], gateways: ['llm/edge'] }];
    const result = evaluateCluster(healthySnapshot(), services, 'envoy-gateway');
    const lb = result.checks.filter((c) => c.step === 'load-balancer');
    assert.equal(lb.length, 1);
    assert.equal(lb[0]!.status, 'warn');
    assert.match(lb[0]!.message, /Gateway llm\/edge does not exist yet/);
    assert.deepEqual(
      result.steps.map((s) => s.name),
      ['gateway-api', 'envoy-gateway'],
    );
  });

  describe('LeaderWorkerSet and cert-manager', () => {
    // Every feature, the multi-node worker (a LeaderWorkerSet) among them.
    const multiNode: ServiceNeeds[] = [ALL_FEATURES];
    const checksOf = (result: ReturnType<typeof evaluateCluster>, step: string) =>
      result.checks.filter((c) => c.step === step);

    it("LWS's default install (its own certificates) does not need cert-manager", () => {
      const snapshot = healthySnapshot();
      withoutCertManager(snapshot);
      const result = evaluateCluster(snapshot, multiNode, 'envoy-gateway');
      assert.deepEqual(failures(result.checks), []);
      assert.equal(result.healthy, true);
      const certManager = checksOf(result, 'cert-manager');
      assert.equal(certManager.length, 1);
      assert.equal(certManager[0]!.status, 'ok');
      assert.match(
        certManager[0]!.message,
        /^not required: .*no cert-manager\.io\/inject-ca-from annotation/,
      );
      assert.ok(
        checksOf(result, 'lws').some(
          (c) => c.status === 'ok' && c.message === 'Deployment lws-system/lws-controller-manager Available',
        ),
      );
    });

    it('LWS installed with cert-manager needs it, and passes when it runs', () => {
      const snapshot = healthySnapshot();
      snapshot.lwsWebhooks = lwsWebhooks({ service: true, injectCaFrom: 'lws-system/lws-serving-cert' });
      const result = evaluateCluster(snapshot, multiNode, 'envoy-gateway');
      assert.equal(result.healthy, true, JSON.stringify(failures(result.checks)));
      assert.ok(
        checksOf(result, 'cert-manager').some((c) =>
          /Deployment cert-manager\/cert-manager Available/.test(c.message),
        ),
      );
      assert.ok(
        checksOf(result, 'lws').some((c) =>
          /injected by cert-manager from lws-system\/lws-serving-cert/.test(c.message),
        ),
      );

      withoutCertManager(snapshot);
      const without = evaluateCluster(snapshot, multiNode, 'envoy-gateway');
      assert.equal(without.healthy, false);
      assert.deepEqual(
        [...new Set(without.checks.filter((c) => c.status === 'fail').map((c) => c.step))],
        ['cert-manager'],
      );
    });

    it('a controller outside the cluster (llmisvc dev cluster) needs no Deployment', () => {
      const snapshot = healthySnapshot();
      withoutCertManager(snapshot);
      snapshot.deployments.delete('lws-system/lws-controller-manager');
      snapshot.lwsWebhooks = lwsWebhooks({});
      const result = evaluateCluster(snapshot, multiNode, 'envoy-gateway');
      assert.deepEqual(failures(result.checks), []);
      assert.ok(
        checksOf(result, 'lws').some(
          (c) =>
            c.status === 'ok' &&
            /call https:\/\/127\.0\.0\.1:40123: the LWS controller runs outside the cluster/.test(c.message),
        ),
      );
    });

    it('without LWS, LWS and cert-manager both fail with the install command', () => {
      const snapshot = healthySnapshot();
      withoutCertManager(snapshot);
      snapshot.lwsWebhooks = new Map();
      snapshot.deployments.delete('lws-system/lws-controller-manager');
      snapshot.crds.delete('leaderworkersets.leaderworkerset.x-k8s.io');
      snapshot.served.delete('leaderworkerset.x-k8s.io');
      const result = evaluateCluster(snapshot, multiNode, 'envoy-gateway');
      const failed = result.checks.filter((c) => c.status === 'fail');
      assert.deepEqual([...new Set(failed.map((c) => c.step))], ['cert-manager', 'lws']);
      assert.ok(failed.every((c) => /llmisvc deps install/.test(c.fix ?? '')));
      assert.ok(failed.some((c) => /lws-validating-webhook-configuration does not exist/.test(c.message)));
    });
  });
});
