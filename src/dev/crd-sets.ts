/**
 * @module dev/crd-sets
 * The CustomResourceDefinitions the development API server installs: this project's own (generated into
 * `deploy/crds/`) and those of its dependencies, read out of the dependencies' Go modules and cached per machine.
 *
 * What is installed, and why:
 * - Gateway API v1.6.3, standard channel (Gateway, GatewayClass, HTTPRoute, GRPCRoute, ReferenceGrant,
 *   BackendTLSPolicy, ListenerSet, TCP/TLS/UDPRoute) together with its `safe-upgrades` ValidatingAdmissionPolicy.
 *   That policy is part of the upstream standard install since v1.5 and refuses experimental-channel CRDs over
 *   standard ones and CRD bundles older than v1.5, so a cluster set up "by the book" has it; installing it here makes
 *   the dependency tooling meet what users' clusters have. A test that wants to put older or experimental Gateway
 *   CRDs on this server removes the policy first (`removeManifests` with the `gateway-api` set's policy file).
 * - Gateway API Inference Extension v1.3.0: InferencePool v1 (inference.networking.k8s.io) and InferenceObjective
 *   v1alpha2 (inference.networking.x-k8s.io).
 * - Gateway API Inference Extension v0.5.1: InferencePool v1alpha2 and InferenceModel v1alpha2
 *   (inference.networking.x-k8s.io). The v1.x modules also ship an x-k8s.io InferencePool, but InferenceModel only
 *   exists up to v0.5, so both x-k8s.io kinds come from v0.5.1 to stay one consistent API generation.
 * - LeaderWorkerSet v1 from sigs.k8s.io/lws v0.8.0.
 * - Only when named (`optional`): Istio's CRDs from istio.io/api v1.32.0, for tests of what the controller renders on
 *   an Istio cluster; installed by default they would make every development API server one.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LlmisvcError } from '../errors/index.js';
import { goModDownload, type GoContext } from './go.js';
import { acquireLock } from './kube-assets.js';
import { crdCacheDir } from './paths.js';

/** One set of manifests copied from a Go module. */
export interface DependencyCrdSet {
  /** A short stable name, used by `crds: [...]` selections and in logs. */
  name: DependencyCrdSetName;
  module: string;
  version: string;
  /** Files inside the module, in install order. */
  files: readonly string[];
  /** What the set provides, for logs and docs. */
  provides: string;
  /** Installed only when named, never by `crds: true`. */
  optional?: boolean;
}

export type DependencyCrdSetName =
  'gateway-api' | 'inference-extension' | 'inference-extension-v1alpha2' | 'leader-worker-set' | 'istio';

/** The set name for this project's own CRDs in `deploy/crds/`. */
export const PROJECT_CRD_SET = 'llmisvc';

export type CrdSetName = typeof PROJECT_CRD_SET | DependencyCrdSetName;

const GATEWAY_API_STANDARD = 'config/crd/standard';
const GIE_BASES = 'config/crd/bases';

export const DEPENDENCY_CRD_SETS: readonly DependencyCrdSet[] = [
  {
    name: 'gateway-api',
    module: 'sigs.k8s.io/gateway-api',
    version: 'v1.6.3',
    files: [
      'gatewayclasses',
      'gateways',
      'httproutes',
      'grpcroutes',
      'referencegrants',
      'backendtlspolicies',
      'listenersets',
      'tcproutes',
      'tlsroutes',
      'udproutes',
      'vap_safeupgrades',
    ].map((name) => `${GATEWAY_API_STANDARD}/gateway.networking.k8s.io_${name}.yaml`),
    provides:
      'Gateway API v1 standard channel (Gateway, HTTPRoute, …) and its safe-upgrades admission policy',
  },
  {
    name: 'inference-extension',
    module: 'sigs.k8s.io/gateway-api-inference-extension',
    version: 'v1.3.0',
    files: [
      `${GIE_BASES}/inference.networking.k8s.io_inferencepools.yaml`,
      `${GIE_BASES}/inference.networking.x-k8s.io_inferenceobjectives.yaml`,
      `${GIE_BASES}/inference.networking.x-k8s.io_inferencemodelrewrites.yaml`,
    ],
    provides:
      'InferencePool v1 (inference.networking.k8s.io), InferenceObjective and InferenceModelRewrite v1alpha2',
  },
  {
    name: 'inference-extension-v1alpha2',
    module: 'sigs.k8s.io/gateway-api-inference-extension',
    version: 'v0.5.1',
    files: [
      `${GIE_BASES}/inference.networking.x-k8s.io_inferencepools.yaml`,
      `${GIE_BASES}/inference.networking.x-k8s.io_inferencemodels.yaml`,
    ],
    provides: 'InferencePool v1alpha2 and InferenceModel v1alpha2 (inference.networking.x-k8s.io)',
  },
  {
    name: 'leader-worker-set',
    module: 'sigs.k8s.io/lws',
    version: 'v0.8.0',
    files: ['config/crd/bases/leaderworkerset.x-k8s.io_leaderworkersets.yaml'],
    provides: 'LeaderWorkerSet v1 (leaderworkerset.x-k8s.io)',
  },
  {
    name: 'istio',
    module: 'istio.io/api',
    version: 'v1.32.0',
    files: ['kubernetes/customresourcedefinitions.gen.yaml'],
    provides: "Istio's CRDs (DestinationRule networking.istio.io/v1, …)",
    optional: true,
  },
];

/** Every set name, the project's first. */
export const ALL_CRD_SETS: readonly CrdSetName[] = [
  PROJECT_CRD_SET,
  ...DEPENDENCY_CRD_SETS.map((s) => s.name),
];

/** The sets `crds: true` installs: all but the optional ones. */
export const DEFAULT_CRD_SETS: readonly CrdSetName[] = [
  PROJECT_CRD_SET,
  ...DEPENDENCY_CRD_SETS.filter((s) => !s.optional).map((s) => s.name),
];

/** Manifest files of one set, ready to apply. */
export interface CrdManifestSet {
  name: CrdSetName;
  files: string[];
}

/** Turns `crds: true | false | names` into the list of set names, refusing unknown names. */
export function selectCrdSets(selection: boolean | readonly string[]): CrdSetName[] {
  if (selection === true) return [...DEFAULT_CRD_SETS];
  if (selection === false) return [];
  const unknown = selection.filter((name) => !ALL_CRD_SETS.includes(name as CrdSetName));
  if (unknown.length) {
    throw new LlmisvcError('LLMISVC_ERR_CONFIG', `unknown CRD set ${unknown.join(', ')}`, {
      hint: `choose from ${ALL_CRD_SETS.join(', ')}`,
    });
  }
  return ALL_CRD_SETS.filter((name) => selection.includes(name));
}

/** This project's CRD manifests (`deploy/crds/*.yaml`), sorted; empty while the folder has none. */
export async function projectCrdManifests(root: string): Promise<CrdManifestSet> {
  const dir = join(root, 'deploy', 'crds');
  const names = existsSync(dir) ? (await readdir(dir)).filter((n) => /\.ya?ml$/.test(n)).sort() : [];
  return { name: PROJECT_CRD_SET, files: names.map((n) => join(dir, n)) };
}

/** The cached copy of a dependency set, or undefined when this machine has not fetched it yet. */
export function cachedDependencyCrds(cacheDir: string, set: DependencyCrdSet): CrdManifestSet | undefined {
  const dir = crdCacheDir(cacheDir, set.module, set.version);
  if (!existsSync(join(dir, '.complete'))) return undefined;
  const files = set.files.map((file) => join(dir, baseName(file)));
  // A cache made when the set had fewer files is fetched again (from the module cache: no download).
  return files.every((file) => existsSync(file)) ? { name: set.name, files } : undefined;
}

/**
 * Makes sure a dependency set is in the cache, fetching its Go module through the module proxy when it is not.
 * The files are copied out of the module cache so that a later `go clean -modcache` does not break the server.
 */
export async function ensureDependencyCrds(
  cacheDir: string,
  set: DependencyCrdSet,
  go: GoContext,
): Promise<CrdManifestSet> {
  const cached = cachedDependencyCrds(cacheDir, set);
  if (cached) return cached;
  const dir = crdCacheDir(cacheDir, set.module, set.version);
  const release = await acquireLock(`${dir}.lock`, go.log);
  try {
    const again = cachedDependencyCrds(cacheDir, set);
    if (again) return again;
    go.log(`fetching ${set.module}@${set.version} for ${set.provides}`);
    await mkdir(join(cacheDir, 'crds'), { recursive: true });
    const download = await goModDownload(go, set.module, set.version, cacheDir);
    const work = `${dir}.tmp-${process.pid}`;
    await rm(work, { recursive: true, force: true });
    await mkdir(work, { recursive: true });
    for (const file of set.files) {
      const source = join(download.Dir, file);
      if (!existsSync(source)) {
        throw new LlmisvcError('LLMISVC_ERR_DEPENDENCY', `${set.module}@${set.version} has no ${file}`);
      }
      await copyFile(source, join(work, baseName(file)));
    }
    await writeFile(join(work, '.complete'), `${set.module}@${set.version}\n`);
    await rm(dir, { recursive: true, force: true });
    await rename(work, dir);
  } finally {
    await release();
  }
  return cachedDependencyCrds(cacheDir, set)!;
}

/** Resolves a selection of set names to manifest files, fetching dependency sets that are not cached yet. */
export async function ensureCrdManifests(
  names: readonly CrdSetName[],
  options: { cacheDir: string; repoRoot: string; go: GoContext },
): Promise<CrdManifestSet[]> {
  const sets: CrdManifestSet[] = [];
  for (const name of names) {
    if (name === PROJECT_CRD_SET) {
      sets.push(await projectCrdManifests(options.repoRoot));
      continue;
    }
    sets.push(await ensureDependencyCrds(options.cacheDir, dependencyCrdSet(name), options.go));
  }
  return sets;
}

export function dependencyCrdSet(name: DependencyCrdSetName): DependencyCrdSet {
  const set = DEPENDENCY_CRD_SETS.find((s) => s.name === name);
  if (!set) throw new LlmisvcError('LLMISVC_ERR_CONFIG', `unknown CRD set ${name}`);
  return set;
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
