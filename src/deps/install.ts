/**
 * @module deps/install
 * `llmisvc deps install`: applies a plan step by step, waiting after each until it is healthy, so the next step
 * never races the previous one (a provider that starts before the GIE CRDs exist never watches InferencePools; LWS
 * without a running cert-manager has no webhook certificates).
 *
 * Idempotent: a step that is already healthy is skipped, and everything else is server-side applied (applying the
 * same manifest twice changes nothing). When the GIE CRDs had to be installed while the provider already ran — or
 * the provider's pods are older than the CRDs — the provider is restarted the way `kubectl rollout restart` does it.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseAllDocuments } from 'yaml';
import { LlmisvcError } from '../errors/index.js';
import { labelSelectorString } from '../kube/index.js';
import { conditionOf, describe, isTrue, type KubeClient, type KubeObject } from './kube.js';
import {
  COMPONENTS,
  type HealthCheck,
  INFERENCE_POOL_CRD,
  PROVIDER_FACTS,
  type ProviderName,
  type StepName,
} from './matrix.js';
import type { PlanStep } from './plan.js';

export interface InstallOptions {
  provider: ProviderName;
  /** A folder with one manifest file per step (`<step>.yaml`, see `llmisvc deps plan`'s air-gapped lines). */
  from?: string;
  /** Print what would be done; touch nothing. */
  dryRun?: boolean;
  /** How long each step may take to become healthy; default 5 minutes. */
  stepTimeoutMs?: number;
  /** The helm binary for provider steps without --from; default `helm` on PATH. */
  helm?: string;
  log: (line: string) => void;
}

export interface StepOutcome {
  step: StepName;
  action: 'skipped' | 'applied' | 'would-apply';
  /** Objects applied. */
  objects: number;
}

export interface InstallResult {
  steps: StepOutcome[];
  /** The provider was restarted because the GIE CRDs are newer than its pods. */
  restartedProvider: boolean;
}

const POLL_MS = 500;

/** What a step's file must be called inside `--from DIR`. */
export function manifestFileFor(step: StepName): string {
  return COMPONENTS[step].apply.file;
}

/** Applies the plan. With `dryRun` the client may be undefined: nothing is read or written. */
export async function installPlan(
  client: KubeClient | undefined,
  steps: readonly PlanStep[],
  options: InstallOptions,
): Promise<InstallResult> {
  if (options.dryRun) return dryRun(steps, options);
  if (!client)
    throw new LlmisvcError('LLMISVC_ERR_CONFIG', 'installing needs a cluster: no kubeconfig given');
  const timeoutMs = options.stepTimeoutMs ?? 300_000;
  const facts = PROVIDER_FACTS[options.provider];
  const outcomes: StepOutcome[] = [];
  let restartProvider = false;
  for (const [index, step] of steps.entries()) {
    const component = COMPONENTS[step.name];
    const label = `[${index + 1}/${steps.length}] ${step.name} ${step.version}`;
    const missing = await unhealthy(client, component.health);
    if (missing.length === 0) {
      options.log(`${label}: already installed and healthy, skipping`);
      outcomes.push({ step: step.name, action: 'skipped', objects: 0 });
    } else {
      if (step.name === 'gateway-api-inference-extension') {
        // A provider running now will not notice the CRDs it is about to get.
        restartProvider =
          (await client.get(
            `/apis/apps/v1/namespaces/${facts.namespace}/deployments/${facts.deployment}`,
          )) !== undefined;
      }
      options.log(`${label}: installing (${missing[0]})`);
      const objects = await applyStep(client, step.name, options);
      options.log(`${label}: applied ${objects} objects; waiting until healthy`);
      await waitHealthy(client, step.name, component.health, timeoutMs, options.log);
      options.log(`${label}: healthy`);
      outcomes.push({ step: step.name, action: 'applied', objects });
    }
    if (step.name === options.provider) {
      restartProvider ||= await providerOlderThanGie(client, options.provider);
      if (restartProvider) {
        await restartDeployment(client, facts.namespace, facts.deployment, options.log);
        await waitHealthy(client, step.name, component.health, timeoutMs, options.log);
        options.log(`${label}: restarted so that it watches InferencePools`);
      }
    }
  }
  return { steps: outcomes, restartedProvider: restartProvider };
}

function dryRun(steps: readonly PlanStep[], options: InstallOptions): InstallResult {
  const log = options.log;
  log('# dry run: nothing is applied');
  for (const [index, step] of steps.entries()) {
    const component = COMPONENTS[step.name];
    log(`[${index + 1}/${steps.length}] ${step.name} ${step.version}`);
    if (options.from) {
      log(`  kubectl apply --server-side -f ${join(options.from, component.apply.file)}`);
    } else {
      for (const command of component.commands) for (const line of command.split('\n')) log(`  ${line}`);
    }
    log(`  then wait until healthy: ${component.verify.join(' && ')}`);
    if (step.name === options.provider && steps.some((s) => s.name === 'gateway-api-inference-extension')) {
      const f = PROVIDER_FACTS[options.provider];
      log(
        `  then, if its pods are older than the InferencePool CRD: kubectl rollout restart deployment/${f.deployment} -n ${f.namespace}`,
      );
    }
  }
  return {
    steps: steps.map((s) => ({ step: s.name, action: 'would-apply', objects: 0 })),
    restartedProvider: false,
  };
}

/** Reads a YAML stream into objects (empty documents and `List` wrappers handled). */
export function parseManifest(text: string, source: string): KubeObject[] {
  const objects: KubeObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) {
      throw new LlmisvcError('LLMISVC_ERR_INPUT', `${source}: ${doc.errors[0]!.message}`, {
        hint: 'the file must be a Kubernetes YAML stream (the output of curl on the release asset or helm template)',
      });
    }
    const value = doc.toJS() as KubeObject | null;
    if (!value || typeof value !== 'object') continue;
    if (typeof value.kind === 'string' && value.kind.endsWith('List') && Array.isArray(value['items'])) {
      objects.push(...(value['items'] as KubeObject[]));
    } else if (value.kind) {
      objects.push(value);
    }
  }
  return objects;
}

/** A batch of objects and the namespace for those that name none. */
interface Batch {
  objects: KubeObject[];
  namespace: string;
}

async function readSources(step: StepName, options: InstallOptions): Promise<Batch[]> {
  const apply = COMPONENTS[step].apply;
  const fallback = apply.kind === 'helm' ? apply.namespaces[0]! : 'default';
  if (options.from) {
    const path = join(options.from, apply.file);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch {
      throw new LlmisvcError(
        'LLMISVC_ERR_INPUT',
        `--from ${options.from}: ${apply.file} is missing for step ${step}`,
        {
          hint: `fetch it where there is network with the airGapped lines of \`llmisvc deps plan -o json\` (step ${step}), and copy it to ${path}`,
        },
      );
    }
    return [{ objects: parseManifest(text, path), namespace: fallback }];
  }
  if (apply.kind === 'helm') {
    const batches: Batch[] = [];
    for (const args of apply.templates) {
      const text = await helmTemplate(options.helm ?? 'helm', args, options.log);
      const n = args.indexOf('-n');
      batches.push({
        objects: parseManifest(text, `helm template ${args[0]}`),
        namespace: n >= 0 ? args[n + 1]! : fallback,
      });
    }
    return batches;
  }
  let response: globalThis.Response;
  try {
    response = await fetch(apply.url, { redirect: 'follow' });
  } catch (error) {
    throw new LlmisvcError(
      'LLMISVC_ERR_DEPENDENCY',
      `cannot download ${apply.url}: ${(error as Error).message}`,
      {
        hint: `without network, download it elsewhere and use --from DIR with DIR/${apply.file}`,
      },
    );
  }
  if (!response.ok) {
    throw new LlmisvcError(
      'LLMISVC_ERR_DEPENDENCY',
      `downloading ${apply.url} answered HTTP ${response.status}`,
      {
        hint: `check the URL in a browser; or download the release asset and use --from DIR with DIR/${apply.file}`,
      },
    );
  }
  return [{ objects: parseManifest(await response.text(), apply.url), namespace: fallback }];
}

/** Namespaces, then CRDs (waited for), then everything else: a CR must never race its CRD. */
async function applyObjects(client: KubeClient, batches: readonly Batch[], timeoutMs: number): Promise<void> {
  const rank = (o: KubeObject) =>
    o.kind === 'Namespace' ? 0 : o.kind === 'CustomResourceDefinition' ? 1 : 2;
  const all = batches.flatMap((b) => b.objects.map((object) => ({ object, namespace: b.namespace })));
  const ordered = [...all].sort((a, b) => rank(a.object) - rank(b.object));
  const early = ordered.filter((o) => rank(o.object) < 2);
  for (const { object } of early) await client.apply(object);
  const deadline = Date.now() + timeoutMs;
  for (const { object: crd } of early.filter((o) => o.object.kind === 'CustomResourceDefinition')) {
    await waitFor(deadline, `CRD ${crd.metadata?.name} to become Established`, async () =>
      isTrue(
        await client.get(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata?.name}`),
        'Established',
      ),
    );
  }
  for (const { object, namespace } of ordered.filter((o) => rank(o.object) === 2)) {
    try {
      await client.apply(object, namespace);
    } catch (error) {
      throw new LlmisvcError(
        'LLMISVC_ERR_KUBE',
        `applying ${describe(object)} failed: ${(error as Error).message}`,
        {
          hint:
            (error as LlmisvcError).hint ??
            'fix the cause above and run the same command again (install is idempotent)',
        },
      );
    }
  }
}

async function applyStep(client: KubeClient, step: StepName, options: InstallOptions): Promise<number> {
  const apply = COMPONENTS[step].apply;
  const timeoutMs = options.stepTimeoutMs ?? 300_000;
  const batches = await readSources(step, options);
  if (apply.kind === 'helm') {
    // `helm template` emits no Namespace objects (helm creates them itself with --create-namespace).
    const namespaces = apply.namespaces.map((name) => ({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name },
    }));
    batches.unshift({ objects: namespaces, namespace: 'default' });
    batches.push({ objects: [...(apply.objects ?? [])] as KubeObject[], namespace: apply.namespaces[0]! });
  }
  await applyObjects(client, batches, timeoutMs);
  return batches.reduce((n, b) => n + b.objects.length, 0);
}

function helmTemplate(helm: string, args: readonly string[], log: (l: string) => void): Promise<string> {
  const argv = ['template', ...args];
  log(`  $ ${helm} ${argv.join(' ')}`);
  return new Promise((resolve, reject) => {
    const child = spawn(helm, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', (error) =>
      reject(
        new LlmisvcError('LLMISVC_ERR_DEPENDENCY', `cannot run ${helm}: ${error.message}`, {
          hint: 'install helm (https://helm.sh/docs/intro/install/), or render the provider elsewhere and use --from DIR',
        }),
      ),
    );
    child.on('close', (code) =>
      code === 0
        ? resolve(Buffer.concat(chunks).toString('utf8'))
        : reject(
            new LlmisvcError(
              'LLMISVC_ERR_DEPENDENCY',
              `${helm} template ${args[0]} exited with code ${code}`,
              {
                hint: 'read helm’s message above; fix it and run llmisvc deps install again (it skips finished steps)',
              },
            ),
          ),
    );
  });
}

/** What is not healthy yet, one sentence each; empty when the step is healthy. */
export async function unhealthy(client: KubeClient, health: readonly HealthCheck[]): Promise<string[]> {
  const problems: string[] = [];
  for (const h of health) {
    if (h.kind === 'crd') {
      const crd = await client.get(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${h.name}`);
      if (!crd) problems.push(`CRD ${h.name} is missing`);
      else if (!isTrue(crd, 'Established')) problems.push(`CRD ${h.name} is not Established`);
    } else if (h.kind === 'api') {
      const response = await client.request('GET', `/apis/${h.groupVersion}`);
      if (response.status !== 200) problems.push(`${h.groupVersion} is not served`);
    } else if (h.kind === 'deployment') {
      const d = await client.get(`/apis/apps/v1/namespaces/${h.namespace}/deployments/${h.name}`);
      const observed =
        (d?.['status'] as { observedGeneration?: number } | undefined)?.observedGeneration ?? 0;
      if (!d) problems.push(`Deployment ${h.namespace}/${h.name} is missing`);
      else if (!isTrue(d, 'Available')) {
        const c = conditionOf(d, 'Available');
        problems.push(
          `Deployment ${h.namespace}/${h.name} is not Available${c?.message ? ` (${c.message})` : ''}`,
        );
      } else if (observed < (d.metadata?.generation ?? 0)) {
        problems.push(
          `Deployment ${h.namespace}/${h.name} is rolling out (generation ${d.metadata?.generation} not yet observed)`,
        );
      }
    } else {
      const gc = await client.get(`/apis/gateway.networking.k8s.io/v1/gatewayclasses/${h.name}`);
      if (!gc) problems.push(`GatewayClass ${h.name} is missing`);
      else if (!isTrue(gc, 'Accepted')) problems.push(`GatewayClass ${h.name} is not Accepted`);
    }
  }
  return problems;
}

async function waitHealthy(
  client: KubeClient,
  step: StepName,
  health: readonly HealthCheck[],
  timeoutMs: number,
  log: (l: string) => void,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const problems = await unhealthy(client, health);
    if (problems.length === 0) return;
    if (problems[0] !== last) {
      last = problems[0]!;
      log(`  waiting: ${last}`);
    }
    if (Date.now() > deadline) {
      throw new LlmisvcError(
        'LLMISVC_ERR_DEPENDENCY',
        `${step} did not become healthy within ${Math.round(timeoutMs / 1000)} s: ${problems.join('; ')}`,
        {
          hint: `${COMPONENTS[step].verify.join(' && ')}  # then run llmisvc deps install again; it skips what is done`,
        },
      );
    }
    await sleep(POLL_MS);
  }
}

async function waitFor(deadline: number, what: string, probe: () => Promise<boolean>): Promise<void> {
  while (!(await probe())) {
    if (Date.now() > deadline) {
      throw new LlmisvcError('LLMISVC_ERR_KUBE', `timed out waiting for ${what}`, {
        hint: 'check the API server (kubectl get --raw /readyz) and run the same command again',
      });
    }
    await sleep(100);
  }
}

/** True when a provider pod started before the InferencePool CRD was created. */
export async function providerOlderThanGie(client: KubeClient, provider: ProviderName): Promise<boolean> {
  const crd = await client.get(
    `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${INFERENCE_POOL_CRD}`,
  );
  if (!crd?.metadata?.creationTimestamp) return false;
  const facts = PROVIDER_FACTS[provider];
  const deployment = await client.get(
    `/apis/apps/v1/namespaces/${facts.namespace}/deployments/${facts.deployment}`,
  );
  const labels =
    (deployment?.['spec'] as { selector?: { matchLabels?: Record<string, string> } } | undefined)?.selector
      ?.matchLabels ?? {};
  const selector = labelSelectorString(labels);
  if (!selector) return false;
  const pods = await client.list(
    `/api/v1/namespaces/${facts.namespace}/pods?labelSelector=${encodeURIComponent(selector)}`,
  );
  const created = Date.parse(crd.metadata.creationTimestamp);
  return pods.some((pod) => {
    const start =
      (pod['status'] as { startTime?: string } | undefined)?.startTime ?? pod.metadata?.creationTimestamp;
    return start !== undefined && Date.parse(start) < created;
  });
}

/** What `kubectl rollout restart` does: a new pod-template annotation, so the Deployment rolls its pods. */
export async function restartDeployment(
  client: KubeClient,
  namespace: string,
  name: string,
  log: (l: string) => void,
): Promise<void> {
  const path = `/apis/apps/v1/namespaces/${namespace}/deployments/${name}`;
  const response = await client.request(
    'PATCH',
    path,
    {
      spec: {
        template: {
          metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': new Date().toISOString() } },
        },
      },
    },
    'application/strategic-merge-patch+json',
  );
  if (response.status >= 300) {
    throw new LlmisvcError(
      'LLMISVC_ERR_KUBE',
      `restarting deployment ${namespace}/${name} answered HTTP ${response.status}`,
      {
        hint: `run it yourself: kubectl rollout restart deployment/${name} -n ${namespace}`,
      },
    );
  }
  log(`  restarted deployment ${namespace}/${name} (the InferencePool CRD is newer than its pods)`);
}
