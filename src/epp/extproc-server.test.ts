import { test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import pino from 'pino';
import { loadEndpointPickerConfig, prefillDecodeEndpointPickerConfig } from './config.js';
import { Datastore } from './datastore.js';
import { emptyModelDirectory } from './director.js';
import { EppMetrics } from './epp-metrics.js';
import { DESTINATION_HEADER, createProcessHandler } from './extproc-server.js';
import { EPP_ROUTING_HEADERS } from './routing-headers.js';
import { BodySendMode, type GrpcCall } from '../transport/index.js';
import { emptyMetrics, type PostResponse } from './types.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- ext_proc messages are dynamic protobuf objects */

/** An EPP's stream handler over a prefill and a decode endpoint; `open` starts a stream driven by hand. */
function picker(postResponse: PostResponse, servedByHeader = false, bodyBudgetBytes?: number) {
  const datastore = new Datastore();
  datastore.setEndpoints([
    { address: '10.0.0.1:8000', role: 'prefill' },
    { address: '10.0.0.2:8000', role: 'decode' },
  ]);
  for (const e of datastore.endpoints())
    datastore.updateMetrics(e.address, { ...emptyMetrics(), updatedAt: Date.now() });
  const config = loadEndpointPickerConfig(prefillDecodeEndpointPickerConfig);
  const withHook = { ...config, scheduler: { ...config.scheduler, postResponse: [postResponse] } };
  const metrics = new EppMetrics(datastore);
  const processStream = createProcessHandler({
    datastore,
    config: () => withHook,
    directory: () => emptyModelDirectory,
    metrics,
    logger: pino({ level: 'silent' }),
    bodyLimitBytes: 1 << 20,
    bodyBudgetBytes,
    servedByHeader,
  });
  const open = () => {
    const sent: any[] = [];
    let ended = false;
    const call: GrpcCall<any> = {
      send: (m) => sent.push(m),
      end: () => (ended = true),
      isOpen: () => !ended,
    };
    return { handlers: processStream(call), sent, ended: () => ended };
  };
  return { open, datastore, metrics };
}

/** One ext_proc stream driven by hand over a prefill and a decode endpoint: its handlers and what they sent. */
function stream(postResponse: PostResponse, servedByHeader = false) {
  const { open, datastore } = picker(postResponse, servedByHeader);
  return { ...open(), datastore };
}

test('ext_proc: after a prefill/decode response, post-response hooks hear both endpoints, once each', () => {
  const heard: string[] = [];
  const { handlers, sent, datastore } = stream({
    type: 'recorder',
    name: 'recorder',
    postResponse: (_request, endpoint) => heard.push(`${endpoint.role} ${endpoint.address}`),
  });
  const prompt = 'a long document, '.repeat(200); // well over the P/D threshold of 256 uncached characters
  handlers.message({
    request: 'request_headers',
    protocol_config: { request_body_mode: BodySendMode.FULL_DUPLEX_STREAMED },
    request_headers: { headers: { ':path': '/v1/completions' } },
  });
  handlers.message({
    request: 'request_body',
    request_body: { body: Buffer.from(JSON.stringify({ model: 'm', prompt })), end_of_stream: true },
  });
  const setHeaders = sent[0].request_headers.response.header_mutation.set_headers;
  const value = (key: string) =>
    setHeaders.find((h: any) => h.header.key === key)?.header.raw_value.toString();
  assert.equal(value(DESTINATION_HEADER), '10.0.0.2:8000');
  assert.equal(value('x-prefiller-host-port'), '10.0.0.1:8000');
  assert.equal(datastore.get('10.0.0.2:8000')!.inFlight, 1);
  assert.deepEqual(heard, [], 'nothing is heard before the response');

  handlers.message({ request: 'response_headers', response_headers: { end_of_stream: true } });
  assert.deepEqual(heard.sort(), ['decode 10.0.0.2:8000', 'prefill 10.0.0.1:8000']);
  assert.equal(datastore.get('10.0.0.2:8000')!.inFlight, 0);
  handlers.abort(); // Envoy's reset at the end of the request: already finished, nothing is heard twice
  assert.equal(heard.length, 2);
});

test('ext_proc: the call ends once the response has passed through, not before', () => {
  const { handlers, sent, datastore, ended } = stream({ type: 'none', name: 'none', postResponse: () => {} });
  handlers.message({
    request: 'request_headers',
    protocol_config: {
      request_body_mode: BodySendMode.FULL_DUPLEX_STREAMED,
      response_body_mode: BodySendMode.FULL_DUPLEX_STREAMED,
    },
    request_headers: { headers: { ':path': '/v1/completions' } },
  });
  handlers.message({
    request: 'request_body',
    request_body: { body: Buffer.from(JSON.stringify({ model: 'm', prompt: 'hi' })), end_of_stream: true },
  });
  handlers.message({ request: 'response_headers', response_headers: {} });
  handlers.message({
    request: 'response_body',
    response_body: { body: Buffer.from('{"id'), end_of_stream: false },
  });
  assert.equal(ended(), false, 'the response is still streaming');
  assert.equal(datastore.get('10.0.0.2:8000')!.inFlight, 1);
  handlers.message({
    request: 'response_body',
    response_body: { body: Buffer.from('":1}'), end_of_stream: true },
  });
  assert.equal(ended(), true, 'nothing is left for Envoy to send: the EPP ends the call (OK)');
  assert.equal(datastore.get('10.0.0.2:8000')!.inFlight, 0);
  const last = sent.at(-1).response_body.response.body_mutation.streamed_response;
  assert.deepEqual(
    [last.body.toString(), last.end_of_stream],
    ['":1}', true],
    'after echoing the last chunk',
  );
});

/** Routes one request on a new stream of `p` (full duplex) and returns the stream and its response-observer token. */
function routeOne(p: ReturnType<typeof picker>) {
  const routing = p.open();
  routing.handlers.message({
    request: 'request_headers',
    protocol_config: { request_body_mode: BodySendMode.FULL_DUPLEX_STREAMED },
    request_headers: { headers: { ':path': '/v1/completions' } },
  });
  routing.handlers.message({
    request: 'request_body',
    request_body: { body: Buffer.from(JSON.stringify({ model: 'm', prompt: 'hi' })), end_of_stream: true },
  });
  const fields = routing.sent[0].dynamic_metadata.fields['llmisvc.request'].structValue.fields;
  return { routing, token: fields.token.stringValue as string, servedBy: fields.served_by?.stringValue };
}

test('ext_proc: a request that ends with no answer or a 5xx marks its server for a prompt scrape; a 200 does not', () => {
  const decode = '10.0.0.2:8000';
  const routed = () => {
    const p = picker({ type: 'none', name: 'none', postResponse: () => {} });
    const s = { ...routeOne(p).routing, datastore: p.datastore };
    assert.equal(s.datastore.get(decode)!.inFlight, 1);
    return s;
  };
  const answered = (status: string) => {
    const s = routed();
    s.handlers.message({ request: 'response_headers', response_headers: { headers: { ':status': status } } });
    s.handlers.end(); // body mode NONE: the gateway closes the call when the response is through
    return s.datastore;
  };
  assert.equal(answered('200').lastTroubleAt(decode), -Infinity);
  assert.equal(answered('404').lastTroubleAt(decode), -Infinity, 'a 4xx says nothing about the server');
  assert.notEqual(answered('503').lastTroubleAt(decode), -Infinity);
  const refused = routed();
  refused.handlers.abort(); // the gateway could not reach the server: no response headers ever pass
  assert.notEqual(refused.datastore.lastTroubleAt(decode), -Infinity);
  assert.equal(refused.datastore.get(decode)!.inFlight, 0);
});

test('ext_proc: every answer that lets a request through removes the routing headers the EPP does not set', () => {
  const forged = { 'x-prefiller-host-port': '127.0.0.1:1', 'x-gateway-destination-endpoint': '127.0.0.1:1' };
  const mutationOf = (message: any) =>
    (message.request_headers ?? message.request_body).response.header_mutation as {
      set_headers: { header: { key: string } }[];
      remove_headers: string[];
    };
  const run = (mode: number, prompt: string | undefined) => {
    const { handlers, sent } = stream({ type: 'none', name: 'none', postResponse: () => {} });
    handlers.message({
      request: 'request_headers',
      protocol_config: { request_body_mode: mode },
      request_headers: {
        headers: { ':path': prompt === undefined ? '/v1/models' : '/v1/completions', ...forged },
        end_of_stream: prompt === undefined,
      },
    });
    if (prompt !== undefined)
      handlers.message({
        request: 'request_body',
        request_body: { body: Buffer.from(JSON.stringify({ model: 'm', prompt })), end_of_stream: true },
      });
    return sent;
  };
  const long = 'a long document, '.repeat(200);
  for (const [label, mode, prompt] of [
    ['full duplex, short prompt', BodySendMode.FULL_DUPLEX_STREAMED, 'hi'],
    ['full duplex, P/D', BodySendMode.FULL_DUPLEX_STREAMED, long],
    ['buffered, short prompt', BodySendMode.BUFFERED, 'hi'],
    ['buffered, P/D', BodySendMode.BUFFERED, long],
    ['headers only', BodySendMode.FULL_DUPLEX_STREAMED, undefined],
  ] as const) {
    const sent = run(mode, prompt);
    const withMutation = sent.filter(
      (m) => m.request_headers?.response || m.request_body?.response?.header_mutation,
    );
    assert.ok(withMutation.length > 0, label);
    for (const message of withMutation) {
      const mutation = mutationOf(message);
      const set = new Set((mutation.set_headers ?? []).map((o) => o.header.key));
      const removed = new Set(mutation.remove_headers);
      for (const name of EPP_ROUTING_HEADERS)
        assert.ok(
          set.has(name) !== removed.has(name),
          `${label}: ${name} is either set or removed, not both`,
        );
    }
    const decided = mutationOf(withMutation.at(-1));
    const setKeys = decided.set_headers.map((o) => o.header.key);
    assert.ok(setKeys.includes(DESTINATION_HEADER), label);
    assert.equal(setKeys.includes('x-prefiller-host-port'), prompt === long, label);
  }
});

test('ext_proc: with servedByHeader the response names the endpoint that served it in x-served-by', () => {
  for (const enabled of [true, false]) {
    const { handlers, sent } = stream({ type: 'none', name: 'none', postResponse: () => {} }, enabled);
    handlers.message({
      request: 'request_headers',
      protocol_config: { request_body_mode: BodySendMode.FULL_DUPLEX_STREAMED },
      request_headers: { headers: { ':path': '/v1/completions' } },
    });
    handlers.message({
      request: 'request_body',
      request_body: { body: Buffer.from(JSON.stringify({ model: 'm', prompt: 'hi' })), end_of_stream: true },
    });
    handlers.message({ request: 'response_headers', response_headers: { end_of_stream: true } });
    const answer = sent.find((m) => m.response_headers)!.response_headers.response;
    const set = answer.header_mutation?.set_headers ?? [];
    assert.deepEqual(
      set.map((h: any) => [h.header.key, h.header.raw_value.toString()]),
      // Static endpoints are named by their address; in Kubernetes mode by their pod.
      enabled ? [['x-served-by', '10.0.0.2:8000']] : [],
    );
  }
});

/** A response observer's one message (observability mode), as Envoy sends it with the forwarded metadata. */
function observerMessage(status: string, tokenField: unknown, observabilityMode = true): any {
  return {
    request: 'response_headers',
    observability_mode: observabilityMode,
    metadata_context:
      tokenField === undefined
        ? {}
        : { filter_metadata: { 'llmisvc.request': { fields: { token: tokenField } } } },
    response_headers: { headers: { ':status': status } },
  };
}

test('ext_proc: a response observer brings the status of the request its token names; the routing stream ends it', () => {
  const decode = '10.0.0.2:8000';
  for (const [status, trouble] of [
    ['200', false],
    ['503', true],
  ] as const) {
    const p = picker({ type: 'none', name: 'none', postResponse: () => {} }, true);
    const { routing, token, servedBy } = routeOne(p);
    assert.match(token, /^[0-9a-f-]{36}$/, 'an unguessable token');
    assert.equal(servedBy, decode, 'the pod the gateway names in x-served-by');
    const observer = p.open();
    observer.handlers.message(observerMessage(status, { stringValue: token }));
    assert.equal(observer.ended(), true, 'the observer stream ends at once');
    assert.deepEqual(observer.sent, [], 'Envoy reads no answer in observability mode');
    assert.equal(p.datastore.get(decode)!.inFlight, 1, 'in flight until the routing stream ends');
    routing.handlers.end();
    assert.equal(p.datastore.get(decode)!.inFlight, 0);
    assert.equal(p.datastore.lastTroubleAt(decode) !== -Infinity, trouble, `status ${status}`);
  }
  const plain = picker({ type: 'none', name: 'none', postResponse: () => {} });
  assert.equal(routeOne(plain).servedBy, undefined, 'no pod name without servedByHeader');
});

test('ext_proc (hostile): an observer naming no request, a forged one or a finished one changes nothing', () => {
  const decode = '10.0.0.2:8000';
  const p = picker({ type: 'none', name: 'none', postResponse: () => {} });
  const { routing, token } = routeOne(p);
  for (const field of [
    undefined,
    { stringValue: crypto.randomUUID() },
    { stringValue: token.toUpperCase() },
    { numberValue: 1 },
    { stringValue: 'x'.repeat(100_000) },
  ]) {
    const observer = p.open();
    observer.handlers.message(observerMessage('200', field));
    assert.equal(observer.ended(), true);
    // A later message on the ended stream is ignored.
    observer.handlers.message(observerMessage('200', { stringValue: token }));
  }
  // Not in observability mode (a gateway that waits): answered so the response goes on, then ended.
  const waiting = p.open();
  waiting.handlers.message(observerMessage('200', { stringValue: 'nothing' }, false));
  assert.deepEqual(waiting.sent, [{ response_headers: { response: {} } }]);
  assert.equal(waiting.ended(), true);
  routing.handlers.end();
  // No observer spoke for it: the response's status is unknown, which marks the server for a prompt scrape.
  assert.notEqual(p.datastore.lastTroubleAt(decode), -Infinity);
  assert.equal(p.datastore.get(decode)!.inFlight, 0);
  // Its token after the request is over: nothing left to name.
  const late = p.open();
  late.handlers.message(observerMessage('503', { stringValue: token }));
  assert.equal(late.ended(), true);
  assert.equal(p.datastore.get(decode)!.inFlight, 0);
});

test('ext_proc (hostile): a stream that routed a body sent without request headers is not taken for an observer', () => {
  const decode = '10.0.0.2:8000';
  const p = picker({ type: 'none', name: 'none', postResponse: () => {} });
  const s = p.open();
  s.handlers.message({
    request: 'request_body',
    request_body: { body: Buffer.from(JSON.stringify({ model: 'm', prompt: 'hi' })), end_of_stream: true },
  });
  assert.equal(p.datastore.get(decode)!.inFlight, 1);
  s.handlers.message(observerMessage('200', undefined));
  assert.equal(s.ended(), false, 'its request is still in flight');
  s.handlers.end();
  assert.equal(p.datastore.get(decode)!.inFlight, 0);
});

test('ext_proc (hostile): bodies held by all streams are bounded, and each stream gives its share back', () => {
  const p = picker({ type: 'none', name: 'none', postResponse: () => undefined }, false, 1 << 20);
  const start = () => {
    const s = p.open();
    s.handlers.message({
      request: 'request_headers',
      protocol_config: { request_body_mode: BodySendMode.FULL_DUPLEX_STREAMED },
      request_headers: { headers: { ':path': '/v1/completions' } },
    });
    return s;
  };
  const piece = (s: ReturnType<typeof start>, bytes: number) =>
    s.handlers.message({ request: 'request_body', request_body: { body: Buffer.alloc(bytes, 0x20) } });
  // Three streams that stop short of their end hold 3 × 400 KB against a 1 MiB budget: the third is refused 503.
  const held = [start(), start(), start()];
  for (const s of held) piece(s, 400_000);
  assert.equal(held[0]!.sent.length, 0);
  assert.equal(held[2]!.sent[0]?.immediate_response?.status?.code, 503);
  assert.match(held[2]!.sent[0].immediate_response.body.toString(), /holds too many request bodies/);
  // Streams that go away give their share back: a new one fits again, many times over.
  held[0]!.handlers.abort();
  held[1]!.handlers.end();
  for (let i = 0; i < 20; i++) {
    const s = start();
    piece(s, 600_000);
    assert.equal(s.sent.length, 0, `stream ${i} fits`);
    s.handlers.abort();
  }
});

test('ext_proc (hostile): a body chunk is kept as a copy, not as a view of its whole gRPC message', () => {
  v8.setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const p = picker({ type: 'none', name: 'none', postResponse: () => undefined }, false, 1 << 20);
  const s = p.open();
  s.handlers.message({
    request: 'request_headers',
    protocol_config: { request_body_mode: BodySendMode.FULL_DUPLEX_STREAMED },
    request_headers: { headers: { ':path': '/v1/completions' } },
  });
  gc();
  const before = process.memoryUsage().arrayBuffers;
  // What the decoder hands over for a 1 MiB message whose body field is one byte (the rest an unknown field it
  // skips): a view into all of it. Kept as views, 40 such bodies held 40 MiB while the limit counted 40 bytes.
  for (let i = 0; i < 40; i++)
    s.handlers.message({
      request: 'request_body',
      request_body: { body: Buffer.alloc(1 << 20, 0x20).subarray(10, 11) },
    });
  gc();
  const held = process.memoryUsage().arrayBuffers - before;
  assert.equal(s.sent.length, 0, 'the stream is still open, holding its body');
  // Views would hold 40 MiB; copies hold 40 bytes. The margin is for whatever else the process allocates meanwhile
  // (one CI run saw exactly 4 MiB more, on a loaded machine).
  assert.ok(held < 16 << 20, `the stream holds ${held} bytes of buffers`);
  s.handlers.abort();
});
