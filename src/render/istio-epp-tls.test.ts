import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LLMInferenceService } from '../api/index.js';
import {
  DEFAULT_API_VERSIONS,
  DEFAULT_RENDER_OPTIONS,
  eppServesTls,
  ISTIO_NETWORKING_V1,
  renderService,
  type KubeObject,
} from './index.js';

const WITH_ISTIO: ReadonlySet<string> = new Set([...DEFAULT_API_VERSIONS, ISTIO_NETWORKING_V1]);

function render(spec: LLMInferenceService['spec'], apiVersions: ReadonlySet<string>): KubeObject[] {
  const service: LLMInferenceService = {
    apiVersion: 'serving.kserve.io/v1alpha2',
    kind: 'LLMInferenceService',
    metadata: { name: 'chat', namespace: 'ns', uid: 'u-1' },
    spec,
  };
  return renderService({ service, configs: [], apiVersions, options: DEFAULT_RENDER_OPTIONS }).children;
}

const rules = (children: KubeObject[]) => children.filter((c) => c.kind === 'DestinationRule');

describe('the DestinationRule for an Istio gateway to reach the TLS Endpoint Picker', () => {
  it("on Istio: TLS to the picker's gRPC port only, unverified, for the Service the pool names", () => {
    const [rule, ...more] = rules(
      render({ model: { uri: 'hf://m' }, router: { scheduler: {}, route: {} } }, WITH_ISTIO),
    );
    assert.equal(more.length, 0);
    assert.equal(rule!.apiVersion, 'networking.istio.io/v1');
    assert.equal((rule!.metadata as { name: string }).name, 'chat-epp-service');
    assert.deepEqual(rule!['spec'], {
      host: 'chat-epp-service',
      trafficPolicy: {
        portLevelSettings: [{ port: { number: 9002 }, tls: { mode: 'SIMPLE', insecureSkipVerify: true } }],
      },
    });
    const owners = (rule!.metadata as { ownerReferences: { kind: string }[] }).ownerReferences;
    assert.equal(owners[0]!.kind, 'LLMInferenceService', 'owned, so it goes with the service');
  });

  it('nowhere else: without Istio, with a plaintext picker, or with no picker of its own', () => {
    assert.deepEqual(
      rules(render({ model: { uri: 'hf://m' }, router: { scheduler: {} } }, DEFAULT_API_VERSIONS)),
      [],
    );
    const plaintext = {
      containers: [{ name: 'main', args: ['--pool-name', 'p', '--secure-serving=false'] }],
    };
    assert.deepEqual(
      rules(render({ model: { uri: 'hf://m' }, router: { scheduler: { template: plaintext } } }, WITH_ISTIO)),
      [],
    );
    // A pool pointed at a picker Service the service does not own — here another namespace's, by its full name — gets
    // no rule: its host would be that Service.
    const elsewhere = {
      pool: {
        spec: { endpointPickerRef: { name: 'payments.bank.svc.cluster.local', port: { number: 443 } } },
      },
    };
    assert.deepEqual(
      rules(render({ model: { uri: 'hf://m' }, router: { scheduler: elsewhere } }, WITH_ISTIO)),
      [],
    );
    const shared = { pool: { ref: { name: 'someone-elses-pool' } } };
    assert.deepEqual(
      rules(render({ model: { uri: 'hf://m' }, router: { scheduler: shared } }, WITH_ISTIO)),
      [],
    );
  });
});

describe('eppServesTls: the picker CLI rule', () => {
  const cases: [string[], boolean][] = [
    [['--pool-name', 'p'], true],
    [['--pool-name=p'], true],
    [['--endpoints', '127.0.0.1:8000'], false],
    [['--endpoints', 'a:1', '--cert-path', '/tls'], true],
    [['--pool-name', 'p', '--secure-serving=false'], false],
    [['--pool-name', 'p', '--secure-serving', 'false'], false],
    [['--pool-name', 'p', '--secure-serving', 'false', '--secure-serving'], true],
    [['--endpoints', 'a:1', '--secure-serving'], true],
    [['--endpoints', 'a:1', '--secure-serving', '--grpc-port', '9002'], true],
    [['--endpoints', 'a:1', '--secure-serving=true'], true],
  ];
  for (const [args, tls] of cases)
    it(`${args.join(' ')} → ${tls}`, () => assert.equal(eppServesTls(args), tls));
});
