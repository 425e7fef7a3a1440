/**
 * @module epp/flow-control/settings
 * The `flowControl` section of an EndpointPickerConfig turned into the controller's settings, with upstream's
 * defaults: bands of 5000 requests and 1 GB, FCFS order, global-strict fairness, a 60 s queue-wait budget (with or
 * without endpoints), no global limit, the static usage limit. Policy references name a plugin or, as upstream, a
 * policy type directly (its default instance). Problems are reported with the field's path; nothing here throws.
 */
import { isRecord } from '../is-record.js';
import { parseDurationMs } from '../go-duration.js';
import type { FieldProblem } from '../../errors/index.js';
import type { Plugin } from '../types.js';
import type { BandSettings } from './bands.js';
import type { FlowControlSettings } from './controller.js';
import {
  FAIRNESS_POLICIES,
  ORDERING_POLICIES,
  staticUsageLimit,
  type FairnessPolicy,
  type OrderingPolicy,
  type UsageLimit,
} from './policies.js';

export const DEFAULT_BAND: BandSettings = Object.freeze({
  maxRequests: 5000,
  maxBytes: 1_000_000_000,
  ordering: 'fcfs-ordering-policy',
  fairness: 'global-strict-fairness-policy',
});
export const DEFAULT_REQUEST_TTL_MS = 60_000;

const DECIMAL: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };
const BINARY: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** A whole, non-negative Kubernetes quantity ("100", "1k", "1Gi") or number; undefined when it is not one. */
export function quantityCount(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? Math.ceil(v) : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^(\d+(?:\.\d+)?)(k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.exec(v.trim());
  if (!m) return undefined;
  return Math.ceil(Number(m[1]) * (BINARY[m[2] ?? ''] ?? DECIMAL[m[2] ?? '']!));
}

/**
 * Builds the settings from the (already shape-checked) `flowControl` mapping; `plugins` resolves policy references.
 * `warn` names what is accepted but not acted on.
 */
export function flowControlSettings(
  flow: Readonly<Record<string, unknown>> | undefined,
  plugins: ReadonlyMap<string, Plugin>,
  problems: FieldProblem[],
  warn: (path: string, message: string) => void,
): FlowControlSettings {
  const f = flow ?? {};
  const problem = (path: string, message: string) => problems.push({ path, message });
  const count = (value: unknown, path: string, fallback: number) => {
    if (value === undefined || value === null) return fallback;
    const n = quantityCount(value);
    if (n === undefined) problem(path, 'must be a quantity like "100", "1k" or "1Gi"');
    return n ?? fallback;
  };
  const duration = (value: unknown, path: string, fallback: number) => {
    if (value === undefined || value === null) return fallback;
    const ms = parseDurationMs(value);
    if (ms === undefined) problem(path, 'must be a duration like "60s" or "1m30s"');
    return ms ?? fallback;
  };
  const policy = <T extends string>(
    ref: unknown,
    path: string,
    kinds: readonly T[],
    what: string,
    fallback: T,
  ): T => {
    if (typeof ref !== 'string' || ref === '') return fallback;
    const plugin: (Plugin & { usageLimit?: UsageLimit }) | undefined = plugins.get(ref);
    const type = plugin?.type ?? ref;
    if ((kinds as readonly string[]).includes(type)) return type as T;
    if (type === 'program-aware-fairness' && kinds.includes('round-robin-fairness-policy' as T))
      return 'round-robin-fairness-policy' as T;
    problem(
      path,
      plugin
        ? `"${ref}" (${plugin.type}) is not ${what} (${kinds.join(', ')})`
        : `no plugin named "${ref}" and not ${what} type (${kinds.join(', ')})`,
    );
    return fallback;
  };
  const band = (raw: unknown, path: string): BandSettings => {
    if (!isRecord(raw)) return DEFAULT_BAND;
    return {
      maxRequests: count(raw['maxRequests'], `${path}.maxRequests`, DEFAULT_BAND.maxRequests),
      maxBytes: count(raw['maxBytes'], `${path}.maxBytes`, DEFAULT_BAND.maxBytes),
      ordering: policy<OrderingPolicy>(
        raw['orderingPolicyRef'],
        `${path}.orderingPolicyRef`,
        ORDERING_POLICIES,
        'an ordering policy',
        DEFAULT_BAND.ordering,
      ),
      fairness: policy<FairnessPolicy>(
        raw['fairnessPolicyRef'],
        `${path}.fairnessPolicyRef`,
        FAIRNESS_POLICIES,
        'a fairness policy',
        DEFAULT_BAND.fairness,
      ),
    };
  };
  const bands = new Map<number, BandSettings>();
  const list = Array.isArray(f['priorityBands']) ? f['priorityBands'] : [];
  list.forEach((raw, i) => {
    const path = `flowControl.priorityBands[${i}]`;
    const priority = isRecord(raw) ? raw['priority'] : undefined;
    if (typeof priority !== 'number' || !Number.isInteger(priority)) return; // reported by the shape check
    if (bands.has(priority)) problem(`${path}.priority`, `priority ${priority} is configured twice`);
    else bands.set(priority, band(raw, path));
  });
  let usageLimit: UsageLimit = staticUsageLimit;
  const ref = f['usageLimitPolicyPluginRef'];
  if (typeof ref === 'string' && ref !== '' && ref !== 'static-usage-limit-policy') {
    const plugin: (Plugin & { usageLimit?: UsageLimit }) | undefined = plugins.get(ref);
    if (typeof plugin?.usageLimit === 'function') usageLimit = plugin.usageLimit;
    else
      problem(
        'flowControl.usageLimitPolicyPluginRef',
        plugin
          ? `"${ref}" (${plugin.type}) is not a usage limit policy (priority-holdback-policy)`
          : `no plugin named "${ref}" in plugins`,
      );
  }
  if (f['enableEviction'] === true)
    warn(
      'flowControl.enableEviction',
      'accepted, not acted on: in-flight eviction (revoking running lower-priority requests) is not implemented',
    );
  return {
    maxRequests: count(f['maxRequests'], 'flowControl.maxRequests', 0),
    maxBytes: count(f['maxBytes'], 'flowControl.maxBytes', 0),
    defaultRequestTtlMs: duration(
      f['defaultRequestTTL'],
      'flowControl.defaultRequestTTL',
      DEFAULT_REQUEST_TTL_MS,
    ),
    noEndpointRequestTtlMs: duration(
      f['noEndpointRequestTTL'],
      'flowControl.noEndpointRequestTTL',
      DEFAULT_REQUEST_TTL_MS,
    ),
    bands,
    defaultBand: f['defaultPriorityBand']
      ? band(f['defaultPriorityBand'], 'flowControl.defaultPriorityBand')
      : DEFAULT_BAND,
    defaultNegativeBand: f['defaultNegativePriorityBand']
      ? band(f['defaultNegativePriorityBand'], 'flowControl.defaultNegativePriorityBand')
      : undefined,
    usageLimit,
  };
}
