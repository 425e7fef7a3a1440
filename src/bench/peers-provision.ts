/**
 * @module bench/peers-provision
 * The peer routers and the independent simulator `npm run bench:peers` compares against, provisioned once per
 * machine into the llmisvc cache the way the test suite provisions its real parts: PyPI's `vllm-router` and
 * `sglang-router` each in a virtualenv of its own (their pinned dependencies need not agree), and
 * `llm-d-inference-sim` and the Gateway API Inference Extension's own Endpoint Picker built from their Go modules (pure
 * Go, CGO_ENABLED=0) by throw-away modules that `require` the exact versions. A part that cannot be provisioned is
 * reported with its error, so the benchmark goes on without it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ensureGoBuild,
  goBuildInfo,
  goDirectives,
  goModDownload,
  llmisvcCacheDir,
  singleRequireGoMod,
  toolsGo,
} from '../dev/index.js';

export const INFERENCE_SIM_MODULE = 'github.com/llm-d/llm-d-inference-sim';
export const INFERENCE_SIM_VERSION = 'v0.10.2';
export const VLLM_ROUTER_VERSION = '0.1.17';
export const SGLANG_ROUTER_VERSION = '0.3.2';
export const GIE_MODULE = 'sigs.k8s.io/gateway-api-inference-extension';
/** The last GIE release with an Endpoint Picker: v1.6 moved it to llm-d-router, which the module proxy does not serve. */
export const GIE_EPP_VERSION = 'v1.5.0';
/** Beside GIE's EPP binary: its standalone Helm chart's values, which hold the Envoy configuration GIE runs it behind. */
export const GIE_STANDALONE_VALUES = 'standalone-values.yaml';

/** One provisioned part: where it is, or why it is not there. */
export type Provisioned =
  | { ok: true; path: string; cached: boolean; seconds: number; coldSeconds: number | undefined }
  | { ok: false; error: string; seconds: number };

export interface PeerParts {
  inferenceSim: Provisioned;
  vllmRouter: Provisioned;
  sglangRouter: Provisioned;
  gieEpp: Provisioned;
}

export interface ProvisionPeersOptions {
  /** Read for XDG_CACHE_HOME and passed to `go` and `pip`. */
  env: NodeJS.ProcessEnv;
  log: (message: string) => void;
  python?: string;
}

/** Provisions the parts one after the other (two cores: parallel builds only slow each other down). */
export async function provisionPeers(options: ProvisionPeersOptions): Promise<PeerParts> {
  const cacheDir = join(llmisvcCacheDir(options.env), 'peers');
  const inferenceSim = await timed(() => ensureInferenceSim(cacheDir, options));
  const vllmRouter = await timed(() =>
    ensurePipPackage(cacheDir, 'vllm-router', VLLM_ROUTER_VERSION, ['vllm-router'], options),
  );
  // sglang-router's wheel installs the `smg` launcher in recent versions; older ones only a Python module.
  const sglangRouter = await timed(() =>
    ensurePipPackage(cacheDir, 'sglang-router', SGLANG_ROUTER_VERSION, ['smg', 'sglang-router'], options),
  );
  const gieEpp = await timed(() => ensureGieEpp(cacheDir, options));
  return { inferenceSim, vllmRouter, sglangRouter, gieEpp };
}

interface Found {
  path: string;
  cached: boolean;
  /** How long the first provisioning on this machine took, as recorded in the cache. */
  coldSeconds: number | undefined;
}

async function timed(run: () => Promise<Found>): Promise<Provisioned> {
  const started = performance.now();
  try {
    const { path, cached, coldSeconds } = await run();
    const seconds = (performance.now() - started) / 1000;
    return { ok: true, path, cached, seconds, coldSeconds: coldSeconds ?? seconds };
  } catch (error) {
    return { ok: false, error: (error as Error).message, seconds: (performance.now() - started) / 1000 };
  }
}

/** The go.mod of the throw-away module whose only job is to pin the simulator's version. */
export function inferenceSimGoMod(version: string): string {
  return `module llmisvc.local/peers-sim\n\ngo 1.24\n\nrequire ${INFERENCE_SIM_MODULE} ${version}\n`;
}

/**
 * llm-d-inference-sim alone (the test suite's precise-routing tests need it; a cold build takes ~3.5 min on 2 cores).
 * Resolves to the binary's path.
 */
export async function provisionInferenceSim(options: ProvisionPeersOptions): Promise<string> {
  return (await ensureInferenceSim(join(llmisvcCacheDir(options.env), 'peers'), options)).path;
}

/** The modules the do-nothing Go ext_proc server builds with (versions the Go module proxy serves). */
const NULL_EXT_PROC_REQUIRES = [
  'github.com/envoyproxy/go-control-plane/envoy v1.37.1-0.20260409050421-3f47accd6e14',
  'google.golang.org/grpc v1.81.1',
];

/**
 * The do-nothing ext_proc server of `bench:peers --envoy-hop` (source: bench/null-ext-proc-go/main.go), built with
 * grpc-go into `<cache>/peers/null-ext-proc-go/<hash of the source>`; resolves to the binary's path.
 */
export async function provisionNullExtProcGo(
  options: ProvisionPeersOptions,
  sourceFile: string,
): Promise<string> {
  const source = await readFile(sourceFile, 'utf8');
  const goMod = `module llmisvc.local/null-ext-proc\n\ngo 1.24\n\nrequire (\n${NULL_EXT_PROC_REQUIRES.map((r) => `\t${r}\n`).join('')})\n`;
  const key = createHash('sha256').update(source).update(goMod).digest('hex').slice(0, 12);
  const dir = join(llmisvcCacheDir(options.env), 'peers', 'null-ext-proc-go', key);
  const paths = await ensureGoBuild(
    {
      label: 'the do-nothing ext_proc server (grpc-go)',
      dir,
      binaries: [{ binary: 'null-ext-proc', pkg: 'llmisvc.local/null-ext-proc' }],
      env: { CGO_ENABLED: '0' },
      estimate: 'about 30 s on 2 cores with empty Go caches',
      prepare: async (src) => {
        await writeFile(join(src, 'go.mod'), goMod);
        await writeFile(join(src, 'main.go'), source);
      },
    },
    { env: options.env, log: options.log },
  );
  return paths['null-ext-proc']!;
}

async function ensureInferenceSim(cacheDir: string, options: ProvisionPeersOptions): Promise<Found> {
  const dir = join(cacheDir, 'llm-d-inference-sim', INFERENCE_SIM_VERSION);
  const cached = (await goBuildInfo(dir)) !== undefined && existsSync(join(dir, 'llm-d-inference-sim'));
  const paths = await ensureGoBuild(
    {
      label: `llm-d-inference-sim ${INFERENCE_SIM_VERSION}`,
      dir,
      binaries: [{ binary: 'llm-d-inference-sim', pkg: `${INFERENCE_SIM_MODULE}/cmd/llm-d-inference-sim` }],
      env: { CGO_ENABLED: '0' },
      estimate: 'a few minutes on 2 cores',
      prepare: async (src) => {
        await writeFile(join(src, 'go.mod'), inferenceSimGoMod(INFERENCE_SIM_VERSION));
        // `go mod tidy` drops a requirement nothing imports; this file imports the main package's module.
        await writeFile(
          join(src, 'tools.go'),
          `//go:build tools\n\npackage tools\n\nimport _ "${INFERENCE_SIM_MODULE}/cmd/llm-d-inference-sim"\n`,
        );
      },
    },
    { env: options.env, log: options.log },
  );
  return { path: paths['llm-d-inference-sim']!, cached, coldSeconds: (await goBuildInfo(dir))?.totalSeconds };
}

/**
 * GIE's Endpoint Picker (`cmd/epp`, pure Go) built from its module, with the standalone chart's values copied beside
 * it (GIE_STANDALONE_VALUES). Resolves to the binary's path.
 */
async function ensureGieEpp(cacheDir: string, options: ProvisionPeersOptions): Promise<Found> {
  const dir = join(cacheDir, 'gie-epp', GIE_EPP_VERSION);
  const cached = (await goBuildInfo(dir)) !== undefined && existsSync(join(dir, 'epp'));
  const go = { env: options.env, log: options.log };
  const binaries = [{ binary: 'epp', pkg: `${GIE_MODULE}/cmd/epp` }];
  let moduleDir = '';
  const paths = await ensureGoBuild(
    {
      label: `the Gateway API Inference Extension's Endpoint Picker ${GIE_EPP_VERSION}`,
      dir,
      binaries,
      env: { CGO_ENABLED: '0' },
      estimate: 'about 2 minutes on 2 cores',
      prepare: async (src) => {
        const module = await goModDownload(go, GIE_MODULE, GIE_EPP_VERSION, src);
        moduleDir = module.Dir;
        const goVersion = goDirectives(await readFile(module.GoMod, 'utf8')).go;
        await writeFile(join(src, 'go.mod'), singleRequireGoMod(GIE_MODULE, GIE_EPP_VERSION, goVersion));
        await writeFile(join(src, 'tools.go'), toolsGo(binaries));
      },
      addFiles: async (work) => {
        await copyFile(
          join(moduleDir, 'config/charts/standalone/values.yaml'),
          join(work, GIE_STANDALONE_VALUES),
        );
      },
    },
    go,
  );
  return { path: paths['epp']!, cached, coldSeconds: (await goBuildInfo(dir))?.totalSeconds };
}

/**
 * A virtualenv `<cache>/peers/<package>-<version>` holding one PyPI package, created on first use; resolves to the
 * first of `scripts` the package installed. The venv is built in a temp folder and renamed, so an interrupted
 * install never looks finished.
 */
async function ensurePipPackage(
  cacheDir: string,
  name: string,
  version: string,
  scripts: readonly string[],
  options: ProvisionPeersOptions,
): Promise<Found> {
  const venv = join(cacheDir, `${name}-${version}`);
  const found = (): string | undefined =>
    scripts.map((s) => join(venv, 'bin', s)).find((candidate) => existsSync(candidate));
  const record = join(venv, 'llmisvc-install.json');
  const cached = found();
  if (cached) {
    const coldSeconds = existsSync(record)
      ? (JSON.parse(await readFile(record, 'utf8')) as { seconds?: number }).seconds
      : undefined;
    return { path: cached, cached: true, coldSeconds };
  }
  const started = performance.now();
  const python = options.python ?? 'python3';
  if (spawnSync(python, ['--version']).status !== 0) throw new Error(`${python} is not available`);
  await mkdir(cacheDir, { recursive: true });
  await rm(venv, { recursive: true, force: true });
  options.log(`installing ${name}==${version} from PyPI into ${venv} (once per machine)`);
  try {
    await run(python, ['-m', 'venv', venv], options);
    await run(
      join(venv, 'bin', 'pip'),
      ['install', '--disable-pip-version-check', '--progress-bar', 'off', `${name}==${version}`],
      options,
    );
  } catch (error) {
    await rm(venv, { recursive: true, force: true });
    throw error;
  }
  const installed = found();
  if (!installed) {
    throw new Error(`${name}==${version} installed no ${scripts.join(' or ')} script in ${venv}/bin`);
  }
  const seconds = (performance.now() - started) / 1000;
  await writeFile(record, JSON.stringify({ seconds, installedAt: new Date().toISOString() }) + '\n');
  options.log(`installed ${installed} in ${seconds.toFixed(0)} s`);
  return { path: installed, cached: false, coldSeconds: seconds };
}

function run(command: string, args: readonly string[], options: ProvisionPeersOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const onData = (data: Buffer): void => {
      const text = data.toString();
      tail = (tail + text).slice(-3000);
      for (const line of text.split('\n')) if (line.trim()) options.log(`  ${line.trim()}`);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`\`${command} ${args.join(' ')}\` exited with ${code}:\n${tail.trim()}`)),
    );
  });
}
