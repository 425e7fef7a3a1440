import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CRITICALITY_ANNOTATION, convertObject, validateObject } from './index.js';

// A loose view of the converted objects, for reading nested fields in assertions.
type Loose = { [key: string]: Loose } & { apiVersion?: string };

const v1alpha1 = {
  apiVersion: 'serving.kserve.io/v1alpha1',
  kind: 'LLMInferenceService',
  metadata: { name: 'svc', namespace: 'ns' },
  spec: {
    model: { uri: 'hf://org/model', name: 'org/model', criticality: 'Sheddable' },
    router: {
      scheduler: {
        pool: {
          spec: {
            selector: { app: 'svc' },
            targetPortNumber: 8000,
            extensionRef: { name: 'svc-epp-service', portNumber: 9002, failureMode: 'FailClose' },
          },
        },
      },
    },
  },
};

describe('conversion v1alpha1 ⇄ v1alpha2', () => {
  it('refuses a hand-written target-ports annotation that is not a JSON array of ports, naming it', () => {
    for (const text of ['garbage', '5', '{"number":1}', '[1]', '[null]']) {
      const annotated = {
        ...v1alpha1,
        metadata: { ...v1alpha1.metadata, annotations: { 'serving.kserve.io/v1alpha2-target-ports': text } },
      };
      assert.throws(
        () => convertObject(annotated, 'v1alpha2'),
        /metadata\.annotations\["serving\.kserve\.io\/v1alpha2-target-ports"\]: expected a JSON array of target ports/,
        text,
      );
    }
  });

  it('moves criticality to an annotation and the pool to the GIE v1 shape', () => {
    const v2 = convertObject(v1alpha1, 'v1alpha2') as unknown as Loose;
    assert.equal(v2.apiVersion, 'serving.kserve.io/v1alpha2');
    assert.equal(v2['metadata']!['annotations']![CRITICALITY_ANNOTATION], 'Sheddable');
    assert.deepEqual(v2['spec']!['model'], { uri: 'hf://org/model', name: 'org/model' });
    assert.deepEqual(v2['spec']!['router']!['scheduler']!['pool']!['spec'], {
      selector: { matchLabels: { app: 'svc' } },
      targetPorts: [{ number: 8000 }],
      endpointPickerRef: { name: 'svc-epp-service', port: { number: 9002 }, failureMode: 'FailClose' },
    });
    assert.deepEqual(validateObject(v2), []);
  });

  it('round-trips v1alpha1 → v1alpha2 → v1alpha1 unchanged', () => {
    assert.deepEqual(convertObject(convertObject(v1alpha1, 'v1alpha2'), 'v1alpha1'), v1alpha1);
  });

  it('round-trips v1alpha2 with several target ports through v1alpha1', () => {
    const v2 = convertObject(v1alpha1, 'v1alpha2') as unknown as Loose;
    v2['spec']!['router']!['scheduler']!['pool']!['spec']!['targetPorts'] = [
      { number: 8000 },
      { number: 8001 },
    ] as never;
    const back = convertObject(convertObject(v2, 'v1alpha1'), 'v1alpha2');
    assert.deepEqual(back, v2);
  });

  it('keeps route.group and route.weight as they are: both versions have them, as in KServe', () => {
    const grouped = {
      ...v1alpha1,
      spec: { ...v1alpha1.spec, router: { ...v1alpha1.spec.router, route: { group: 'qwen', weight: 90 } } },
    };
    const v2 = convertObject(grouped, 'v1alpha2') as unknown as Loose;
    assert.deepEqual(v2['spec']!['router']!['route'], { group: 'qwen', weight: 90 });
    assert.deepEqual(validateObject(v2), []);
    assert.deepEqual(validateObject(grouped), []);
    assert.deepEqual(convertObject(v2, 'v1alpha1'), grouped);
  });

  it('leaves objects already in the target version as they are', () => {
    assert.deepEqual(convertObject(v1alpha1, 'v1alpha1'), v1alpha1);
  });
});
