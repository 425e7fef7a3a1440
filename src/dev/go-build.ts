/**
 * @module dev/go-build
 * Builds Go binaries once per machine into a cache folder: a throw-away Go module (the caller writes its go.mod)
 * is resolved with `go mod tidy` and its main packages built with `go build`, in a temporary folder renamed into
 * place only once every binary built, so an interrupted build never looks finished. A lock folder keeps two
 * processes from building the same thing at once on 2 cores. Used for the controllers of `llmisvc dev cluster`
 * (kube-controller-manager, kube-scheduler, KWOK, the LeaderWorkerSet manager); `dev/kube-assets` predates it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { runGo, type GoContext } from './go.js';
import { acquireLock } from './kube-assets.js';
import { isPidAlive } from '../process/index.js';

export interface GoBinary {
  /** The file name in the cache folder. */
  binary: string;
  /** The main package, e.g. `k8s.io/kubernetes/cmd/kube-scheduler`. */
  pkg: string;
}

export interface GoBuildSpec {
  /** What is built, for progress lines: `kube-controller-manager and kube-scheduler v1.34.4`. */
  label: string;
  /** The finished cache folder; complete once it holds BUILD-INFO.json and every binary. */
  dir: string;
  binaries: readonly GoBinary[];
  /** Writes go.mod (and anything else the module needs) into the empty source folder. */
  prepare(src: string): Promise<void>;
  /** Extra files for the cache folder (configuration shipped inside a module, …), written before the rename. */
  addFiles?(work: string): Promise<void>;
  ldflags?: string;
  /** Added to the `go` environment, e.g. `{ CGO_ENABLED: '0' }`. */
  env?: Record<string, string>;
  /** Said once before a build starts: how long it takes with empty Go caches. */
  estimate: string;
}

/** What BUILD-INFO.json records about a build: how long it took and how much CPU it used. */
export interface GoBuildInfo {
  label: string;
  binaries: Record<string, string>;
  /** How many modules the build graph has (src/go.mod and src/go.sum in the folder list them). */
  moduleCount: number;
  secondsPerBinary: Record<string, number>;
  totalSeconds: number;
  /** CPU seconds of `go` and the compilers it ran (user + system), tidy included. */
  cpuSeconds: number;
  builtAt: string;
}

/** The paths of the binaries in `spec.dir`, building them first when this machine has not yet. */
export async function ensureGoBuild(spec: GoBuildSpec, go: GoContext): Promise<Record<string, string>> {
  const paths = Object.fromEntries(spec.binaries.map(({ binary }) => [binary, join(spec.dir, binary)]));
  if (isCompleteBuild(spec)) return paths;
  const release = await acquireLock(`${spec.dir}.lock`, go.log);
  try {
    if (!isCompleteBuild(spec)) {
      const work = join(dirname(spec.dir), `.${basename(spec.dir)}.tmp-${process.pid}`);
      try {
        await buildInto(spec, work, go);
      } catch (error) {
        await rm(work, { recursive: true, force: true });
        throw error;
      }
    }
  } finally {
    await release();
  }
  return paths;
}

/** What the build recorded, or undefined when the folder is not a finished build. */
export async function goBuildInfo(dir: string): Promise<GoBuildInfo | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, 'BUILD-INFO.json'), 'utf8')) as GoBuildInfo;
  } catch {
    return undefined;
  }
}

export function isCompleteBuild(spec: Pick<GoBuildSpec, 'dir' | 'binaries'>): boolean {
  return (
    existsSync(join(spec.dir, 'BUILD-INFO.json')) &&
    spec.binaries.every(({ binary }) => existsSync(join(spec.dir, binary)))
  );
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

async function buildInto(spec: GoBuildSpec, work: string, go: GoContext): Promise<void> {
  const parent = dirname(spec.dir);
  await mkdir(parent, { recursive: true });
  await removeStaleBuilds(parent, basename(spec.dir), go.log);
  const src = join(work, 'src');
  await mkdir(src, { recursive: true });
  const started = Date.now();
  const cpuBefore = childCpuSeconds();
  go.log(`building ${spec.label} from Go modules into ${spec.dir} (once per machine; ${spec.estimate})`);
  const context: GoContext = { env: { ...go.env, ...spec.env }, log: go.log };
  await spec.prepare(src);

  go.log(`resolving the module graph of ${spec.label} (go mod tidy)`);
  await runGo(context, ['mod', 'tidy'], { cwd: src });

  const secondsPerBinary: Record<string, number> = {};
  for (const { binary, pkg } of spec.binaries) {
    const total = (await runGo(context, ['list', '-mod=mod', '-deps', pkg], { cwd: src }))
      .split('\n')
      .filter(Boolean).length;
    const binaryStarted = Date.now();
    let compiled = 0;
    go.log(`building ${binary} (${pkg}, ${total} packages; cached ones are skipped)`);
    const progress = setInterval(
      () =>
        go.log(`  ${binary}: compiled ${compiled} of at most ${total} packages, ${elapsed(binaryStarted)}`),
      20_000,
    );
    try {
      // -mod=mod wins over a GOFLAGS=-mod=vendor from the caller's environment; -buildvcs=false because the cache
      // may sit inside someone's git checkout.
      const args = ['build', '-mod=mod', '-buildvcs=false', '-v'];
      if (spec.ldflags) args.push('-ldflags', spec.ldflags);
      args.push('-o', join(work, binary), pkg);
      await runGo(context, args, {
        cwd: src,
        onStderrLine: (line) => {
          if (line && !line.startsWith('go: ')) compiled++;
        },
      });
    } finally {
      clearInterval(progress);
    }
    secondsPerBinary[binary] = Math.round((Date.now() - binaryStarted) / 1000);
    go.log(`built ${binary} in ${elapsed(binaryStarted)}`);
  }
  await spec.addFiles?.(work);

  const moduleCount = (await runGo(context, ['list', '-mod=mod', '-m', 'all'], { cwd: src }))
    .split('\n')
    .filter(Boolean).length;
  const info: GoBuildInfo = {
    label: spec.label,
    binaries: Object.fromEntries(spec.binaries.map(({ binary, pkg }) => [binary, pkg])),
    moduleCount,
    secondsPerBinary,
    totalSeconds: Math.round((Date.now() - started) / 1000),
    cpuSeconds: Math.round(childCpuSeconds() - cpuBefore),
    builtAt: new Date().toISOString(),
  };
  await writeFile(join(work, 'BUILD-INFO.json'), JSON.stringify(info, null, 2) + '\n');
  await rm(spec.dir, { recursive: true, force: true });
  await rename(work, spec.dir);
  go.log(
    `${spec.label} ready in ${spec.dir} (${elapsed(started)} wall, ${info.cpuSeconds} CPU-seconds of go and its ` +
      'compilers)',
  );
}

/**
 * CPU time of this process's finished children (and theirs), from /proc/self/stat: `go` is reaped by us once it
 * exits, and it reaped every compiler it ran, so their user + system time lands here. 0 where there is no /proc.
 */
export function childCpuSeconds(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 16 and 17 of stat(5) (cutime, cstime), counted from the state field (3rd) here.
    const cutime = Number(fields[13]);
    const cstime = Number(fields[14]);
    return (cutime + cstime) / 100;
  } catch {
    return 0;
  }
}

/** Removes temp folders of builds whose process is gone (killed, machine restarted). */
async function removeStaleBuilds(parent: string, name: string, log: (m: string) => void): Promise<void> {
  const prefix = `.${name}.tmp-`;
  for (const entry of await readdir(parent)) {
    if (!entry.startsWith(prefix)) continue;
    const pid = Number(entry.slice(prefix.length));
    if (Number.isInteger(pid) && pid !== process.pid && isPidAlive(pid)) continue;
    log(`removing the unfinished build ${join(parent, entry)}`);
    await rm(join(parent, entry), { recursive: true, force: true });
  }
}

function elapsed(since: number): string {
  const seconds = Math.round((Date.now() - since) / 1000);
  return seconds >= 60
    ? `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`
    : `${seconds}s`;
}
