/**
 * @module epp/flow-control/outcomes
 * What the client hears when flow control does not dispatch its request, as llm-d-router answers: 429 for
 * backpressure (band full, queue-wait budget spent), 503 when the pool has no endpoints, each with the header
 * `x-llm-d-request-dropped-reason` saying why, so a client or gateway can tell "retry later" from "nothing serves".
 */
import { RequestError } from '../request.js';
import type { QueueOutcome } from './controller.js';

export const DROPPED_REASON_HEADER = 'x-llm-d-request-dropped-reason';

/** The refusal for an outcome other than `Dispatched`. */
export function refusalOf(outcome: Exclude<QueueOutcome, 'Dispatched'>): RequestError {
  const refuse = (status: number, message: string, reason: string) =>
    new RequestError(status, message, undefined, { [DROPPED_REASON_HEADER]: reason });
  switch (outcome) {
    case 'RejectedCapacity':
      return refuse(
        429,
        'the pool is saturated and this priority band is full; retry later',
        'rejected-saturated',
      );
    case 'RejectedNoEndpoints':
      return refuse(503, 'no endpoints available and the queue is full', 'rejected-no-endpoints');
    case 'EvictedTTL':
      return refuse(
        429,
        'request timed out in queue: the pool stayed saturated; retry later',
        'rejected-ttl-expired',
      );
    case 'EvictedNoEndpoints':
      return refuse(
        503,
        'request timed out in queue and no endpoints are available',
        'rejected-no-endpoints',
      );
    case 'EvictedContextCancelled':
      return refuse(503, 'client disconnected', 'rejected-context-cancelled');
    case 'RejectedOther':
    case 'EvictedOther':
      return refuse(503, 'the endpoint picker is shutting down', 'rejected-shutting-down');
  }
}
