/**
 * @module local
 * `llmisvc up`: the service on one machine — rendered by the controller's renderer, run as local processes
 * (simulators or real model servers under supervision, the Endpoint Picker, a builtin or Envoy gateway) with a live
 * dashboard. `startLocalStack` is the programmatic entry used by the CLI and `llmisvc bench --compare`.
 */
export {
  startLocalStack,
  readServiceFile,
  plannedEndpoints,
  DEFAULT_SERVICE_FILE,
  VLLM_COMMAND,
  type GatewayKind,
  type LocalEndpoint,
  type LocalStack,
  type LocalStackOptions,
  type ModelServerKind,
  type StackEvent,
} from './stack.js';
export {
  localTopology,
  servedModelName,
  type LocalRoute,
  type LocalTopology,
  type LocalWorkload,
} from './topology.js';
export {
  DashboardState,
  DASHBOARD_HTML,
  sampleValue,
  type DashboardSnapshot,
  type EndpointView,
} from './dashboard.js';
export { readyEndpointsOf, startEppReplicas, type LocalEppReplica } from './epp-replicas.js';
export { Supervisor, restartDelayMs, type ProcessSpec, type SupervisorEvent } from './supervisor.js';
export {
  BUILTIN_SETUPS,
  fleetModel,
  fleetTarget,
  parseRoutingSetups,
  prefixHeavyEndpointPickerConfig,
  type RoutingSetup,
} from './fleets.js';
