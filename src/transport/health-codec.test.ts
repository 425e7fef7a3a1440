import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  decodeHealthCheckRequest,
  decodeHealthCheckResponse,
  encodeHealthCheckRequest,
  encodeHealthCheckResponse,
  ServingStatus,
} from './health-codec.js';
import { healthReference } from '../../test/harness/proto-reference.js';

/** The reference: protobufjs reading the vendored proto/grpc/health/v1/health.proto. */
const reference = healthReference();

test('health codec: requests decode as protobufjs decodes them, responses encode to what it reads back', () => {
  for (const service of ['', 'envoy.service.ext_proc.v3.ExternalProcessor', 'ünïcode', 'x'.repeat(300)]) {
    const wire = reference.healthCheckRequest.encode({ service });
    assert.deepEqual(decodeHealthCheckRequest(wire), { service });
  }
  for (const status of Object.keys(ServingStatus) as (keyof typeof ServingStatus)[]) {
    const decoded = reference.healthCheckResponse.decode(encodeHealthCheckResponse({ status }));
    // protobufjs leaves the zero value (UNKNOWN) out.
    assert.equal(decoded['status'] ?? 0, ServingStatus[status]);
    assert.deepEqual(
      decodeHealthCheckResponse(reference.healthCheckResponse.encode({ status: ServingStatus[status] })),
      {
        status,
      },
    );
  }
  assert.deepEqual(reference.healthCheckRequest.decode(encodeHealthCheckRequest({ service: 'readiness' })), {
    service: 'readiness',
  });
  // A status this proto does not name (a newer server's) reads as UNKNOWN.
  assert.deepEqual(decodeHealthCheckResponse(Buffer.from([0x08, 0x09])), { status: 'UNKNOWN' });
});

test('health codec: unknown fields are skipped; a truncated request throws', () => {
  // field 2 varint 150, field 3 fixed64, then service "ab"
  const wire = Buffer.from([0x10, 0x96, 0x01, 0x19, 1, 2, 3, 4, 5, 6, 7, 8, 0x0a, 2, 0x61, 0x62]);
  assert.deepEqual(decodeHealthCheckRequest(wire), { service: 'ab' });
  assert.throws(() => decodeHealthCheckRequest(Buffer.from([0x0a, 5, 0x61])), /past its message/);
  assert.throws(() => decodeHealthCheckRequest(Buffer.from([0x10, 0x96])), /truncated/);
});
