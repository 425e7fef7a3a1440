import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { describe, it } from 'node:test';
import { Http1ResponseParser, UpstreamProtocolError, type ResponseParserOptions } from './http1-response.js';

interface Parsed {
  status?: number;
  headers?: IncomingHttpHeaders;
  body: string;
  complete: boolean;
  keepAlive: boolean;
  consumed: number;
  parser: Http1ResponseParser;
}

/** Feeds `raw` in pieces of `step` bytes (0: all at once), as reads off a socket would come. */
function parse(raw: string | Buffer, step = 0, options?: ResponseParserOptions): Parsed {
  const data = typeof raw === 'string' ? Buffer.from(raw, 'latin1') : raw;
  const out: Parsed = { body: '', complete: false, keepAlive: false, consumed: 0, parser: undefined! };
  const parser = new Http1ResponseParser(
    {
      onHead: (status, headers) => Object.assign(out, { status, headers }),
      onBody: (chunk) => (out.body += chunk.toString('latin1')),
      onComplete: () => (out.complete = true),
    },
    options,
  );
  out.parser = parser;
  const size = step || data.length;
  for (let at = 0; at < data.length && !parser.done; at += size)
    out.consumed += parser.execute(data.subarray(at, at + size));
  out.keepAlive = parser.keepAlive;
  return out;
}

const CHUNKED =
  'HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nset-cookie: a=1\r\n' +
  'set-cookie: b=2\r\nx-dup: 1\r\nx-dup: 2\r\n\r\n' +
  'f\r\ndata: {"n":1}\n\n\r\n' +
  '3;ext="v"\r\nabc\r\n' +
  '0\r\nx-trailer: dropped\r\n\r\n';

describe('Http1ResponseParser', () => {
  it('reads a chunked response the same whatever the reads are cut at', () => {
    for (const step of [0, 1, 2, 3, 7, 16]) {
      const r = parse(CHUNKED, step);
      assert.equal(r.status, 200, `step ${step}`);
      assert.equal(
        r.body,
        'data: {"n":1}\n\nabc',
        `step ${step}: de-chunked, extensions and trailers dropped`,
      );
      assert.ok(r.complete && r.keepAlive);
      assert.equal(r.consumed, CHUNKED.length);
      assert.deepEqual(r.headers!['set-cookie'], ['a=1', 'b=2']);
      assert.equal(r.headers!['x-dup'], '1, 2');
    }
  });

  it('reads chunk sizes in either case, zero-padded up to 12 digits, whole in a read or split over reads', () => {
    const raw =
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n' +
      `A\r\n${'a'.repeat(10)}\r\n00b\r\n${'b'.repeat(11)}\r\n00000000000c\r\n${'c'.repeat(12)}\r\n` +
      `1F \t\r\n${'d'.repeat(31)}\r\n0\r\n\r\n`;
    for (const step of [0, 1, 5]) {
      const r = parse(raw, step);
      assert.equal(r.body, 'a'.repeat(10) + 'b'.repeat(11) + 'c'.repeat(12) + 'd'.repeat(31), `step ${step}`);
      assert.ok(r.complete && r.keepAlive, `step ${step}`);
    }
  });

  it('reads a content-length body and leaves what follows it', () => {
    const raw = 'HTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nhelloEXTRA';
    for (const step of [0, 1, 4]) {
      const r = parse(raw, step);
      assert.equal(r.body, 'hello');
      assert.ok(r.complete);
      assert.equal(r.consumed, raw.length - 'EXTRA'.length);
      // A read that held bytes beyond the response: the connection is out of step.
      if (step === 0) assert.equal(r.keepAlive, false);
    }
    assert.ok(parse('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n').complete);
    assert.ok(parse('HTTP/1.1 200 OK\r\ncontent-length: 3, 3\r\n\r\nabc').complete, 'an identical list');
  });

  it('skips informational heads, and answers without a body have none', () => {
    const r = parse(
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n' +
        'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok',
      5,
    );
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok');
    assert.equal(r.headers!['link'], undefined, "a 1xx head's fields are not the answer's");
    for (const status of [204, 304])
      assert.ok(parse(`HTTP/1.1 ${status} X\r\ncontent-length: 9\r\n\r\n`).complete);
    const head = parse('HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n', 0, { headRequest: true });
    assert.ok(head.complete && head.keepAlive && head.body === '');
  });

  it('runs a body without framing to the end of the connection, never reused', () => {
    const r = parse('HTTP/1.1 200 OK\r\n\r\nsome bytes');
    assert.equal(r.body, 'some bytes');
    assert.equal(r.complete, false);
    r.parser.finish();
    assert.ok(r.parser.done);
    assert.equal(r.parser.keepAlive, false);
  });

  it('knows when the server will not keep the connection, and how long it keeps an idle one', () => {
    assert.equal(parse('HTTP/1.1 200 OK\r\nConnection: Close\r\ncontent-length: 0\r\n\r\n').keepAlive, false);
    assert.equal(parse('HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n').keepAlive, false);
    const hinted = parse('HTTP/1.1 200 OK\r\nkeep-alive: timeout=5, max=100\r\ncontent-length: 0\r\n\r\n');
    assert.equal(hinted.parser.keepAliveTimeoutS, 5);
  });

  it('cut short: an error, not a complete response', () => {
    for (const raw of [
      '',
      'HTTP/1.1 200 OK\r\ncontent-le',
      'HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nabc',
      CHUNKED.slice(0, -3),
    ]) {
      const r = parse(raw);
      assert.throws(() => r.parser.finish(), UpstreamProtocolError, JSON.stringify(raw));
      assert.equal(r.complete, false);
    }
  });

  const hostile: [string, string | Buffer, RegExp][] = [
    ['not HTTP', 'SSH-2.0-OpenSSH\r\n\r\n', /status line/],
    ['HTTP/2 status line', 'HTTP/2 200\r\n\r\n', /status line/],
    ['a status of two digits', 'HTTP/1.1 20 OK\r\n\r\n', /status line/],
    ['a bare LF in the head', 'HTTP/1.1 200 OK\nx-a: 1\r\ncontent-length: 0\r\n\r\n', /status line/],
    ['a CR inside a value', 'HTTP/1.1 200 OK\r\nx-a: 1\rinjected: 2\r\n\r\n', /control character/],
    ['a NUL inside a value', 'HTTP/1.1 200 OK\r\nx-a: 1\0\r\n\r\n', /control character/],
    ['a DEL inside a value', 'HTTP/1.1 200 OK\r\nx-a: 1\x7f\r\n\r\n', /control character/],
    ['a folded line', 'HTTP/1.1 200 OK\r\nx-a: 1\r\n folded\r\n\r\n', /malformed response header/],
    ['space before the colon', 'HTTP/1.1 200 OK\r\ncontent-length : 1\r\n\r\nx', /malformed response header/],
    ['a line without a colon', 'HTTP/1.1 200 OK\r\nnocolon\r\n\r\n', /malformed response header/],
    [
      'both framings',
      'HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n',
      /both/,
    ],
    [
      'a coding other than chunked',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n',
      /transfer-encoding/,
    ],
    [
      'chunked twice',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n',
      /transfer-encoding/,
    ],
    ['a signed length', 'HTTP/1.1 200 OK\r\ncontent-length: +3\r\n\r\nabc', /content-length/],
    [
      'two lengths',
      'HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabcd',
      /content-length/,
    ],
    ['a huge length', 'HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n', /content-length/],
    ['a 101 unasked', 'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n', /switched/],
    ['a flood of 1xx', 'HTTP/1.1 100 Continue\r\n\r\n'.repeat(9), /informational/],
    [
      'a chunk size that is not hex',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n',
      /chunk size/,
    ],
    ['a negative chunk size', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n-1\r\n', /chunk size/],
    [
      'a 13-digit chunk size',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1000000000000\r\n',
      /chunk size/,
    ],
    ['a chunk size line by LF', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\nabc\r\n', /CRLF/],
    [
      'chunk data overrunning its size',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabcd\r\n',
      /CRLF/,
    ],
    [
      'an endless chunk size line',
      `HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1;${'x'.repeat(5000)}`,
      /longer/,
    ],
    [
      'a malformed trailer',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n',
      /trailer/,
    ],
    [
      'endless trailers',
      `HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n${'x-t: v\r\n'.repeat(9000)}`,
      /trailer/,
    ],
    ['an endless head', `HTTP/1.1 200 OK\r\n${'x-h: v\r\n'.repeat(9000)}`, /larger than/],
  ];
  for (const [what, raw, error] of hostile)
    it(`refuses ${what}`, () => {
      for (const step of [0, 3]) {
        let body = '';
        const parser = new Http1ResponseParser({ onHead() {}, onBody: (c) => (body += c), onComplete() {} });
        const data = Buffer.from(raw as string, 'latin1');
        assert.throws(
          () => {
            for (let at = 0; at < data.length && !parser.done; at += step || data.length)
              parser.execute(data.subarray(at, at + (step || data.length)));
          },
          (e: unknown) => e instanceof UpstreamProtocolError && error.test(e.message),
          `${what}, reads of ${step || 'all'} bytes`,
        );
        assert.ok(!body.includes('injected') && !body.includes('abcd'));
      }
    });
});
