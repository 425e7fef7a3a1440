#!/usr/bin/env node
// Emits the protobuf codecs of the gRPC services the EPP speaks (Envoy's ext_proc, gRPC health) as TypeScript on
// `src/transport/protobuf-wire.ts`, from the .proto files vendored under proto/ (see proto/README.md). Run by
// `npm run build` before tsc; the output is committed (src/transport/generated/, never edited by hand) so that a plain
// `tsc` works in any checkout, and `generated-codecs.test.ts` fails when it is stale.
//
// protobufjs is used here for its .proto parser only, at build time: the codecs it emits need nothing but
// protobuf-wire.ts at run time. The output depends on nothing but the protos and this file (no dates, no paths), so
// two runs give the same bytes.
//
//   node scripts/generate-proto-codecs.mjs            write the files
//   node scripts/generate-proto-codecs.mjs --check    exit 1 naming each file that differs from what would be written
//   --out <dir>                                       write (or check) under <dir> instead of the repository
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const protoDir = join(root, 'proto');

/**
 * What to emit. `messages`: encoders and decoders of these messages and everything they contain. `views`: an extra
 * decoder of one message for one reader, which skips fields it never reads and decodes some types with a hand-written
 * reader instead (the EPP's header maps: a record of lower-case name → value rather than a list of objects).
 */
const OUTPUTS = [
  {
    file: 'src/transport/generated/ext-proc.ts',
    protos: ['envoy/service/ext_proc/v3/external_processor.proto'],
    messages: ['envoy.service.ext_proc.v3.ProcessingRequest', 'envoy.service.ext_proc.v3.ProcessingResponse'],
    views: [
      {
        prefix: 'Epp',
        message: 'envoy.service.ext_proc.v3.ProcessingRequest',
        skip: [
          'envoy.service.ext_proc.v3.ProcessingRequest.attributes',
          'envoy.service.ext_proc.v3.HttpHeaders.attributes',
          'envoy.config.core.v3.Metadata.typed_filter_metadata',
        ],
        readers: {
          'envoy.config.core.v3.HeaderMap': {
            fn: 'readHeaderRecord',
            type: 'Record<string, string>',
            from: '../header-record.js',
          },
        },
      },
    ],
  },
  {
    file: 'src/transport/generated/health.ts',
    protos: ['grpc/health/v1/health.proto'],
    messages: ['grpc.health.v1.HealthCheckRequest', 'grpc.health.v1.HealthCheckResponse'],
    views: [],
  },
];

function parseProtos(entries) {
  const pbRoot = new protobuf.Root();
  const files = [];
  const load = (file) => {
    if (files.includes(file)) return;
    files.push(file);
    // Our own walk of the imports rather than Root.load: protobufjs would substitute its bundled copies of the
    // google/protobuf files for the vendored ones.
    const parsed = protobuf.parse(readFileSync(join(protoDir, file), 'utf8'), pbRoot, { keepCase: true });
    for (const imported of [...(parsed.imports ?? []), ...(parsed.weakImports ?? [])]) load(imported);
  };
  for (const entry of entries) load(entry);
  pbRoot.resolveAll();
  return { pbRoot, files: files.sort() };
}

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

/** Per scalar type: wire type, TS type, how to read it, how to write a value `v` as field `n`, its default. */
const SCALARS = {
  double: {
    wire: FIXED64,
    ts: 'number',
    read: 'r.double()',
    write: (n, v) => `w.double(${n}, ${v})`,
    zero: '0',
  },
  float: {
    wire: FIXED32,
    ts: 'number',
    read: 'r.float()',
    write: (n, v) => `w.float(${n}, ${v})`,
    zero: '0',
  },
  int32: {
    wire: VARINT,
    ts: 'number',
    read: 'r.int32()',
    write: (n, v) => `w.tag(${n}, 0); w.int64(${v})`,
    zero: '0',
  },
  uint32: {
    wire: VARINT,
    ts: 'number',
    read: 'r.uint32()',
    write: (n, v) => `w.varintField(${n}, ${v} >>> 0)`,
    zero: '0',
  },
  sint32: {
    wire: VARINT,
    ts: 'number',
    read: 'r.sint()',
    write: (n, v) => `w.tag(${n}, 0); w.sint(${v})`,
    zero: '0',
  },
  int64: {
    wire: VARINT,
    ts: 'number',
    read: 'r.int64(true)',
    write: (n, v) => `w.tag(${n}, 0); w.int64(${v})`,
    zero: '0',
  },
  uint64: {
    wire: VARINT,
    ts: 'number',
    read: 'r.int64(false)',
    write: (n, v) => `w.tag(${n}, 0); w.int64(${v})`,
    zero: '0',
  },
  sint64: {
    wire: VARINT,
    ts: 'number',
    read: 'r.sint()',
    write: (n, v) => `w.tag(${n}, 0); w.sint(Number(${v}))`,
    zero: '0',
  },
  fixed32: {
    wire: FIXED32,
    ts: 'number',
    read: 'r.fixed32(false)',
    write: (n, v) => `w.fixed32(${n}, ${v}, false)`,
    zero: '0',
  },
  sfixed32: {
    wire: FIXED32,
    ts: 'number',
    read: 'r.fixed32(true)',
    write: (n, v) => `w.fixed32(${n}, ${v}, true)`,
    zero: '0',
  },
  fixed64: {
    wire: FIXED64,
    ts: 'number',
    read: 'r.fixed64(false)',
    write: (n, v) => `w.fixed64(${n}, ${v}, false)`,
    zero: '0',
  },
  sfixed64: {
    wire: FIXED64,
    ts: 'number',
    read: 'r.fixed64(true)',
    write: (n, v) => `w.fixed64(${n}, ${v}, true)`,
    zero: '0',
  },
  bool: {
    wire: VARINT,
    ts: 'boolean',
    read: 'r.varint() !== 0',
    write: (n, v) => `w.varintField(${n}, ${v} ? 1 : 0)`,
    zero: 'false',
  },
  string: {
    wire: LENGTH_DELIMITED,
    ts: 'string',
    read: 'r.string()',
    write: (n, v) => `w.string(${n}, ${v})`,
    zero: "''",
  },
  bytes: {
    wire: LENGTH_DELIMITED,
    ts: 'Buffer',
    read: 'r.bytes()',
    write: (n, v) => `w.bytes(${n}, ${v})`,
    zero: 'Buffer.alloc(0)',
  },
};

/** A type's TS name: its path below the package, `_`-joined (`ProcessingMode_BodySendMode`). */
function tsName(type) {
  const parts = [];
  for (let t = type; t && !(t instanceof protobuf.Root); t = t.parent) {
    if (t instanceof protobuf.Type || t instanceof protobuf.Enum) parts.unshift(t.name);
  }
  return parts.join('_');
}

/**
 * Field names as the objects carry them: the .proto's own (snake_case) names, as `@grpc/proto-loader` with `keepCase`
 * gave them, except in google.protobuf's well-known types, which keep the lowerCamelCase names proto-loader's bundled
 * copies of them have (`stringValue`, `listValue`): the shape the EPP and its clients were written against.
 */
function propName(field) {
  const fullName = field.parent.fullName;
  if (!fullName.startsWith('.google.protobuf.')) return field.name;
  return field.name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
}

/** A real oneof (not proto3 `optional`'s synthetic one). */
function realOneof(field) {
  const oneof = field.partOf;
  return oneof && !(oneof.oneof.length === 1 && oneof.name.startsWith('_')) ? oneof : undefined;
}

function generate(output) {
  const { pbRoot, files } = parseProtos(output.protos);
  const messageOrder = [];
  const enums = new Set();
  const visit = (type) => {
    if (messageOrder.includes(type)) return;
    messageOrder.push(type);
    for (const field of type.fieldsArray) {
      const resolved = field.resolvedType;
      if (resolved instanceof protobuf.Type) visit(resolved);
      else if (resolved instanceof protobuf.Enum) enums.add(resolved);
    }
  };
  const roots = output.messages.map((name) => pbRoot.lookupType(name));
  for (const type of roots) visit(type);

  const names = new Map();
  for (const t of [...messageOrder, ...enums]) {
    const name = tsName(t);
    if (names.has(name)) throw new Error(`two types are both named ${name} in TypeScript: rename in tsName`);
    names.set(name, t);
  }

  const out = [];
  const header = [
    '// Generated by scripts/generate-proto-codecs.mjs: do not edit (`npm run build` regenerates it).',
    `// From proto/: ${files.join(', ')}.`,
    '/* eslint-disable */',
    '',
  ];
  const imports = new Map([['../protobuf-wire.js', new Set(['Reader', 'Writer'])]]);
  for (const view of output.views) {
    for (const reader of Object.values(view.readers)) {
      if (!imports.has(reader.from)) imports.set(reader.from, new Set());
      imports.get(reader.from).add(reader.fn);
    }
  }
  for (const [from, symbols] of imports)
    out.push(`import { ${[...symbols].sort().join(', ')} } from '${from}';`);
  out.push('');

  // Enums: name → number, as a const object; fields take a number or a name, decoders give numbers.
  for (const e of [...enums].sort((a, b) => a.fullName.localeCompare(b.fullName))) {
    const name = tsName(e);
    out.push(`/** \`${e.fullName.slice(1)}\` */`);
    out.push(`export const ${name} = {`);
    for (const [key, value] of Object.entries(e.values)) out.push(`  ${key}: ${value},`);
    out.push('} as const;');
    out.push(`export type ${name}Name = keyof typeof ${name};`);
    out.push('');
  }

  const fieldTs = (field, override) => {
    let base;
    if (override) base = override.type;
    else if (field.resolvedType instanceof protobuf.Type) base = tsName(field.resolvedType);
    else if (field.resolvedType instanceof protobuf.Enum) {
      const n = tsName(field.resolvedType);
      base = `number | ${n}Name`;
    } else if (SCALARS[field.type]) base = SCALARS[field.type].ts;
    else throw new Error(`unsupported field type ${field.type} of ${field.fullName}`);
    if (field.map) return `Record<string, ${base.includes('|') ? `(${base})` : base}>`;
    if (field.repeated) return `${base.includes('|') ? `(${base})` : base}[]`;
    return base;
  };

  // Interfaces of the full messages.
  for (const type of messageOrder)
    emitInterface(
      out,
      type,
      tsName(type),
      (f) => fieldTs(f),
      () => true,
    );

  // Readers and writers of the full messages.
  for (const type of messageOrder) {
    out.push(
      ...reader(
        type,
        `read${tsName(type)}`,
        tsName(type),
        (t) => `read${tsName(t)}`,
        () => true,
        {},
      ),
    );
    out.push(...writer(type));
  }

  for (const type of roots) {
    const name = tsName(type);
    out.push(`/** Decodes a \`${type.fullName.slice(1)}\`; malformed bytes throw. */`);
    out.push(`export function decode${name}(bytes: Uint8Array): ${name} {`);
    out.push(`  return read${name}(Reader.of(bytes));`);
    out.push('}', '');
    out.push(`/** Encodes a \`${type.fullName.slice(1)}\`; a property the message does not have throws. */`);
    out.push(`export function encode${name}(message: ${name}): Buffer {`);
    out.push('  const w = new Writer(256);');
    out.push(`  write${name}(w, message);`);
    out.push('  return w.finish();');
    out.push('}', '');
  }

  for (const view of output.views) emitView(out, pbRoot, view, fieldTs);
  return `${[...header, ...out]
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`;
}

function emitInterface(out, type, name, fieldTs, keep) {
  out.push(`/** \`${type.fullName.slice(1)}\` */`);
  out.push(`export interface ${name} {`);
  for (const field of type.fieldsArray) {
    if (!keep(field)) continue;
    out.push(`  ${propName(field)}?: ${fieldTs(field)};`);
  }
  for (const oneof of type.oneofsArray) {
    if (!realOneof(oneof.fieldsArray[0])) continue;
    const members = oneof.fieldsArray.filter(keep).map((f) => `'${propName(f)}'`);
    if (members.length)
      out.push(
        `  /** Which member of the oneof \`${oneof.name}\` is set. */`,
        `  ${oneof.name}?: ${members.join(' | ')};`,
      );
  }
  out.push('}', '');
}

/** Lines of a `key` read inside a map entry loop, as an expression for its value. */
function readValue(field, readerOf) {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return `${readerOf(resolved)}(r.sub())`;
  if (resolved instanceof protobuf.Enum) return 'r.int32()';
  return SCALARS[field.type].read;
}

function wireOf(field) {
  if (field.resolvedType instanceof protobuf.Type) return LENGTH_DELIMITED;
  if (field.resolvedType instanceof protobuf.Enum) return VARINT;
  return SCALARS[field.type].wire;
}

function reader(type, fnName, tsType, readerOf, keep, overrides) {
  const lines = [
    `function ${fnName}(r: Reader): ${tsType} {`,
    `  const m: ${tsType} = {};`,
    '  while (r.more()) {',
  ];
  lines.push('    const tag = r.varint();', '    switch (tag) {');
  for (const field of type.fieldsArray) {
    if (!keep(field)) continue;
    const prop = propName(field);
    const override = field.resolvedType && overrides[field.resolvedType.fullName.slice(1)];
    const value = override ? `${override.fn}(r.sub())` : readValue(field, readerOf);
    if (field.map) {
      const keyScalar = SCALARS[field.keyType];
      const valueWire = override ? LENGTH_DELIMITED : wireOf(field);
      const zero =
        field.resolvedType instanceof protobuf.Type
          ? '{}'
          : field.resolvedType instanceof protobuf.Enum
            ? '0'
            : SCALARS[field.type].zero;
      lines.push(`      case ${field.id * 8 + LENGTH_DELIMITED}: {`);
      lines.push('        const outer = r.enter();');
      lines.push(`        let key: ${keyScalar.ts} = ${keyScalar.zero};`);
      lines.push(`        let value: ${override ? override.type : 'any'} = undefined;`);
      lines.push('        while (r.more()) {');
      lines.push('          const t = r.varint();');
      lines.push(`          if (t === ${8 + keyScalar.wire}) key = ${keyScalar.read};`);
      lines.push(`          else if (t === ${16 + valueWire}) value = ${value};`);
      lines.push('          else r.skip(t & 7);');
      lines.push('        }');
      lines.push('        r.leave(outer);');
      lines.push(`        setEntry((m.${prop} ??= {}), String(key), value ?? ${zero});`);
      lines.push('        break;');
      lines.push('      }');
      continue;
    }
    const wire = override ? LENGTH_DELIMITED : wireOf(field);
    if (field.repeated) {
      lines.push(`      case ${field.id * 8 + wire}:`);
      lines.push(`        (m.${prop} ??= []).push(${value});`);
      lines.push('        break;');
      if (wire !== LENGTH_DELIMITED) {
        // Packed (proto3's default for numbers); decoders accept both forms, as protobuf asks.
        lines.push(`      case ${field.id * 8 + LENGTH_DELIMITED}: {`);
        lines.push('        const outer = r.enter();');
        lines.push(`        const list = (m.${prop} ??= []);`);
        lines.push(`        while (r.more()) list.push(${value});`);
        lines.push('        r.leave(outer);');
        lines.push('        break;');
        lines.push('      }');
      }
      continue;
    }
    lines.push(`      case ${field.id * 8 + wire}:`);
    const oneof = realOneof(field);
    if (oneof) {
      // The last member read wins, as in protobuf: an earlier one is dropped.
      lines.push(`        if (m.${oneof.name} !== undefined) delete m[m.${oneof.name}];`);
      lines.push(`        m.${prop} = ${value};`);
      lines.push(`        m.${oneof.name} = '${prop}';`);
    } else lines.push(`        m.${prop} = ${value};`);
    lines.push('        break;');
  }
  lines.push('      default:', '        r.skip(tag & 7);', '    }', '  }', '  return m;', '}', '');
  return lines;
}

function writeLines(field, v, indent) {
  const n = field.id;
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type)
    return [
      `${indent}{`,
      `${indent}  const s = w.open(${n});`,
      `${indent}  write${tsName(resolved)}(w, ${v});`,
      `${indent}  w.close(s);`,
      `${indent}}`,
    ];
  if (resolved instanceof protobuf.Enum)
    return [
      `${indent}w.tag(${n}, 0); w.int64(enumNumber(${tsName(resolved)}, ${v}, '${field.fullName.slice(1)}'));`,
    ];
  return [`${indent}${SCALARS[field.type].write(n, v)};`];
}

/** The test for "not the default": proto3 leaves defaults off the wire unless the field has presence. */
function nonDefault(field, v) {
  if (field.resolvedType instanceof protobuf.Type) return 'true';
  if (field.resolvedType instanceof protobuf.Enum)
    return `${v} !== 0 && ${v} !== ${JSON.stringify(Object.keys(field.resolvedType.values).find((k) => field.resolvedType.values[k] === 0) ?? '')}`;
  if (field.type === 'bytes' || field.type === 'string') return `${v}.length > 0`;
  if (field.type === 'bool') return v;
  return `Number(${v}) !== 0`;
}

function writer(type) {
  const name = tsName(type);
  const lines = [`function write${name}(w: Writer, m: ${name}): void {`];
  lines.push(
    '  for (const key in m) {',
    '    const v: any = (m as any)[key];',
    '    if (v === undefined || v === null) continue;',
    '    switch (key) {',
  );
  for (const field of type.fieldsArray) {
    const prop = propName(field);
    lines.push(`      case '${prop}':`);
    if (field.map) {
      const keyScalar = SCALARS[field.keyType];
      const keyValue =
        keyScalar.ts === 'string' ? 'k' : keyScalar.ts === 'boolean' ? "k === 'true'" : 'Number(k)';
      lines.push('        for (const k of Object.keys(v)) {', `          const s = w.open(${field.id});`);
      lines.push(`          ${keyScalar.write(1, keyValue)};`);
      const valueField = {
        id: 2,
        resolvedType: field.resolvedType,
        type: field.type,
        fullName: field.fullName,
      };
      lines.push(...writeLines(valueField, 'v[k]', '          '));
      lines.push('          w.close(s);', '        }');
    } else if (field.repeated) {
      const wire = wireOf(field);
      if (wire === VARINT) {
        // Packed, as proto3 writes repeated numbers.
        lines.push('        if (v.length > 0) {', `          const s = w.open(${field.id});`);
        const item =
          field.resolvedType instanceof protobuf.Enum
            ? `w.int64(enumNumber(${tsName(field.resolvedType)}, x, '${field.fullName.slice(1)}'))`
            : field.type === 'bool'
              ? 'w.varint(x ? 1 : 0)'
              : field.type.startsWith('sint')
                ? 'w.sint(Number(x))'
                : 'w.int64(x)';
        lines.push(`          for (const x of v) ${item};`, '          w.close(s);', '        }');
      } else if (wire === LENGTH_DELIMITED) {
        lines.push('        for (const x of v) {', ...writeLines(field, 'x', '          '), '        }');
      } else
        throw new Error(`repeated fixed-size field ${field.fullName}: not supported by this generator yet`);
    } else if (realOneof(field) || field.options?.proto3_optional) {
      lines.push(...writeLines(field, 'v', '        '));
    } else {
      lines.push(
        `        if (${nonDefault(field, 'v')}) {`,
        ...writeLines(field, 'v', '          '),
        '        }',
      );
    }
    lines.push('        break;');
  }
  for (const oneof of type.oneofsArray) {
    if (realOneof(oneof.fieldsArray[0])) lines.push(`      case '${oneof.name}':`, '        break;');
  }
  lines.push(
    '      default:',
    `        throw new Error(\`${type.fullName.slice(1)} has no field \${key}\`);`,
  );
  lines.push('    }', '  }', '}', '');
  return lines;
}

/** A view: the messages below `view.message` that it changes get reader functions (and types) of their own. */
function emitView(out, pbRoot, view, fieldTs) {
  const skip = new Set(view.skip);
  for (const name of skip) {
    const at = name.lastIndexOf('.');
    if (!pbRoot.lookupType(name.slice(0, at)).fields[name.slice(at + 1)])
      throw new Error(`view skips ${name}, which does not exist`);
  }
  const overrides = view.readers;
  const keep = (field) => !skip.has(field.fullName.slice(1));
  // Which messages the view changes: those with a skipped field, or a field (transitively) of an overridden type.
  const changed = new Set();
  const changes = (type, path = new Set()) => {
    if (changed.has(type)) return true;
    if (path.has(type)) return false;
    path.add(type);
    let result = false;
    for (const field of type.fieldsArray) {
      if (!keep(field)) result = true;
      else if (field.resolvedType && overrides[field.resolvedType.fullName.slice(1)]) result = true;
      else if (field.resolvedType instanceof protobuf.Type && changes(field.resolvedType, path))
        result = true;
    }
    path.delete(type);
    if (result) changed.add(type);
    return result;
  };
  const top = pbRoot.lookupType(view.message);
  changes(top);
  const viewName = (t) => (changed.has(t) ? `${view.prefix}${tsName(t)}` : tsName(t));
  const viewFieldTs = (field) => {
    const override = field.resolvedType && overrides[field.resolvedType.fullName.slice(1)];
    if (override) return fieldTs(field, override);
    const ts = fieldTs(field);
    return field.resolvedType && changed.has(field.resolvedType)
      ? ts.replace(tsName(field.resolvedType), viewName(field.resolvedType))
      : ts;
  };
  const ordered = [...changed].sort((a, b) => a.fullName.localeCompare(b.fullName));
  for (const type of ordered) emitInterface(out, type, viewName(type), viewFieldTs, keep);
  for (const type of ordered)
    out.push(
      ...reader(type, `read${viewName(type)}`, viewName(type), (t) => `read${viewName(t)}`, keep, overrides),
    );
  const skipped = view.skip.map((s) => `\`${s}\``).join(', ');
  out.push(`/**`);
  out.push(
    ` * Decodes a \`${top.fullName.slice(1)}\` for the ${view.prefix} view: ${skipped} skipped unread;`,
  );
  for (const [type, r] of Object.entries(overrides))
    out.push(` * \`${type}\` read by \`${r.fn}\` (${r.type}).`);
  out.push(' */');
  out.push(`export function decode${viewName(top)}(bytes: Uint8Array): ${viewName(top)} {`);
  out.push(`  return read${viewName(top)}(Reader.of(bytes));`, '}', '');
}

const helpers = `
/** An enum field's number from a number or a name; an unknown name throws (proto-loader accepted both). */
function enumNumber(values: Record<string, number>, value: number | string, field: string): number {
  if (typeof value === 'number') return value;
  const n = Object.hasOwn(values, value) ? values[value] : undefined;
  if (n === undefined) throw new Error(\`\${field}: unknown enum value \${value}\`);
  return n;
}

/** Sets a map entry; a key named \`__proto__\` becomes an own property, not the object's prototype. */
function setEntry(map: Record<string, any>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(map, key, { value, enumerable: true, writable: true, configurable: true });
  else map[key] = value;
}
`;

function render(output) {
  const text = generate(output);
  const uses = (fn) => text.includes(`${fn}(`);
  let extra = '';
  // Only the helpers a file uses, so the compiler's unused checks stay quiet without a disable.
  for (const block of helpers.split('\n/** ').filter(Boolean)) {
    const fn = /function (\w+)/.exec(block)?.[1];
    if (fn && uses(fn)) extra += `\n/** ${block.trim()}\n`;
  }
  return text + extra;
}

const args = process.argv.slice(2);
const check = args.includes('--check');
const outIndex = args.indexOf('--out');
const base = outIndex !== -1 ? args[outIndex + 1] : root;
let stale = 0;
for (const output of OUTPUTS) {
  const text = render(output);
  const path = join(base, output.file);
  if (check) {
    let current = '';
    try {
      current = readFileSync(path, 'utf8');
    } catch {
      // missing counts as stale
    }
    if (current !== text) {
      console.error(
        `${output.file} is stale: run \`npm run build\` (or node scripts/generate-proto-codecs.mjs)`,
      );
      stale++;
    }
  } else {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
  }
}
process.exit(stale ? 1 : 0);
