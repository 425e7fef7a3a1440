import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { isLoopbackAddress, isLoopbackHostHeader, misdirectedHostMessage } from './loopback-host.js';

describe('isLoopbackAddress (where a server listens)', () => {
  const cases: [string, boolean][] = [
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['::1', true],
    ['localhost', true],
    ['LocalHost', true],
    ['0.0.0.0', false],
    ['::', false],
    ['10.0.0.5', false],
    ['example.com', false],
  ];
  for (const [host, loopback] of cases)
    it(`${host} → ${loopback ? 'loopback' : 'not loopback'}`, () =>
      assert.equal(isLoopbackAddress(host), loopback));
});

describe('isLoopbackHostHeader (what a request is addressed to)', () => {
  const cases: [string | undefined, boolean][] = [
    ['127.0.0.1:8080', true],
    ['127.0.0.1', true],
    ['127.9.8.7:1', true],
    ['localhost:8080', true],
    ['LOCALHOST', true],
    ['localhost.:8080', true],
    ['app.localhost:8080', true],
    ['[::1]:8080', true],
    ['[::1]', true],
    ['[0:0:0:0:0:0:0:1]:80', true],
    ['[::ffff:127.0.0.1]:80', true],
    // HTTP/1.0 without a Host: no browser sends that, so no web page is behind it.
    [undefined, true],
    ['evil.example:8080', false],
    ['evil.example', false],
    ['127.0.0.1.nip.io:8080', false],
    ['localhost.evil.example', false],
    ['evillocalhost', false],
    ['10.0.0.5:8080', false],
    ['0.0.0.0:8080', false],
    ['[::2]:8080', false],
    ['::1', false],
    ['[::1]x', false],
    ['127.0.0.1:80:80', false],
    ['', false],
  ];
  for (const [host, loopback] of cases)
    it(`${JSON.stringify(host)} → ${loopback ? 'answered' : 'refused'}`, () =>
      assert.equal(isLoopbackHostHeader(host), loopback));
});

describe('misdirectedHostMessage', () => {
  it('names the refused Host, the server, its address and what to use instead', () => {
    const message = misdirectedHostMessage('evil.example:80', 'the dashboard', '127.0.0.1');
    assert.match(
      message,
      /^Host "evil\.example:80" refused: the dashboard listens on the loopback address 127\.0\.0\.1/,
    );
    assert.match(message, /DNS rebinding/);
    assert.match(message, /http:\/\/localhost:<port>/);
  });
});
