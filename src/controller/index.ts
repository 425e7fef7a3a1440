/**
 * @module controller
 * The LLMInferenceService controller: reconcile loop, status, webhooks, certificates, metrics and the assembly
 * that runs them (`runController`).
 */
export * from './conditions.js';
export * from './children.js';
export * from './status.js';
export {
  Controller,
  CONFIG_RESOURCE,
  SERVICE_RESOURCE,
  LEGACY_FINALIZER,
  STOP_ANNOTATION,
  CANDIDATE_CHILD_KINDS,
  needsReconcile,
  renderProblem,
} from './controller.js';
export { EventCorrelator, EventRecorder, type Correlation, type EventInput } from './events.js';
export { describeFailure, failedConditions, retryNote, type Problem } from './failures.js';
export type { ControllerOptions, RenderOutcome, ServiceEngine } from './controller.js';
export { createMetrics, type ControllerMetrics } from './metrics.js';
export { issueBundle, needsRotation, serviceDnsNames, type CertBundle } from '../certs/index.js';
export { CertKeeper, type CertKeeperOptions } from './cert-keeper.js';
export {
  reviewAdmission,
  reviewConversion,
  reviewConfigDeletion,
  startWebhookServer,
  VALIDATE_PATH,
  CONVERT_PATH,
  CONFIG_DELETE_PATH,
  type ConfigUsersLookup,
  type WebhookEngine,
  type AdmissionReview,
  type ConversionReview,
} from './webhook.js';
export { runController, type RunOptions, type RunningController, type WebhookRunOptions } from './run.js';
export { defaultEngine } from './engine.js';
