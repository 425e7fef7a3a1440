/**
 * @module api
 * The LLMInferenceService API: types, schema, validation, conversion and CRD generation.
 */
export * from './schema.js';
export { CRITICALITY_ANNOTATION, convertObject, poolSpecToV1alpha2, versionOf } from './convert.js';
export {
  customResourceDefinition,
  customResourceDefinitions,
  DEFAULT_CRD_OPTIONS,
  type CrdOptions,
} from './crd.js';
export {
  parseDocuments,
  toTypedObject,
  validateObject,
  objectProblems,
  type SourcedObject,
} from './documents.js';
export {
  formatPath,
  nameProblems,
  ownSpecProblems,
  semanticProblems,
  structuralProblems,
} from './validate.js';
export { childName, childNames } from './names.js';
export { podSpecFieldTable, podSpecProblems } from './pod-spec.js';
export { parseQuantity, quantityValue } from './quantity.js';
export {
  type IntOrString,
  type KVCacheOffloadingSpec,
  type RolloutStrategySpec,
  rolloutDefaults,
  type ScalingSpec,
  type TracingSpec,
} from './workload-v020.js';
