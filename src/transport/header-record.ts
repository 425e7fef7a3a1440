/**
 * @module transport/header-record
 * The EPP's reader of Envoy's `config.core.v3.HeaderMap`, used by the generated `decodeEppProcessingRequest` in place
 * of the generic decoder: a record of lower-case name → value instead of a list of `HeaderValue` objects, with no
 * object or Buffer view per header. Every request through the gateway carries two header maps, each of a dozen or more
 * headers (see bench/results/epp/ for what this saves).
 */
import { LENGTH_DELIMITED, type Reader } from './protobuf-wire.js';

const HEADER_VALUE = (1 << 3) | LENGTH_DELIMITED;
const HEADER_KEY = (1 << 3) | LENGTH_DELIMITED;
const HEADER_STRING_VALUE = (2 << 3) | LENGTH_DELIMITED;
const HEADER_RAW_VALUE = (3 << 3) | LENGTH_DELIMITED;

/**
 * A `HeaderMap` as the EPP reads it: lower-case name → value, the value being `raw_value` as Latin-1 when set (what
 * Envoy sends) and `value` otherwise; a header without a name is skipped and a repeated name keeps its last value.
 */
export function readHeaderRecord(r: Reader): Record<string, string> {
  const out: Record<string, string> = {};
  while (r.more()) {
    const tag = r.varint();
    if (tag !== HEADER_VALUE) {
      r.skip(tag & 7);
      continue;
    }
    const outerEnd = r.enter();
    let key = '';
    let value = '';
    let raw = '';
    while (r.more()) {
      const t = r.varint();
      if (t === HEADER_KEY) key = r.string();
      else if (t === HEADER_STRING_VALUE) value = r.string();
      else if (t === HEADER_RAW_VALUE) raw = r.latin1();
      else r.skip(t & 7);
    }
    r.leave(outerEnd);
    if (!key) continue;
    const name = key.toLowerCase();
    // A header named __proto__ is a header like any other, not the record's prototype.
    if (name === '__proto__')
      Object.defineProperty(out, name, {
        value: raw || value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    else out[name] = raw || value;
  }
  return out;
}
