/**
 * @module gateway/proto
 * Loads the schemas of the gRPC services the EPP speaks, for its clients (the ext_proc client of the tests and
 * benchmarks, health clients) and as the reference its hand-written codecs are tested against; the EPP's server
 * itself loads none of this. Envoy's `envoy.service.ext_proc.v3.ExternalProcessor` comes from the protos that
 * `@grpc/grpc-js-xds` vendors, `grpc.health.v1.Health` from a tiny descriptor written here, since no installed
 * package ships it.
 *
 * The vendored ext_proc proto predates Envoy's full-duplex body mode, so the pieces that mode needs are added to the
 * loaded schema before the gRPC definitions are built: `BodyMutation.streamed_response` (`StreamedBodyResponse`),
 * `ProcessingRequest.protocol_config` (`ProtocolConfiguration`, which tells us the gateway's body mode) and the
 * `FULL_DUPLEX_STREAMED` enum value. Field numbers are those of Envoy's current API.
 */
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join } from 'node:path';
import { existsSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

const require = createRequire(import.meta.url);

/** Options shared by server and client: Envoy's snake_case names, enums as numbers, oneof discriminators. */
const loaderOptions: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: Number,
  defaults: false,
  oneofs: true,
};

function depsDir(): string {
  const pkg = require.resolve('@grpc/grpc-js-xds/package.json');
  return join(dirname(pkg), 'deps');
}

function loadExtProcRoot(): protobuf.Root {
  const deps = depsDir();
  const includeDirs = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(deps, d));
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string) => {
    if (isAbsolute(target)) return target;
    for (const dir of includeDirs) {
      const full = join(dir, target);
      if (existsSync(full)) return full;
    }
    return target;
  };
  root.loadSync('envoy/service/ext_proc/v3/external_processor.proto', { keepCase: true });
  root.resolveAll();
  addFullDuplexFields(root);
  return root;
}

function addFullDuplexFields(root: protobuf.Root): void {
  const ns = root.lookup('envoy.service.ext_proc.v3') as protobuf.Namespace;
  const bodyMutation = root.lookupType('envoy.service.ext_proc.v3.BodyMutation');
  if (!bodyMutation.fields['streamed_response']) {
    const streamed = new protobuf.Type('StreamedBodyResponse')
      .add(new protobuf.Field('body', 1, 'bytes'))
      .add(new protobuf.Field('end_of_stream', 2, 'bool'));
    ns.add(streamed);
    const field = new protobuf.Field('streamed_response', 3, 'StreamedBodyResponse');
    bodyMutation.add(field);
    bodyMutation.oneofs['mutation']!.add(field);
  }
  const mode = root.lookupEnum('envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode');
  if (mode.values['FULL_DUPLEX_STREAMED'] === undefined) mode.add('FULL_DUPLEX_STREAMED', 4);
  const request = root.lookupType('envoy.service.ext_proc.v3.ProcessingRequest');
  if (!request.fields['protocol_config']) {
    const config = new protobuf.Type('ProtocolConfiguration')
      .add(
        new protobuf.Field(
          'request_body_mode',
          1,
          'envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode',
        ),
      )
      .add(
        new protobuf.Field(
          'response_body_mode',
          2,
          'envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode',
        ),
      )
      .add(new protobuf.Field('send_body_without_waiting_for_header_response', 3, 'bool'));
    ns.add(config);
    request.add(new protobuf.Field('protocol_config', 11, 'ProtocolConfiguration'));
  }
  root.resolveAll();
}

/** `grpc.health.v1` as a protobufjs JSON descriptor (the proto is four messages long). */
const healthDescriptor: protobuf.INamespace = {
  nested: {
    grpc: {
      nested: {
        health: {
          nested: {
            v1: {
              nested: {
                HealthCheckRequest: { fields: { service: { type: 'string', id: 1 } } },
                HealthCheckResponse: {
                  fields: { status: { type: 'ServingStatus', id: 1 } },
                  nested: {
                    ServingStatus: { values: { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } },
                  },
                },
                Health: {
                  methods: {
                    Check: {
                      requestType: 'HealthCheckRequest',
                      responseType: 'HealthCheckResponse',
                      comment: '',
                    },
                    Watch: {
                      requestType: 'HealthCheckRequest',
                      responseType: 'HealthCheckResponse',
                      responseStream: true,
                      comment: '',
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};

/** Encodes and decodes one message type as plain objects, the way `@grpc/proto-loader` does for grpc-js. */
export interface MessageCodec {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- dynamic protobuf objects
  decode(bytes: Uint8Array): Record<string, any>;
  encode(message: object): Uint8Array;
}

function codec(type: protobuf.Type, enums: typeof Number | typeof String): MessageCodec {
  const conversion: protobuf.IConversionOptions = { longs: String, enums, defaults: false, oneofs: true };
  return {
    decode: (bytes) => type.toObject(type.decode(bytes), conversion),
    encode: (message) => type.encode(type.fromObject(message)).finish(),
  };
}

export interface Protos {
  /** Service definition of `envoy.service.ext_proc.v3.ExternalProcessor`. */
  extProcService: grpc.ServiceDefinition;
  /** Client constructor for it. */
  ExtProcClient: grpc.ServiceClientConstructor;
  healthService: grpc.ServiceDefinition;
  HealthClient: grpc.ServiceClientConstructor;
  /**
   * protobufjs codecs of the ext_proc messages: the reference for `ext-proc-codec.ts`.
   */
  processingRequest: MessageCodec;
  processingResponse: MessageCodec;
  /** protobufjs codecs of the health messages: the reference for `health-codec.ts`. */
  healthCheckRequest: MessageCodec;
  healthCheckResponse: MessageCodec;
}

let cached: Protos | undefined;

/** Loads (once per process) the service definitions. */
export function loadProtos(): Protos {
  if (cached) return cached;
  const extProcRoot = loadExtProcRoot();
  const healthRoot = protobuf.Root.fromJSON(healthDescriptor);
  const extProc = grpc.loadPackageDefinition(protoLoader.fromJSON(extProcRoot.toJSON(), loaderOptions));
  const health = grpc.loadPackageDefinition(
    protoLoader.fromJSON(healthDescriptor, { ...loaderOptions, enums: String }),
  );
  const ExtProcClient = lookup(extProc, 'envoy.service.ext_proc.v3.ExternalProcessor');
  const HealthClient = lookup(health, 'grpc.health.v1.Health');
  cached = {
    extProcService: ExtProcClient.service,
    ExtProcClient,
    healthService: HealthClient.service,
    HealthClient,
    processingRequest: codec(extProcRoot.lookupType('envoy.service.ext_proc.v3.ProcessingRequest'), Number),
    processingResponse: codec(extProcRoot.lookupType('envoy.service.ext_proc.v3.ProcessingResponse'), Number),
    healthCheckRequest: codec(healthRoot.lookupType('grpc.health.v1.HealthCheckRequest'), String),
    healthCheckResponse: codec(healthRoot.lookupType('grpc.health.v1.HealthCheckResponse'), String),
  };
  return cached;
}

function lookup(root: grpc.GrpcObject, path: string): grpc.ServiceClientConstructor {
  let node: unknown = root;
  for (const part of path.split('.')) node = (node as Record<string, unknown>)[part];
  return node as grpc.ServiceClientConstructor;
}

export { BodySendMode } from '../transport/index.js';
