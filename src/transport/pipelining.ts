/**
 * @module transport/pipelining
 * HTTP/1.1 pipelining for the servers that take requests from anyone (the builtin gateway, the dev cluster's routing
 * sidecar). Node's server hands every pipelined request of a connection to the handler at once, so one connection
 * could run any number of requests side by side — past any limit on connections — and keep them running after it is
 * gone (a response queued behind another never emits 'close'). Measured on the builtin gateway before this: 500
 * requests written at once on one socket became 256 concurrent upstream requests, and all 500 reached the model
 * server although the client had left. Here a connection's requests run one after another, as Envoy runs them; a
 * few may wait, more close the connection; those still waiting when the client leaves never run.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** Requests one connection may have waiting behind the one that runs. */
export const MAX_PIPELINED_REQUESTS = 8;

const LANE = Symbol('llmisvc.pipeline-lane');

interface Lane {
  busy: boolean;
  waiting: (() => void)[];
}

/**
 * A request handler that runs a connection's requests one at a time, in order: the next starts when the previous
 * response has closed (sent, or its client gone). Past `maxWaiting` waiting requests the connection is destroyed.
 */
export function oneRequestAtATime(
  handler: (req: IncomingMessage, res: ServerResponse) => unknown,
  maxWaiting = MAX_PIPELINED_REQUESTS,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const socket = req.socket as Socket & { [LANE]?: Lane };
    const lane = (socket[LANE] ??= { busy: false, waiting: [] });
    const next = (): void => {
      lane.busy = false;
      lane.waiting.shift()?.();
    };
    const run = (): void => {
      // Gone while it waited: nothing of it runs.
      if (socket.destroyed) {
        res.destroy();
        next();
        return;
      }
      lane.busy = true;
      res.once('close', next);
      handler(req, res);
    };
    if (!lane.busy) run();
    else if (lane.waiting.length < maxWaiting) lane.waiting.push(run);
    else socket.destroy();
  };
}
