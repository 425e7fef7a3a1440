/**
 * @module transport/host-port
 * `host:port` as URLs, Host headers and endpoint addresses spell it: an IPv6 literal in brackets (RFC 3986 §3.2.2).
 */

/** @example hostPort('::1', 8000) // → '[::1]:8000'; hostPort('10.0.0.5', 8000) // → '10.0.0.5:8000' */
export function hostPort(host: string, port: number | string): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}
