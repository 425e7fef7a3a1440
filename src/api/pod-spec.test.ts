import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { podSpecFields } from './generated/pod-spec-fields.js';
import { podSpecProblems, QUANTITY_FIELDS } from './pod-spec.js';

function problems(pod: unknown): string[] {
  return podSpecProblems(pod, 'spec.template').map((p) => `${p.path}: ${p.message}`);
}

const main = (resources: unknown) => ({ containers: [{ name: 'main', resources }] });

describe("PodSpec quantities: integers or strings, as KServe's CRD (int-or-string)", () => {
  it('accepts whole numbers where manifests write them (audit repro int-quantity)', () => {
    assert.deepEqual(problems(main({ limits: { cpu: 16, 'nvidia.com/gpu': 8 } })), []);
    assert.deepEqual(
      problems({
        ...main({ requests: { cpu: 1, memory: '4Gi', 'rdma/roce_gdr': 8 }, limits: { 'nvidia.com/gpu': 1 } }),
        overhead: { cpu: 1 },
        volumes: [{ name: 'dshm', emptyDir: { medium: 'Memory', sizeLimit: 1073741824 } }],
      }),
      [],
    );
  });

  it('accepts every quantity string Kubernetes does, and templates that render later', () => {
    for (const value of ['500m', '1.5', '10Gi', '1e3', '+1', '{{ .Spec.Something }}'])
      assert.deepEqual(problems(main({ limits: { cpu: value } })), [], value);
  });

  it('checks the less common quantity fields too: divisor, ephemeral volume claims, pod-level resources', () => {
    const env = [{ name: 'CPUS', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: 1 } } }];
    const ephemeral = {
      name: 'scratch',
      ephemeral: { volumeClaimTemplate: { spec: { resources: { requests: { storage: 100 } } } } },
    };
    assert.deepEqual(
      problems({
        containers: [{ name: 'main', env }],
        volumes: [ephemeral],
        resources: { limits: { cpu: 2 } },
      }),
      [],
    );
    assert.deepEqual(
      problems({
        containers: [
          { name: 'main', env: [{ ...env[0], valueFrom: { resourceFieldRef: { divisor: 'x' } } }] },
        ],
      }),
      [
        'spec.template.containers[0].env[0].valueFrom.resourceFieldRef.divisor: must be a quantity such as 16, "500m" or "10Gi", not "x"',
      ],
    );
  });

  it('rejects what is not a quantity, naming the field', () => {
    assert.deepEqual(
      problems({
        ...main({ limits: { cpu: 'lots', memory: 0.5, 'nvidia.com/gpu': true } }),
        volumes: [{ name: 'v', emptyDir: { sizeLimit: { gi: 1 } } }],
      }),
      [
        'spec.template.containers[0].resources.limits.cpu: must be a quantity such as 16, "500m" or "10Gi", not "lots"',
        'spec.template.containers[0].resources.limits.memory: must be a quantity such as 16, "500m" or "10Gi"; write fractions as a string ("500m")',
        'spec.template.containers[0].resources.limits.nvidia.com/gpu: must be a quantity such as 16, "500m" or "10Gi"',
        'spec.template.volumes[0].emptyDir.sizeLimit: must be a quantity such as 16, "500m" or "10Gi"',
      ],
    );
  });

  it('still wants strings in the string fields beside them', () => {
    assert.deepEqual(problems({ containers: [{ name: 'main', image: 16 }] }), [
      'spec.template.containers[0].image: must be a string',
    ]);
  });

  it('marks every quantity field in the generated table (npm run generate)', () => {
    for (const [type, fields] of Object.entries(QUANTITY_FIELDS)) {
      for (const field of fields) {
        assert.match(podSpecFields[type]?.[field] ?? 'missing', /Quantity/, `${type}.${field}`);
      }
    }
  });
});
