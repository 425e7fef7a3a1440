/**
 * @module epp/flow-control
 * Flow control (llm-d-router / GIE semantics, behind the `flowControl` feature gate): requests beyond saturation
 * wait in the EPP by priority band, fairly between flows, in the band's order, until capacity frees or their TTL
 * ends. The controller is the one stateful piece; policies, bands and settings are plain data and pure functions.
 */
export {
  FlowController,
  type AdmissionRequest,
  type FlowControlObserver,
  type FlowControlSettings,
  type FlowLabels,
  type PoolState,
  type QueueOutcome,
  type Ticket,
} from './controller.js';
export type { BandSettings } from './bands.js';
export {
  FAIRNESS_POLICIES,
  ORDERING_POLICIES,
  SLO_TTFT_HEADER,
  priorityHoldback,
  sloDeadline,
  staticUsageLimit,
  type FairnessPolicy,
  type OrderingPolicy,
  type UsageLimit,
} from './policies.js';
export { DROPPED_REASON_HEADER, refusalOf } from './outcomes.js';
export { DEFAULT_BAND, flowControlSettings, quantityCount } from './settings.js';
export {
  FAIRNESS_ID_HEADERS,
  MAX_FAIRNESS_ID_LENGTH,
  fairnessIdOf,
  priorityOfCriticality,
} from './request-keys.js';
