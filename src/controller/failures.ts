/**
 * @module controller/failures
 * What the controller tells the user when a pass cannot finish: every error that stops or cuts short a reconcile
 * becomes a reason (a CamelCase word for `kubectl get`) and a message that names the object and says what to do,
 * plus a note about the retry. Pure functions; the controller writes the result into `Ready` and an Event.
 */
import { isLlmisvcError } from '../errors/index.js';
import { KubeApiError, type KubeObject } from '../kube/index.js';
import type { Condition } from './conditions.js';

/** Why (part of) a pass failed, for a condition: `reason` for the READY/REASON columns, `message` for people. */
export interface Problem {
  reason: string;
  message: string;
}

export interface FailureContext {
  /** The controller's system namespace (presets, lease, webhook Secret, default Gateway). */
  systemNamespace: string;
  /** What the failing call was about, for example "Gateway llmisvc-system/llmisvc-gateway". */
  object?: string;
}

/** The namespace a 404 says is missing, if that is what it says. */
export function missingNamespace(error: unknown): string | undefined {
  if (!(error instanceof KubeApiError) || error.status !== 404) return undefined;
  if (error.details?.kind === 'namespaces') return error.details.name;
  return /namespaces "([^"]+)" not found/.exec(error.message)?.[1];
}

/** Where to look when the system namespace is missing, said once for the status, the logs and the CLI. */
export function systemNamespaceAdvice(namespace: string): string {
  return `create it (kubectl create namespace ${namespace}), install llmisvc with kubectl apply -k deploy/, or start the controller with --system-namespace (and --gateway-namespace) naming a namespace that exists`;
}

/**
 * A reason and an actionable message for an error met during a pass.
 *
 * @example
 * describeFailure(new KubeApiError(404, 'NotFound', '…', { kind: 'namespaces', name: 'llmisvc-system' }),
 *   { systemNamespace: 'llmisvc-system', object: 'Gateway llmisvc-system/llmisvc-gateway' })
 * // { reason: 'SystemNamespaceNotFound', message: 'cannot create Gateway …: namespace "llmisvc-system" …' }
 */
export function describeFailure(error: unknown, context: FailureContext): Problem {
  const what = context.object ? `${context.object}: ` : '';
  const namespace = missingNamespace(error);
  if (namespace !== undefined) {
    if (namespace === context.systemNamespace)
      return {
        reason: 'SystemNamespaceNotFound',
        message: `${what}the controller's system namespace "${namespace}" does not exist: ${systemNamespaceAdvice(namespace)}`,
      };
    return {
      reason: 'NamespaceNotFound',
      message: `${what}namespace "${namespace}" does not exist: create it, or change the reference to it`,
    };
  }
  if (error instanceof KubeApiError) {
    if (error.status === 403)
      return {
        reason: 'Forbidden',
        message: `${what}${error.message}: the controller's identity lacks this permission; grant it (deploy/controller/rbac.yaml lists every permission the controller needs)`,
      };
    return {
      reason: error.reason && /^[A-Z][A-Za-z]*$/.test(error.reason) ? error.reason : 'APIError',
      message: `${what}${error.message}${error.hint ? ` (${error.hint})` : ''}`,
    };
  }
  if (isLlmisvcError(error))
    return {
      reason: error.code === 'LLMISVC_ERR_KUBE' ? 'APIUnavailable' : 'ReconcileFailed',
      message: `${what}${error.message}${error.hint ? ` (${error.hint})` : ''}`,
    };
  return {
    reason: 'InternalError',
    message: `${what}${(error as Error)?.message ?? String(error)}: this is a bug in llmisvc; please report it with the controller's log`,
  };
}

/**
 * A child whose name is taken by an object this service does not control: the controller leaves it alone (taking
 * it over would let anyone who may create a service rewrite — and, on deletion, remove — objects they could not
 * touch themselves).
 */
export function foreignChildProblem(child: KubeObject, existing: KubeObject): Problem {
  const owner =
    existing.metadata.ownerReferences?.find((o) => o.controller) ?? existing.metadata.ownerReferences?.[0];
  const whose = owner ? `it belongs to ${owner.kind} ${owner.name}` : 'it has no owner';
  return {
    reason: 'ChildNameTaken',
    message:
      `${child.kind} ${existing.metadata.namespace ?? ''}/${child.metadata.name} already exists and this service did ` +
      `not create it (${whose}); the controller does not take over objects: delete or rename that ${child.kind}, ` +
      'or give this LLMInferenceService another name',
  };
}

/** "250ms", "1.6s", "5m": short enough for a condition message. */
export function formatDelay(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(1))}s`;
  return `${Number((ms / 60_000).toFixed(1))}m`;
}

/** The sentence appended to a failure: when the next attempt comes and that the controller backs off. */
export function retryNote(attempt: number, delayMs: number, maxDelayMs: number): string {
  return `retrying in ${formatDelay(delayMs)} (attempt ${attempt}; the controller backs off exponentially, up to every ${formatDelay(maxDelayMs)}, and retries at once when the service or its configs change)`;
}

/**
 * The conditions to write when a pass failed before it could derive the status: the previous conditions stay (they
 * still describe the children), and Ready becomes False with the problem and the retry note.
 */
export function failedConditions(
  previous: readonly Condition[],
  problem: Problem,
  retry: string,
): Condition[] {
  const ready: Condition = {
    type: 'Ready',
    status: 'False',
    reason: problem.reason,
    message: `${problem.message}; ${retry}`,
  };
  const others = previous
    .filter((c) => c.type !== 'Ready')
    .map(({ type, status, reason, message, severity }) => ({
      type,
      status,
      ...(reason !== undefined ? { reason } : {}),
      ...(message !== undefined ? { message } : {}),
      ...(severity !== undefined ? { severity } : {}),
    }));
  return [...others, ready];
}
