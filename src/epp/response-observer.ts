/**
 * @module epp/response-observer
 * How the EPP hears a response without holding it up. Envoy waits for the EPP's answer to the response headers
 * before it forwards them, so on an ext_proc stream that hears them the model server's first token waits for a round
 * trip to the EPP. A gateway can instead send the response headers to a second ext_proc filter in observability mode
 * (Envoy sends and goes on) and skip them on the routing filter, whose stream still ends when the response does.
 *
 * The two streams meet through dynamic metadata: the routing answer puts an unguessable token (and, with
 * `x-served-by` on, the serving pod's name) in namespace `llmisvc.request`; the gateway accepts that namespace on the
 * routing filter and forwards it to the observer, whose one message is the response headers with the token. The
 * gateway (`envoy-bootstrap.ts`) can then add `x-served-by` from the metadata itself.
 *
 * Both streams must reach the same EPP: with several replicas Envoy balances each stream on its own, so the
 * routing filter keeps the response headers there.
 */

/** The response header naming the endpoint that served a request. */
export const SERVED_BY_HEADER = 'x-served-by';
/** The dynamic-metadata namespace of the routing answer that the response observer is sent. */
export const RESPONSE_METADATA_NAMESPACE = 'llmisvc.request';
/** The key of the token that names the routed request. */
export const REQUEST_TOKEN_KEY = 'token';
/** The key of the serving pod's name (only with the `x-served-by` header on). */
export const SERVED_BY_KEY = 'served_by';

/* eslint-disable @typescript-eslint/no-explicit-any -- the messages are dynamic protobuf objects */

/** The `llmisvc.request` metadata of a routing answer: the token, and the pod's name when given. */
export function responseMetadata(token: string, servedBy: string | undefined): Record<string, any> {
  const fields: Record<string, any> = { [REQUEST_TOKEN_KEY]: { stringValue: token } };
  if (servedBy !== undefined) fields[SERVED_BY_KEY] = { stringValue: servedBy };
  return { structValue: { fields } };
}

/** The token in an observer's message (from the forwarded metadata), or undefined. */
export function requestTokenOf(message: Record<string, any>): string | undefined {
  const token =
    message['metadata_context']?.['filter_metadata']?.[RESPONSE_METADATA_NAMESPACE]?.['fields']?.[
      REQUEST_TOKEN_KEY
    ]?.['stringValue'];
  return typeof token === 'string' ? token : undefined;
}
