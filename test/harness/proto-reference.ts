/**
 * @module test/harness/proto-reference
 * The reference our generated codecs are tested against: protobufjs (an independent implementation) with the .proto
 * files vendored under proto/, read as they are. Objects convert as `@grpc/proto-loader` did (`keepCase`, enums as
 * numbers, oneof names set, defaults left out), so both sides compare as plain data.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { REPO_ROOT } from './repo.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- dynamic protobuf objects */
export interface ReferenceCodec {
  decode(bytes: Uint8Array): Record<string, any>;
  encode(message: object): Uint8Array;
}

function loadRoot(entry: string): protobuf.Root {
  const root = new protobuf.Root();
  const seen = new Set<string>();
  const load = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const parsed = protobuf.parse(readFileSync(join(REPO_ROOT, 'proto', file), 'utf8'), root, {
      keepCase: true,
    });
    for (const imported of [...(parsed.imports ?? []), ...(parsed.weakImports ?? [])]) load(imported);
  };
  load(entry);
  root.resolveAll();
  return root;
}

/**
 * protobufjs keeps the vendored google/protobuf names (snake_case with keepCase); proto-loader's objects, and ours,
 * use lowerCamelCase there. These convert a Struct/Value subtree between the two.
 */
const WELL_KNOWN = new Set(['google.protobuf.Struct', 'google.protobuf.Value', 'google.protobuf.ListValue']);

function codec(root: protobuf.Root, name: string): ReferenceCodec {
  const type = root.lookupType(name);
  const conversion: protobuf.IConversionOptions = {
    longs: Number,
    enums: Number,
    defaults: false,
    oneofs: true,
  };
  return {
    decode: (bytes) => renameWellKnown(type, type.toObject(type.decode(bytes), conversion), camel),
    encode: (message) => type.encode(type.fromObject(renameWellKnown(type, message, snake))).finish(),
  };
}

const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** Walks `value` along `type`, renaming the fields of well-known types with `rename`. */
function renameWellKnown(type: protobuf.Type, value: any, rename: (s: string) => string): any {
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value) || value instanceof Uint8Array)
    return value;
  const wellKnown = WELL_KNOWN.has(type.fullName.slice(1));
  const out: Record<string, any> = {};
  for (const [key, v] of Object.entries(value)) {
    const field = type.fields[key] ?? type.fields[snake(key)] ?? type.fields[camel(key)];
    const renamed = wellKnown ? rename(key) : key;
    if (!field) {
      // A oneof's name: its value is a field name.
      out[renamed] = wellKnown && typeof v === 'string' ? rename(v) : v;
      continue;
    }
    const sub = field.resolvedType;
    if (!(sub instanceof protobuf.Type)) out[renamed] = v;
    else if (field.map)
      out[renamed] = Object.fromEntries(
        Object.entries(v as object).map(([k, x]) => [k, renameWellKnown(sub, x, rename)]),
      );
    else if (field.repeated) out[renamed] = (v as any[]).map((x) => renameWellKnown(sub, x, rename));
    else out[renamed] = renameWellKnown(sub, v, rename);
  }
  return out;
}

let extProc: protobuf.Root | undefined;
let health: protobuf.Root | undefined;

/** protobufjs codecs of the ext_proc messages, from proto/envoy/service/ext_proc/v3/external_processor.proto. */
export function extProcReference(): {
  processingRequest: ReferenceCodec;
  processingResponse: ReferenceCodec;
} {
  extProc ??= loadRoot('envoy/service/ext_proc/v3/external_processor.proto');
  return {
    processingRequest: codec(extProc, 'envoy.service.ext_proc.v3.ProcessingRequest'),
    processingResponse: codec(extProc, 'envoy.service.ext_proc.v3.ProcessingResponse'),
  };
}

/** protobufjs codecs of the health messages, from proto/grpc/health/v1/health.proto. */
export function healthReference(): {
  healthCheckRequest: ReferenceCodec;
  healthCheckResponse: ReferenceCodec;
} {
  health ??= loadRoot('grpc/health/v1/health.proto');
  return {
    healthCheckRequest: codec(health, 'grpc.health.v1.HealthCheckRequest'),
    healthCheckResponse: codec(health, 'grpc.health.v1.HealthCheckResponse'),
  };
}
