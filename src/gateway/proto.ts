/**
 * @module gateway/proto
 * grpc-js service definitions of the gRPC services the EPP speaks, for its clients (the builtin gateway's ext_proc
 * client, tests and benchmarks, health clients): Envoy's `envoy.service.ext_proc.v3.ExternalProcessor` and
 * `grpc.health.v1.Health`. Messages go through the codecs generated from the vendored protos (`transport/`), the same
 * the EPP serves with, so no schema is loaded at run time.
 */
import * as grpc from '@grpc/grpc-js';
import {
  decodeHealthCheckRequest,
  decodeHealthCheckResponse,
  decodeProcessingRequest,
  decodeProcessingResponse,
  encodeHealthCheckRequest,
  encodeHealthCheckResponse,
  encodeProcessingRequest,
  encodeProcessingResponse,
} from '../transport/index.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- grpc-js's definitions are untyped at this level */
const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

const extProcService: grpc.ServiceDefinition = {
  Process: {
    path: '/envoy.service.ext_proc.v3.ExternalProcessor/Process',
    requestStream: true,
    responseStream: true,
    requestSerialize: (m: any) => encodeProcessingRequest(m),
    requestDeserialize: (b: Buffer) => decodeProcessingRequest(b),
    responseSerialize: (m: any) => encodeProcessingResponse(m),
    responseDeserialize: (b: Buffer) => decodeProcessingResponse(b),
    originalName: 'process',
  },
};

const healthMethod = (name: string, responseStream: boolean): grpc.MethodDefinition<any, any> => ({
  path: `/grpc.health.v1.Health/${name}`,
  requestStream: false,
  responseStream,
  requestSerialize: (m: any) => encodeHealthCheckRequest(m),
  requestDeserialize: (b: Buffer) => decodeHealthCheckRequest(b),
  responseSerialize: (m: any) => asBuffer(encodeHealthCheckResponse(m)),
  responseDeserialize: (b: Buffer) => decodeHealthCheckResponse(b),
  originalName: name.toLowerCase(),
});

const healthService: grpc.ServiceDefinition = {
  Check: healthMethod('Check', false),
  Watch: healthMethod('Watch', true),
};

export interface Protos {
  /** Service definition of `envoy.service.ext_proc.v3.ExternalProcessor`. */
  extProcService: grpc.ServiceDefinition;
  /** Client constructor for it. */
  ExtProcClient: grpc.ServiceClientConstructor;
  /** `grpc.health.v1.Health`; statuses by name (`'SERVING'`). */
  healthService: grpc.ServiceDefinition;
  HealthClient: grpc.ServiceClientConstructor;
}

let cached: Protos | undefined;

/** The service definitions and client constructors (built once per process). */
export function loadProtos(): Protos {
  cached ??= {
    extProcService,
    ExtProcClient: grpc.makeGenericClientConstructor(extProcService, 'ExternalProcessor'),
    healthService,
    HealthClient: grpc.makeGenericClientConstructor(healthService, 'Health'),
  };
  return cached;
}

export { BodySendMode } from '../transport/index.js';
