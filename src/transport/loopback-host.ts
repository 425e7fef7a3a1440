/**
 * @module transport/loopback-host
 * DNS rebinding, for every HTTP server `llmisvc` runs on this machine's loopback (the builtin gateway, the dashboard,
 * the simulator, the EPP's metrics): a web page whose own name an attacker points at 127.0.0.1 is same-origin with
 * whatever listens there, so the browser lets it send requests and read the answers. Such a request still names the
 * attacker's host in its `Host` header, which is what these functions look at. A server on a non-loopback address
 * is meant to be reached under any name and checks nothing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BlockList, isIP, isIPv4, isIPv6 } from 'node:net';
import { closeAfterAnswer } from './request-body.js';

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * Whether a listen address is loopback only: 127.0.0.0/8, ::1 or `localhost`.
 * @example isLoopbackAddress('127.0.0.1') // → true; isLoopbackAddress('0.0.0.0') // → false
 */
export function isLoopbackAddress(host: string): boolean {
  const name = host.toLowerCase();
  if (name === 'localhost') return true;
  const family = isIP(name);
  return family !== 0 && LOOPBACK.check(name, family === 4 ? 'ipv4' : 'ipv6');
}

/** What may follow the host in a Host header: nothing, or a port. */
const PORT_SUFFIX = /^(?::\d{0,5})?$/;

/**
 * Whether a request's Host header names this machine's loopback, with any port: `localhost` and `*.localhost` (RFC
 * 6761 reserves them for loopback; browsers resolve them without DNS and no one can register one, so no attacker's
 * page can be served under one), 127.0.0.0/8, or `[::1]`. No Host at all (HTTP/1.0) passes too: browsers always send
 * one. A bare IPv6 address or any other text after the host does not pass.
 * @example isLoopbackHostHeader('localhost:8080') // → true; isLoopbackHostHeader('rebound.example:8080') // → false
 */
export function isLoopbackHostHeader(host: string | undefined): boolean {
  if (host === undefined) return true;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 0 || !PORT_SUFFIX.test(host.slice(end + 1))) return false;
    const address = host.slice(1, end);
    return isIPv6(address) && LOOPBACK.check(address, 'ipv6');
  }
  const colon = host.indexOf(':');
  if (colon >= 0 && !PORT_SUFFIX.test(host.slice(colon))) return false;
  let name = (colon < 0 ? host : host.slice(0, colon)).toLowerCase();
  // The absolute form (`localhost.`) names the same host.
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  // 127.0.0.0/8 without BlockList.check, which costs about 2 µs a call on every request.
  return name.startsWith('127.') && isIPv4(name);
}

/**
 * The message of a 421 to a request a loopback server refused for its Host: what was refused, why, and what to use.
 * Without `host` (a message written up front, as Envoy's) it speaks of the request's Host.
 * @example misdirectedHostMessage('evil.example', 'the dashboard', '127.0.0.1')
 */
export function misdirectedHostMessage(
  host: string | undefined,
  server: string,
  listenAddress: string,
  names = 'localhost, *.localhost, 127.x.x.x or [::1]',
): string {
  return (
    `${host === undefined ? "The request's Host" : `Host ${JSON.stringify(host)}`} refused: ${server} listens on the loopback address ${listenAddress}, where it ` +
    `answers only requests addressed to ${names} (any port), so that no web ` +
    'page can reach it by pointing its own name at 127.0.0.1 (DNS rebinding). Use http://localhost:<port> or ' +
    'http://127.0.0.1:<port> (a proxy or tunnel in front must send such a Host).'
  );
}

/**
 * For a server on loopback with plain-text answers: answers a request whose Host is not a loopback name with 421 and
 * returns true, or returns false and leaves the request alone.
 */
export function refusedMisdirected(
  req: IncomingMessage,
  res: ServerResponse,
  server: string,
  listenAddress: string,
): boolean {
  if (isLoopbackHostHeader(req.headers.host)) return false;
  closeAfterAnswer(req, res);
  res.writeHead(421, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(misdirectedHostMessage(req.headers.host, server, listenAddress) + '\n');
  return true;
}
