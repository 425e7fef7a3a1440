/**
 * @module epp/flow-control/request-keys
 * What puts a request in a flow: its fairness id (llm-d's `x-llm-d-inference-fairness-id`, else GIE's
 * `x-gateway-inference-fairness-id`, else `default-flow`) and its priority (the InferenceObjective's, or for the older
 * InferenceModel form its criticality: Critical 1, Standard 0, Sheddable -1).
 */
import type { Criticality } from '../types.js';

/** Read in this order; the first present wins. */
export const FAIRNESS_ID_HEADERS = [
  'x-llm-d-inference-fairness-id',
  'x-gateway-inference-fairness-id',
] as const;
export const DEFAULT_FAIRNESS_ID = 'default-flow';
/** Longest fairness id accepted: ids are client-chosen and each waiting flow keeps its id in memory. */
export const MAX_FAIRNESS_ID_LENGTH = 256;

export function fairnessIdOf(headers: Readonly<Record<string, string>>): string {
  for (const name of FAIRNESS_ID_HEADERS) {
    const id = headers[name];
    if (id !== undefined && id !== '') return id;
  }
  return DEFAULT_FAIRNESS_ID;
}

export function priorityOfCriticality(criticality: Criticality): number {
  return criticality === 'Critical' ? 1 : criticality === 'Sheddable' ? -1 : 0;
}
