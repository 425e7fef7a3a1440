/**
 * @module test/harness/pipelining
 * A client that pipelines: writes many requests at once on one connection and waits (at most 3 s) for the server to
 * close it, as a server that runs requests one at a time and bounds those waiting must.
 */
import { connect } from 'node:net';

/** Writes `request` `count` times on one connection; resolves true once the server closes it, false after 3 s. */
export function pipelineFlood(port: number, host: string, request: string, count: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = connect(port, host, () => socket.write(request.repeat(count)));
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(true));
    setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, 3000).unref();
  });
}
