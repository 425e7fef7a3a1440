/**
 * @module test/harness/raw-http
 * An HTTP/1.1 client that writes whatever bytes a test gives it (bad heads, pipelined requests, bodies cut short) on
 * one loopback connection and parses the answers with the transport's strict response parser, for tests of servers
 * against hostile clients.
 */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { Http1ResponseParser } from '../../src/transport/index.js';

export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface RawConnection {
  socket: Socket;
  /** Resolves when the server (or the test) has closed the connection. */
  closed: Promise<void>;
  /** The next complete answer, or undefined once the connection closed without one (10 s guard, then closed). */
  next(): Promise<RawAnswer | undefined>;
  /** Bytes received so far. */
  received(): number;
}

/** Opens a connection to `127.0.0.1:port`. */
export async function openRaw(port: number): Promise<RawConnection> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  const answers: RawAnswer[] = [];
  const waiters: ((answer: RawAnswer | undefined) => void)[] = [];
  let received = 0;
  let isClosed = false;
  const parserFor = (): Http1ResponseParser => {
    const answer: RawAnswer = { status: 0, headers: {}, body: '' };
    return new Http1ResponseParser({
      onHead: (status, headers) => Object.assign(answer, { status, headers }),
      onBody: (chunk) => (answer.body += chunk.toString('latin1')),
      onComplete: () => {
        const waiter = waiters.shift();
        if (waiter) waiter(answer);
        else answers.push(answer);
      },
    });
  };
  let parser = parserFor();
  socket.on('data', (data: Buffer) => {
    received += data.length;
    let rest = data;
    while (rest.length > 0) {
      rest = rest.subarray(parser.execute(rest));
      if (parser.done) parser = parserFor();
    }
  });
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      try {
        parser.finish();
      } catch {
        // Closed in the middle of an answer: nothing more comes.
      }
      isClosed = true;
      for (const waiter of waiters.splice(0)) waiter(undefined);
      resolve();
    }),
  );
  return {
    socket,
    closed,
    received: () => received,
    next() {
      const answer = answers.shift();
      if (answer || isClosed) return Promise.resolve(answer);
      return new Promise((resolve) => {
        const guard = setTimeout(() => socket.destroy(), 10_000);
        waiters.push((a) => {
          clearTimeout(guard);
          resolve(a);
        });
      });
    },
  };
}

/** A request head (and body) as bytes: `content-length` set from the body unless `headers` sets it. */
export function rawRequest(
  method: string,
  path: string,
  {
    host = '127.0.0.1',
    headers = {},
    body,
  }: { host?: string; headers?: Record<string, string>; body?: string } = {},
): string {
  const lines = [`${method} ${path} HTTP/1.1`, `host: ${host}`];
  const all = {
    ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }),
    ...headers,
  };
  for (const [name, value] of Object.entries(all)) lines.push(`${name}: ${value}`);
  return `${lines.join('\r\n')}\r\n\r\n${body ?? ''}`;
}

/** The `error.message` of an OpenAI error answer, or ''. */
export function errorMessage(answer: RawAnswer | undefined): string {
  return (JSON.parse(answer?.body || '{}') as { error?: { message?: string } }).error?.message ?? '';
}
