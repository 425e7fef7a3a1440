/**
 * @module transport/http2-request-head
 * A request's header block as the HTTP/2 layer reads it, field by field from the HPACK decoder: the fields the gRPC
 * layer needs, and whether the block breaks a rule of RFC 9113 §8.2–8.3 (a malformed request, refused with
 * RST_STREAM(PROTOCOL_ERROR)).
 */

/** The request fields the gRPC layer needs; the other request headers are decoded (HPACK needs it) and dropped. */
export interface RequestHead {
  method: string;
  path: string;
  contentType: string;
  /** The gRPC deadline header (`grpc-timeout`, e.g. `100m`) as sent; empty when there is none. */
  grpcTimeout: string;
}

const METHOD = 1;
const SCHEME = 2;
const PATH = 4;
const AUTHORITY = 8;
const PSEUDO_HEADER_BITS = new Map([
  [':method', METHOD],
  [':scheme', SCHEME],
  [':path', PATH],
  [':authority', AUTHORITY],
]);
const REQUIRED_PSEUDO_BITS = METHOD | SCHEME | PATH;
const UPPERCASE = /[A-Z]/;
/** Fields that belong to HTTP/1 connections and are malformed in HTTP/2 (RFC 9113 §8.2.2). */
const CONNECTION_SPECIFIC = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Reads a request's header block field by field (HPACK's callback, so it must not throw): keeps what the gRPC layer
 * needs and notes the first rule of RFC 9113 §8.2–8.3 the block breaks, for the connection to refuse the stream.
 */
export class RequestHeadReader {
  head: RequestHead = { method: '', path: '', contentType: '', grpcTimeout: '' };
  /** The pseudo-header fields seen (bits), whether a regular field came yet, the content-length (-1: none). */
  pseudo = 0;
  regular = false;
  contentLength = -1;
  /** Why the block is malformed; empty if it is not. */
  malformed = '';

  /** Has the pseudo-header fields a request needs (:method, :scheme and a non-empty :path; CONNECT is not served). */
  complete(): boolean {
    return (this.pseudo & REQUIRED_PSEUDO_BITS) === REQUIRED_PSEUDO_BITS && this.head.path !== '';
  }

  reset(): void {
    this.head = { method: '', path: '', contentType: '', grpcTimeout: '' };
    this.pseudo = 0;
    this.regular = false;
    this.contentLength = -1;
    this.malformed = '';
  }

  readonly onField = (name: string, value: string): void => {
    if (this.malformed) return;
    if (UPPERCASE.test(name)) return this.fail(`uppercase field name ${name}`);
    if (name.startsWith(':')) {
      if (this.regular) return this.fail(`${name} after a regular field`);
      const bit = PSEUDO_HEADER_BITS.get(name) ?? 0;
      if (bit === 0) return this.fail(`pseudo-header ${name} in a request`);
      if (this.pseudo & bit) return this.fail(`${name} twice`);
      this.pseudo |= bit;
      if (bit === METHOD) this.head.method = value;
      else if (bit === PATH) this.head.path = value;
      return;
    }
    this.regular = true;
    if (name === 'content-type') this.head.contentType = value;
    else if (name === 'grpc-timeout') this.head.grpcTimeout = value;
    else if (name === 'te' && value !== 'trailers') this.fail(`te: ${value}`);
    else if (name === 'content-length') {
      if (!/^\d{1,15}$/.test(value)) return this.fail(`content-length: ${value}`);
      this.contentLength = Number(value);
    } else if (CONNECTION_SPECIFIC.has(name)) this.fail(`connection-specific field ${name}`);
  };

  private fail(reason: string): void {
    this.malformed = reason;
  }
}
