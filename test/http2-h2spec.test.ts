/**
 * The EPP's HTTP/2 layer against h2spec, an independent conformance suite for RFC 9113 and RFC 7541 (145 cases:
 * frames, stream states, flow control, HPACK, malformed requests), over h2c and over TLS. The server answers every
 * request with headers, a body and trailers, which the flow-control cases need.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { selfSignedKeyPair } from '../src/certs/index.js';
import { encodeHeaderBlock, Http2Connection } from '../src/transport/index.js';

const H2SPEC_BIN = process.env['H2SPEC_BIN'];
const HEADERS = encodeHeaderBlock([
  [':status', '200'],
  ['content-type', 'text/plain'],
]);
const TRAILERS = encodeHeaderBlock([['x-end', '1']]);

/**
 * The one case this server does not pass, on purpose. A HEADERS frame on a stream id below the highest one used may
 * be trailers the client sent before it learned the server had reset that stream; treating it as a connection error
 * would drop every request on a gateway's connection for a race the client cannot avoid.
 */
const ACCEPTED_FAILURES = ['http2/5.1.1: Sends stream identifier that is numerically smaller than previous'];

function serve(socket: Socket): void {
  new Http2Connection(socket, {
    onStream: (stream) => ({
      onData: () => undefined,
      onEnd: () => {
        stream.sendHeaders(HEADERS, false);
        stream.sendData(Buffer.alloc(1024, 'x'));
        stream.sendTrailers(TRAILERS);
      },
      onAbort: () => undefined,
    }),
  });
}

/** Runs h2spec against `server` and returns the cases that failed, as `package: title`, and how many ran. */
async function h2spec(server: Server, tls: boolean): Promise<{ failed: string[]; cases: number }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const dir = mkdtempSync(join(tmpdir(), 'llmisvc-h2spec-'));
  try {
    const report = join(dir, 'report.xml');
    const args = [
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-o',
      '5',
      '-j',
      report,
      ...(tls ? ['-t', '-k'] : []),
    ];
    // h2spec exits non-zero when a case fails; the report says which.
    await new Promise<void>((resolve) => execFile(H2SPEC_BIN!, args, { timeout: 120_000 }, () => resolve()));
    const xml = readFileSync(report, 'utf8');
    const cases = [
      ...xml.matchAll(/<testcase package="([^"]+)" classname="([^"]+)"[^>]*>([\s\S]*?)<\/testcase>/g),
    ];
    const failed = cases
      .filter(([, , , body]) => /<(failure|error)/.test(body!))
      .map(([, pkg, title]) => `${pkg}: ${title!.replace(/&#34;/g, '"')}`);
    return { failed, cases: cases.length };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await new Promise((resolve) => server.close(resolve));
  }
}

const skip = H2SPEC_BIN ? false : 'H2SPEC_BIN not set (run through npm test)';

test('h2spec over h2c: every case passes but the one accepted', { skip }, async () => {
  const { failed, cases } = await h2spec(createTcpServer(serve), false);
  assert.ok(cases >= 140, `h2spec ran ${cases} cases`);
  assert.deepEqual(failed, ACCEPTED_FAILURES);
});

test('h2spec over TLS (ALPN h2): every case passes but the one accepted', { skip }, async () => {
  const { cert, key } = selfSignedKeyPair();
  const { failed, cases } = await h2spec(createTlsServer({ cert, key, ALPNProtocols: ['h2'] }, serve), true);
  assert.ok(cases >= 140, `h2spec ran ${cases} cases`);
  assert.deepEqual(failed, ACCEPTED_FAILURES);
});
