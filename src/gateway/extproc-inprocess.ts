/**
 * @module gateway/extproc-inprocess
 * An ext_proc channel to an EPP running in the same process (`llmisvc up`, where the builtin gateway and the EPP
 * share one Node process): each `Process` stream is handed to the EPP's stream handler directly — the very handler
 * its gRPC server runs, with the same messages in the same order — without HTTP/2 framing, protobuf and a loopback
 * socket in between. Profiled under load in `bench:peers`, the gRPC hop (grpc-js on the gateway side and the EPP's
 * transport) was the largest single cost of the builtin gateway's data path, larger than the routing decision itself.
 *
 * Messages in go in the shape the EPP's codec decodes them to (`transport/ext-proc-codec`: headers as a record of
 * lower-case name → Latin-1 value, the oneof's name in `request`); messages out are the EPP's response objects, which
 * have the shape `pickEndpoint` reads from grpc-js. The EPP's answers reach the client on a microtask, as they would
 * from a socket, so neither side runs inside the other's callback.
 */
import { EventEmitter } from 'node:events';
import type { GrpcCall, GrpcCallHandlers } from '../transport/index.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- ext_proc messages are dynamic objects on both sides */
type Message = Record<string, any>;

/** The EPP's ext_proc stream handler (`createProcessHandler`, as the EPP's gRPC server runs it). */
export type ExtProcStreamHandler = (call: GrpcCall<Message>) => GrpcCallHandlers<Message>;

/** One ext_proc stream as `pickEndpoint` uses it: what grpc-js's duplex call and the in-process one both offer. */
export interface ExtProcStream {
  on(event: 'data', listener: (message: Message) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  write(message: Message): unknown;
  /** Half-closes: the gateway sends no more. */
  end(): unknown;
  /** Abandons the stream. */
  cancel(): void;
}

/** Where a gateway opens ext_proc streams: a grpc-js client to a remote EPP, or an EPP in this process. */
export interface ExtProcChannel {
  Process(options?: { deadline?: number }): ExtProcStream;
  close(): void;
}

const REQUEST_HEADERS = ['request_headers', 'response_headers'] as const;
const REQUEST_BODIES = ['request_body', 'response_body'] as const;
const REQUEST_TRAILERS = ['request_trailers', 'response_trailers'] as const;

/** `HeaderMap` as the gateway builds it (a list of key/raw_value) → the EPP's record of lower-case name → value. */
function headerRecord(map: Message | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of map?.['headers'] ?? []) {
    if (!h?.key) continue;
    const raw = h.raw_value;
    out[String(h.key).toLowerCase()] =
      raw && raw.length > 0 ? Buffer.from(raw).toString('latin1') : String(h.value ?? '');
  }
  return out;
}

/** A `ProcessingRequest` as the gateway writes it → as the EPP's codec would have decoded it. */
export function asDecodedRequest(message: Message): Message {
  const out: Message = {};
  for (const name of REQUEST_HEADERS) {
    const m = message[name];
    if (!m) continue;
    out[name] = { headers: headerRecord(m['headers']), end_of_stream: Boolean(m['end_of_stream']) };
    out['request'] = name;
  }
  for (const name of REQUEST_BODIES) {
    const m = message[name];
    if (!m) continue;
    out[name] = { body: m['body'] ?? Buffer.alloc(0), end_of_stream: Boolean(m['end_of_stream']) };
    out['request'] = name;
  }
  for (const name of REQUEST_TRAILERS) {
    const m = message[name];
    if (!m) continue;
    out[name] = { trailers: headerRecord(m['trailers']) };
    out['request'] = name;
  }
  if (message['metadata_context']) out['metadata_context'] = message['metadata_context'];
  if (message['protocol_config']) out['protocol_config'] = message['protocol_config'];
  return out;
}

class InProcessStream extends EventEmitter implements ExtProcStream {
  private handlers: GrpcCallHandlers<Message> | undefined;
  /** Neither side can send once this is set. */
  private over = false;
  private halfClosed = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(handler: ExtProcStreamHandler, deadline: number | undefined) {
    super();
    const call: GrpcCall<Message> = {
      send: (message) => {
        if (this.over) return;
        queueMicrotask(() => this.emit('data', message));
      },
      end: () => {
        if (this.over) return;
        this.finish();
        queueMicrotask(() => this.emit('end'));
      },
      isOpen: () => !this.over,
    };
    if (deadline !== undefined) {
      this.timer = setTimeout(
        () => this.fail(new Error('deadline exceeded')),
        Math.max(0, deadline - Date.now()),
      );
    }
    try {
      this.handlers = handler(call);
    } catch (error) {
      this.fail(error as Error);
    }
  }

  write(message: Message): boolean {
    if (this.over || this.halfClosed) return false;
    this.handlers?.message(asDecodedRequest(message));
    return true;
  }

  end(): void {
    if (this.over || this.halfClosed) return;
    this.halfClosed = true;
    this.handlers?.end();
  }

  cancel(): void {
    if (this.over) return;
    this.finish();
    this.handlers?.abort();
  }

  /** Ends the stream with an error, as a gRPC call fails. */
  fail(error: Error): void {
    if (this.over) return;
    this.finish();
    this.handlers?.abort();
    queueMicrotask(() => this.emit('error', error));
  }

  private finish(): void {
    this.over = true;
    clearTimeout(this.timer);
  }
}

/** A channel whose streams go to `handler` in this process; `deadline` (ms since the epoch) bounds each stream. */
export function inProcessExtProcChannel(handler: ExtProcStreamHandler): ExtProcChannel {
  let closed = false;
  return {
    Process(options = {}) {
      const stream = new InProcessStream(handler, options.deadline);
      if (closed) stream.fail(new Error('the endpoint picker in this process has stopped'));
      return stream;
    },
    close() {
      closed = true;
    },
  };
}
