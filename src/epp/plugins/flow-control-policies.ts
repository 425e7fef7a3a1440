/**
 * @module epp/plugins/flow-control-policies
 * Flow-control policy plugins as llm-d configs declare them: ordering and fairness policies (no parameters; a band's
 * `orderingPolicyRef` / `fairnessPolicyRef` names one) and `priority-holdback-policy` (named by
 * `flowControl.usageLimitPolicyPluginRef`). The policies themselves live in `flow-control/policies.ts`.
 */
import {
  priorityHoldback,
  type FairnessPolicy,
  type OrderingPolicy,
  type UsageLimit,
} from '../flow-control/index.js';
import type { Plugin } from '../types.js';
import type { Parameters } from './parameters.js';

export interface FlowControlPolicyPlugin extends Plugin {
  readonly type: OrderingPolicy | FairnessPolicy;
}

export interface UsageLimitPlugin extends Plugin {
  readonly usageLimit: UsageLimit;
}

export function flowControlPolicy(
  type: OrderingPolicy | FairnessPolicy,
  name: string,
): FlowControlPolicyPlugin {
  return { type, name };
}

export function isUsageLimitPlugin(p: Plugin): p is UsageLimitPlugin {
  return typeof (p as Partial<UsageLimitPlugin>).usageLimit === 'function';
}

/** `priority-holdback-policy` with upstream's parameters (`shape` linear, `domain`, `minCeiling`, `maxCeiling`, `ceilings`). */
export function priorityHoldbackPlugin(name: string, p: Parameters): UsageLimitPlugin {
  const shape = p.string('shape', 'linear');
  if (shape !== 'linear') p.problem('shape', `must be "linear" (the only shape), got "${shape}"`);
  const domain = p.string('domain', 'rank');
  const ceilings = new Map<number, number>();
  if (domain === 'explicit') {
    for (const key of ['shape', 'minCeiling', 'maxCeiling'])
      if (p.has(key)) p.problem(key, 'must not be set with domain "explicit" (give ceilings only)');
    const raw = p.raw('ceilings');
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || Object.keys(raw).length === 0)
      p.problem('ceilings', 'is required with domain "explicit": a map of priority → ceiling in [0, 1]');
    else {
      for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
        if (!/^-?\d+$/.test(key) || typeof value !== 'number' || !(value >= 0 && value <= 1))
          p.problem(`ceilings.${key}`, 'must map an integer priority to a ceiling in [0, 1]');
        else ceilings.set(Number(key), value);
      }
      const sorted = [...ceilings].sort((a, b) => b[0] - a[0]);
      for (let i = 1; i < sorted.length; i++)
        if (sorted[i]![1] > sorted[i - 1]![1])
          p.problem(
            'ceilings',
            'must not increase as priority falls (a lower priority cannot have a higher ceiling)',
          );
    }
  } else if (domain !== 'rank' && domain !== 'value') {
    p.problem('domain', `must be rank, value or explicit, got "${domain}"`);
  } else {
    p.raw('ceilings');
    if (!p.has('minCeiling')) p.problem('minCeiling', `is required with domain "${domain}" (in [0, 1))`);
  }
  const minCeiling = p.number('minCeiling', 0, 0, 0.999999);
  const maxCeiling = p.number('maxCeiling', 1, Number.MIN_VALUE, 1);
  if (minCeiling > maxCeiling) p.problem('minCeiling', 'must not exceed maxCeiling');
  return {
    type: 'priority-holdback-policy',
    name,
    usageLimit: priorityHoldback({
      domain: domain === 'explicit' || domain === 'value' ? domain : 'rank',
      minCeiling,
      maxCeiling,
      ceilings,
    }),
  };
}
