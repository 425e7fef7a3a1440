/**
 * @module dev/socket-bridge
 * Byte pipes between a TCP port and a Unix socket, which is how a process in its own network namespace reaches the
 * API server on the host's loopback: a Unix socket is a file, visible from both namespaces, while TCP ports are not.
 * The host side (`serveUnixToTcp`) runs in the dev cluster's process; the namespace side runs as
 * `node socket-bridge.js tcp-to-unix HOST PORT SOCKET [READY-FILE]` inside the namespace (and dies with it); it
 * creates READY-FILE once it listens. The other way round, `node socket-bridge.js unix-to-tcp SOCKET HOST PORT`
 * inside the namespace lets processes on the host reach a port of the namespace (Envoy Gateway's xDS server).
 */
import { rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

/** Pipes two sockets into each other; either one's error or close destroys both. */
export function pipeBoth(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  const close = () => {
    a.destroy();
    b.destroy();
  };
  a.on('error', close);
  b.on('error', close);
  a.on('close', close);
  b.on('close', close);
}

/** Listens on the Unix socket `path` and forwards every connection to `host:port`. */
export async function serveUnixToTcp(path: string, host: string, port: number): Promise<Server> {
  rmSync(path, { force: true });
  const server = createServer((client) => pipeBoth(client, connect({ host, port })));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  return server;
}

/** Listens on `host:port` and forwards every connection to the Unix socket `path`. */
export async function serveTcpToUnix(host: string, port: number, path: string): Promise<Server> {
  const server = createServer((client) => pipeBoth(client, connect({ path })));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

/** The path of this module's compiled file, for `node PATH tcp-to-unix …`. */
export const SOCKET_BRIDGE_SCRIPT = fileURLToPath(import.meta.url);

if (process.argv[1] === SOCKET_BRIDGE_SCRIPT && process.argv[2] === 'tcp-to-unix') {
  const [host, port, path, readyFile] = process.argv.slice(3);
  await serveTcpToUnix(host!, Number(port), path!);
  // The namespace's script waits for this file before it starts the program that connects.
  if (readyFile) writeFileSync(readyFile, `${process.pid}\n`);
}

if (process.argv[1] === SOCKET_BRIDGE_SCRIPT && process.argv[2] === 'unix-to-tcp') {
  const [path, host, port] = process.argv.slice(3);
  await serveUnixToTcp(path!, host!, Number(port));
}
