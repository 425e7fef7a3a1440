/**
 * @module transport/request-body
 * Reading an HTTP/1.1 request body from a client who may be hostile, for the servers that take bodies from anyone
 * who can reach them: the builtin gateway, the controller's webhooks and the simulator. Each body is bounded
 * (`limit`) and so is the sum of the bodies being received at once (`BodyBudget`), so many slow uploads cannot hold
 * the memory; a body refused is not read to its end (`closeAfterAnswer`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Request-body bytes buffered over every request still receiving its body, against `limit`. */
export interface BodyBudget {
  used: number;
  readonly limit: number;
}

/**
 * Reads a request body up to `limit` bytes, counting its bytes in `budget` while it arrives. Past the limit it stops
 * at once ('too-large'), and as soon as the body would pass what is left of the budget ('busy'): nothing more is
 * kept, and the caller answers and closes the connection rather than reading the rest. The body's bytes leave the
 * budget when it is complete, refused or its client goes away.
 */
export function readRequestBody(
  req: IncomingMessage,
  limit: number,
  budget: BodyBudget,
): Promise<Buffer | 'too-large' | 'busy'> {
  return new Promise((resolve, reject) => {
    const announced = Number(req.headers['content-length']);
    if (Number.isFinite(announced)) {
      if (announced > limit) return resolve('too-large');
      // Known before a byte arrives: refused unread.
      if (budget.used + announced > budget.limit) return resolve('busy');
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let held = 0;
    const release = () => {
      budget.used -= held;
      held = 0;
    };
    const stop = (outcome: 'too-large' | 'busy') => {
      req.off('data', onData);
      req.pause();
      release();
      resolve(outcome);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) return stop('too-large');
      if (budget.used + chunk.length > budget.limit) return stop('busy');
      budget.used += chunk.length;
      held += chunk.length;
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => {
      release();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    });
    req.on('error', (error) => {
      release();
      reject(error);
    });
    // A client gone mid-body: 'close' comes whatever else does.
    req.on('close', release);
  });
}

/**
 * Makes the answer on `res` the last on its connection, leaving unread what the client still sends: Node would
 * otherwise read (and discard) a whole request body to keep the connection alive, however large it is.
 */
export function closeAfterAnswer(req: IncomingMessage, res: ServerResponse): void {
  res.shouldKeepAlive = false;
  res.once('finish', () => req.socket.destroySoon());
}

/**
 * A peer's answer read up to `limit` bytes, or undefined past it: leaving the loop early abandons (destroys) the
 * stream, so the rest is never read.
 */
export async function readAtMost(
  body: AsyncIterable<Uint8Array>,
  limit: number,
): Promise<Buffer | undefined> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}
