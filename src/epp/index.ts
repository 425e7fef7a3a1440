/**
 * @module epp
 * The Endpoint Picker: an Envoy ext_proc server that picks a model server for every OpenAI request by prefix-cache
 * affinity and load. Public surface for the CLI, `llmisvc up` and the tests (the ext_proc client is the gateway's).
 */
export {
  RESPONSE_METADATA_NAMESPACE,
  REQUEST_TOKEN_KEY,
  SERVED_BY_HEADER,
  SERVED_BY_KEY,
} from './response-observer.js';
export { startEpp, DEFAULT_BODY_LIMIT, type EppOptions, type RunningEpp } from './server.js';
export { RequestSession, type RoutingAnswer, type SessionDeps } from './request-session.js';
export { RequestError, decodeJsonBody } from './request.js';
export {
  defaultEndpointPickerConfig,
  prefillDecodeEndpointPickerConfig,
  weightedEndpointPickerConfig,
  loadEndpointPickerConfig,
  buildEndpointPickerConfig,
  parseDurationMs,
  ACCEPTED_API_VERSIONS,
  type EndpointPickerConfig,
} from './config.js';
export { parseEndpointList, Datastore, type EndpointSpec } from './datastore.js';
export {
  decide,
  emptyModelDirectory,
  OBJECTIVE_HEADER,
  type Decision,
  type ModelDirectory,
  type ModelRoute,
} from './director.js';
export {
  DESTINATION_HEADER,
  DESTINATION_METADATA_NAMESPACE,
  SUBSET_HINT_NAMESPACE,
  SUBSET_HINT_KEY,
} from './extproc-server.js';
export { PREFILL_HEADER, pluginTypes } from './plugins/index.js';
export { EPP_ROUTING_HEADERS, isRoutingHeader, routingHeadersToRemove } from './routing-headers.js';
export { schedule } from './scheduler.js';
export { metricsFromExposition } from './model-server-metrics.js';
export type { Endpoint, EndpointMetrics, EndpointRole, Criticality, SchedulingRequest } from './types.js';
export { endpointSocketAddress } from './metrics-http.js';
export { isReady as isPodReady } from './kubernetes.js';
export { isRecord } from './is-record.js';
export {
  checkInlinePickerConfig,
  runsThisEpp,
  type InlinePickerConfigReport,
  type SchedulerSpecLike,
} from './service-config.js';
