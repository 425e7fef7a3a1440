/**
 * @module dev/kube-assets
 * The binaries of the development API server: `kube-apiserver`, `etcd` and `kubectl`. They come from
 * `KUBEBUILDER_ASSETS` when the caller has one (the envtest convention), otherwise from a per-machine cache that is
 * filled once by building them from the Go modules `k8s.io/kubernetes` and `go.etcd.io/etcd/server/v3`: no package
 * registry this project can reach ships them prebuilt.
 *
 * The build runs in a temporary folder next to the cache entry and is renamed into place only when all three
 * binaries built and answered `--version`, so a build that was interrupted leaves nothing that looks finished. A
 * lock folder keeps two processes (say `npm test` and `llmisvc dev apiserver`) from building at once on 2 cores.
 */
import { execFile } from 'node:child_process';
import { constants, existsSync } from 'node:fs';
import { access, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { LlmisvcError } from '../errors/index.js';
import { goModDownload, runGo, toolsGo, type GoContext } from './go.js';
import { kubeAssetsDir } from './paths.js';
import { isPidAlive } from '../process/index.js';

const execFileAsync = promisify(execFile);

/**
 * The Kubernetes version built when `KUBEBUILDER_ASSETS` is not set: the release this project is tested against.
 * Its go.mod pins etcd 3.6.4, the etcd that release is tested with, so etcd is built from the same module graph and
 * shares its compiled packages (etcd then costs seconds, not minutes). Newer releases served by the Go module proxy
 * can be asked for (`--kubernetes-version`), but only this one has been built and run here.
 */
export const DEFAULT_KUBERNETES_VERSION = 'v1.34.4';

/** Where the three binaries are. `kubectl` may be absent from a caller's KUBEBUILDER_ASSETS. */
export interface KubeAssets {
  dir: string;
  kubeApiserver: string;
  etcd: string;
  kubectl: string | undefined;
  /** `KUBEBUILDER_ASSETS` when the caller provided the folder, `cache` when this machine built it earlier or now. */
  source: 'KUBEBUILDER_ASSETS' | 'cache';
}

export interface EnsureKubeAssetsOptions {
  /** A folder with `kube-apiserver` and `etcd` (the value of KUBEBUILDER_ASSETS); wins over the cache. */
  kubebuilderAssets?: string | undefined;
  /** The llmisvc cache root (see `llmisvcCacheDir`). */
  cacheDir: string;
  kubernetesVersion?: string | undefined;
  go: GoContext;
}

/** Returns the binaries, building them into the cache first when this machine has none for the version. */
export async function ensureKubeAssets(options: EnsureKubeAssetsOptions): Promise<KubeAssets> {
  if (options.kubebuilderAssets) return kubeAssetsFromDir(options.kubebuilderAssets, 'KUBEBUILDER_ASSETS');
  const version = options.kubernetesVersion ?? DEFAULT_KUBERNETES_VERSION;
  const dir = kubeAssetsDir(options.cacheDir, version);
  if (await isCompleteAssetsDir(dir)) return kubeAssetsFromDir(dir, 'cache');
  const release = await acquireLock(`${dir}.lock`, options.go.log);
  try {
    // Another process may have finished the build while this one waited for the lock.
    if (!(await isCompleteAssetsDir(dir))) {
      const work = join(dirname(dir), `.${version}.tmp-${process.pid}`);
      try {
        await buildKubeAssets(dir, work, version, options.go);
      } catch (error) {
        // A failed build leaves nothing behind; the Go module and build caches keep what was already done.
        await rm(work, { recursive: true, force: true });
        throw error;
      }
    }
  } finally {
    await release();
  }
  return kubeAssetsFromDir(dir, 'cache');
}

/** The cached binaries for a version, or undefined when this machine has not built them yet. */
export async function cachedKubeAssets(
  cacheDir: string,
  kubernetesVersion = DEFAULT_KUBERNETES_VERSION,
): Promise<KubeAssets | undefined> {
  const dir = kubeAssetsDir(cacheDir, kubernetesVersion);
  return (await isCompleteAssetsDir(dir)) ? kubeAssetsFromDir(dir, 'cache') : undefined;
}

async function kubeAssetsFromDir(dir: string, source: KubeAssets['source']): Promise<KubeAssets> {
  const missing: string[] = [];
  for (const name of ['kube-apiserver', 'etcd']) {
    if (!(await isExecutable(join(dir, name)))) missing.push(name);
  }
  if (missing.length) {
    throw new LlmisvcError(
      'LLMISVC_ERR_DEPENDENCY',
      `${source === 'KUBEBUILDER_ASSETS' ? 'KUBEBUILDER_ASSETS' : 'the kube-assets cache'} folder ${dir} has no ` +
        `executable ${missing.join(' or ')}`,
      {
        hint:
          source === 'KUBEBUILDER_ASSETS'
            ? 'point KUBEBUILDER_ASSETS at a folder holding kube-apiserver and etcd (for example from ' +
              '`setup-envtest use -p path`), or unset it so llmisvc builds them once into its cache'
            : `remove ${dir} so the next run builds it again`,
      },
    );
  }
  const kubectl = join(dir, 'kubectl');
  return {
    dir,
    kubeApiserver: join(dir, 'kube-apiserver'),
    etcd: join(dir, 'etcd'),
    kubectl: (await isExecutable(kubectl)) ? kubectl : undefined,
    source,
  };
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** A cache entry is complete only once the build renamed it into place, which happens after BUILD-INFO is written. */
async function isCompleteAssetsDir(dir: string): Promise<boolean> {
  return (
    existsSync(join(dir, 'BUILD-INFO.json')) &&
    (await isExecutable(join(dir, 'kube-apiserver'))) &&
    (await isExecutable(join(dir, 'etcd'))) &&
    (await isExecutable(join(dir, 'kubectl')))
  );
}

/** The binaries built and the Go packages each is built from. */
export const KUBE_ASSET_PACKAGES: readonly { binary: string; pkg: string }[] = [
  { binary: 'kube-apiserver', pkg: 'k8s.io/kubernetes/cmd/kube-apiserver' },
  { binary: 'etcd', pkg: 'go.etcd.io/etcd/server/v3' },
  { binary: 'kubectl', pkg: 'k8s.io/kubernetes/cmd/kubectl' },
];

/**
 * Reads the staging modules (`k8s.io/api`, `k8s.io/client-go` …) from k8s.io/kubernetes' own go.mod, where each is
 * replaced by a folder under `./staging/`. Those replace lines do not apply when the module is a dependency, so the
 * build module must repeat them with the published versions.
 */
export function stagingModulesFromGoMod(goMod: string): string[] {
  const modules = new Set<string>();
  for (const match of goMod.matchAll(/^\s*(?:replace\s+)?(\S+)\s+=>\s+\.\/staging\/\S+\s*$/gm)) {
    modules.add(match[1]!);
  }
  return [...modules].sort();
}

/** k8s.io/kubernetes v1.Y.Z publishes its staging modules as v0.Y.Z. */
export function stagingVersion(kubernetesVersion: string): string {
  const match = /^v1\.(\d+)\.(\d+)(.*)$/.exec(kubernetesVersion);
  if (!match) {
    throw new LlmisvcError(
      'LLMISVC_ERR_CONFIG',
      `Kubernetes version ${kubernetesVersion} is not of the form v1.Y.Z`,
    );
  }
  return `v0.${match[1]}.${match[2]}${match[3]}`;
}

/** The `go` and `godebug` directives of a go.mod, so the build behaves like the upstream one. */
export function goDirectives(goMod: string): { go: string; godebug: string[] } {
  const go = /^go\s+(\S+)\s*$/m.exec(goMod)?.[1] ?? '1.24.0';
  const godebug = [...goMod.matchAll(/^godebug\s+(.+?)\s*$/gm)].map((m) => m[1]!);
  return { go, godebug };
}

/** The go.mod of the throw-away module that builds the binaries. */
export function kubeAssetsGoMod(input: {
  kubernetesVersion: string;
  go: string;
  godebug: readonly string[];
  stagingModules: readonly string[];
}): string {
  const staging = stagingVersion(input.kubernetesVersion);
  return [
    '// Generated by llmisvc (src/dev/kube-assets.ts) to build kube-apiserver, etcd and kubectl.',
    'module llmisvc.local/kube-assets',
    '',
    `go ${input.go}`,
    ...input.godebug.map((d) => `godebug ${d}`),
    '',
    `require k8s.io/kubernetes ${input.kubernetesVersion}`,
    '',
    'replace (',
    ...input.stagingModules.map((m) => `\t${m} => ${m} ${staging}`),
    ')',
    '',
  ].join('\n');
}

/** Version stamps the Kubernetes release build sets; without them `--version` and `/version` say v0.0.0-master. */
export function kubernetesLdflags(kubernetesVersion: string): string {
  const match = /^v(\d+)\.(\d+)/.exec(kubernetesVersion);
  const stamps: Record<string, string> = {
    gitVersion: kubernetesVersion,
    gitMajor: match?.[1] ?? '',
    gitMinor: match?.[2] ?? '',
    gitTreeState: 'clean',
  };
  const flags = ['-s', '-w'];
  for (const pkg of ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version']) {
    for (const [name, value] of Object.entries(stamps)) flags.push(`-X ${pkg}.${name}=${value}`);
  }
  return flags.join(' ');
}

async function buildKubeAssets(
  finalDir: string,
  work: string,
  version: string,
  go: GoContext,
): Promise<void> {
  const parent = dirname(finalDir);
  await mkdir(parent, { recursive: true });
  await removeStaleBuilds(parent, version, go.log);
  await rm(work, { recursive: true, force: true });
  await mkdir(join(work, 'src'), { recursive: true });
  const started = Date.now();
  go.log(
    `building kube-apiserver, etcd and kubectl ${version} from Go modules into ${finalDir} ` +
      '(once per machine; with empty Go caches about 10 CPU-minutes: 5-10 minutes on 2 idle cores)',
  );

  const kubernetes = await goModDownload(go, 'k8s.io/kubernetes', version, parent);
  const upstreamGoMod = await readFile(kubernetes.GoMod, 'utf8');
  const stagingModules = stagingModulesFromGoMod(upstreamGoMod);
  if (stagingModules.length === 0) {
    throw new LlmisvcError(
      'LLMISVC_ERR_DEPENDENCY',
      `k8s.io/kubernetes@${version}'s go.mod lists no staging modules`,
    );
  }
  const src = join(work, 'src');
  await writeFile(
    join(src, 'go.mod'),
    kubeAssetsGoMod({ kubernetesVersion: version, ...goDirectives(upstreamGoMod), stagingModules }),
  );
  await writeFile(join(src, 'tools.go'), toolsGo(KUBE_ASSET_PACKAGES));

  go.log(`resolving the module graph (go mod tidy, ${stagingModules.length} staging modules replaced)`);
  let downloads = 0;
  const tidyProgress = every(15_000, () => go.log(`  go mod tidy: ${downloads} modules downloaded so far`));
  try {
    await runGo(go, ['mod', 'tidy'], {
      cwd: src,
      onStderrLine: (line) => {
        if (line.startsWith('go: downloading')) downloads++;
      },
    });
  } finally {
    tidyProgress.stop();
  }

  const ldflags = kubernetesLdflags(version);
  const durations: Record<string, number> = {};
  for (const { binary, pkg } of KUBE_ASSET_PACKAGES) {
    const total = (await runGo(go, ['list', '-mod=mod', '-deps', pkg], { cwd: src }))
      .split('\n')
      .filter(Boolean).length;
    const binaryStarted = Date.now();
    let compiled = 0;
    go.log(`building ${binary} (${pkg}, ${total} packages; cached ones are skipped)`);
    const progress = every(20_000, () =>
      go.log(`  ${binary}: compiled ${compiled} of at most ${total} packages, ${elapsed(binaryStarted)}`),
    );
    try {
      // -mod=mod wins over a GOFLAGS=-mod=vendor the caller's environment may carry; -buildvcs=false because the
      // cache may sit inside someone's git checkout, whose state has nothing to do with these binaries.
      const args = [
        'build',
        '-mod=mod',
        '-buildvcs=false',
        '-v',
        '-ldflags',
        ldflags,
        '-o',
        join(work, binary),
        pkg,
      ];
      await runGo(go, args, {
        cwd: src,
        onStderrLine: (line) => {
          if (line && !line.startsWith('go: ')) compiled++;
        },
      });
    } finally {
      progress.stop();
    }
    durations[binary] = Math.round((Date.now() - binaryStarted) / 1000);
    go.log(`built ${binary} in ${elapsed(binaryStarted)}`);
  }

  const versions: Record<string, string> = {};
  versions['kube-apiserver'] = await versionOf(join(work, 'kube-apiserver'), ['--version']);
  versions['etcd'] = (await versionOf(join(work, 'etcd'), ['--version'])).split('\n')[0] ?? '';
  versions['kubectl'] = await versionOf(join(work, 'kubectl'), ['version', '--client']);
  const etcdModule = (
    await runGo(go, ['list', '-mod=mod', '-m', 'go.etcd.io/etcd/server/v3'], { cwd: src })
  ).trim();
  await writeFile(
    join(work, 'BUILD-INFO.json'),
    JSON.stringify(
      {
        kubernetes: version,
        etcdModule,
        versions,
        secondsPerBinary: durations,
        totalSeconds: Math.round((Date.now() - started) / 1000),
        builtAt: new Date().toISOString(),
      },
      null,
      2,
    ) + '\n',
  );
  await rm(finalDir, { recursive: true, force: true });
  await rename(work, finalDir);
  go.log(`kube-assets ${version} ready in ${finalDir} (${elapsed(started)} in all; ${etcdModule})`);
}

async function versionOf(binary: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync(binary, args, { timeout: 30_000 });
    return stdout.trim();
  } catch (error) {
    throw new LlmisvcError(
      'LLMISVC_ERR_PROCESS',
      `the freshly built ${binary} does not run: ${String(error)}`,
      {
        cause: error,
      },
    );
  }
}

/** Removes temp folders of builds whose process is gone (killed, machine restarted). */
async function removeStaleBuilds(parent: string, version: string, log: (m: string) => void): Promise<void> {
  const prefix = `.${version}.tmp-`;
  for (const name of await readdir(parent)) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length));
    if (Number.isInteger(pid) && pid !== process.pid && isPidAlive(pid)) continue;
    log(`removing the unfinished build ${join(parent, name)}`);
    await rm(join(parent, name), { recursive: true, force: true });
  }
}

/**
 * A lock folder holding the owner's pid. `mkdir` is atomic, so exactly one process gets it; a lock whose owner died
 * is taken over.
 */
export async function acquireLock(path: string, log: (m: string) => void): Promise<() => Promise<void>> {
  await mkdir(dirname(path), { recursive: true });
  let announced = false;
  for (;;) {
    try {
      await mkdir(path);
      await writeFile(join(path, 'pid'), String(process.pid));
      return () => rm(path, { recursive: true, force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = Number(await readFile(join(path, 'pid'), 'utf8').catch(() => ''));
    if (!owner) {
      // The owner is between mkdir and writing its pid, or died right there; give it a moment, then take over.
      const age = Date.now() - (await stat(path).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if (age > 10_000) await rm(path, { recursive: true, force: true });
    } else if (!isPidAlive(owner)) {
      log(`taking over the lock ${path} from the finished process ${owner}`);
      await rm(path, { recursive: true, force: true });
      continue;
    } else if (!announced) {
      log(`waiting for process ${owner}, which is building the same files (lock ${path})`);
      announced = true;
    }
    await sleep(2_000);
  }
}

function every(ms: number, fn: () => void): { stop(): void } {
  const timer = setInterval(fn, ms);
  return { stop: () => clearInterval(timer) };
}

function elapsed(since: number): string {
  const seconds = Math.round((Date.now() - since) / 1000);
  return seconds >= 60
    ? `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`
    : `${seconds}s`;
}
