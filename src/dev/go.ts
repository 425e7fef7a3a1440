/**
 * @module dev/go
 * The thin edge to the Go toolchain: the development API server's binaries are built from Go modules and the
 * dependency CRD manifests are read out of Go modules, both through the ordinary `go` command and the module proxy.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { LlmisvcError } from '../errors/index.js';
import { startWatchdog } from '../process/index.js';

export interface GoContext {
  /** The environment the `go` command runs with (GOPATH, GOPROXY, GOFLAGS, PATH …). */
  env: NodeJS.ProcessEnv;
  log: (message: string) => void;
}

/** What `go mod download -json` prints for one module version. */
export interface GoModuleDownload {
  Path: string;
  Version: string;
  Dir: string;
  GoMod: string;
}

/** Finds the `go` binary: on PATH, or in the standard install location, so a fresh login shell is not needed. */
export function goBinary(env: NodeJS.ProcessEnv): string {
  for (const dir of [...(env['PATH'] ?? '').split(':').filter(Boolean), '/usr/local/go/bin']) {
    const candidate = join(dir, 'go');
    if (existsSync(candidate)) return candidate;
  }
  throw new LlmisvcError('LLMISVC_ERR_DEPENDENCY', 'the Go toolchain (`go`) was not found on PATH', {
    hint:
      'install Go 1.24 or newer (https://go.dev/doc/install): it is needed once per machine to build kube-apiserver ' +
      'and etcd (unless KUBEBUILDER_ASSETS names a folder holding them) and to fetch the dependency CRDs (unless ' +
      '--no-crds)',
  });
}

export interface RunGoOptions {
  cwd: string;
  /** Called for each line the command writes to stderr (where `go build -v` lists packages). */
  onStderrLine?: (line: string) => void;
}

/** Runs `go ARGS` and resolves to its stdout; rejects with the tail of stderr when it fails. */
export function runGo(context: GoContext, args: readonly string[], options: RunGoOptions): Promise<string> {
  const go = goBinary(context.env);
  return new Promise((resolve, reject) => {
    // GOWORK=off: a go.work in some parent folder of the cache must not pull other modules into the build.
    const env = { ...context.env, GOWORK: 'off' };
    const child = spawn(go, args, { cwd: options.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    // A `go build` of kube-apiserver runs for minutes; it must not go on compiling after this process was killed.
    const watchdog = child.pid ? startWatchdog(child.pid) : undefined;
    const stdout: Buffer[] = [];
    const stderrTail: string[] = [];
    let partial = '';
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) acceptLine(line);
    });
    function acceptLine(line: string): void {
      stderrTail.push(line);
      if (stderrTail.length > 40) stderrTail.shift();
      options.onStderrLine?.(line);
    }
    child.on('error', (error) =>
      reject(
        new LlmisvcError('LLMISVC_ERR_PROCESS', `could not run ${go}: ${error.message}`, { cause: error }),
      ),
    );
    child.on('close', (code, signal) => {
      watchdog?.kill('SIGKILL');
      if (partial) acceptLine(partial);
      if (code === 0) {
        resolve(Buffer.concat(stdout).toString('utf8'));
        return;
      }
      reject(
        new LlmisvcError(
          'LLMISVC_ERR_PROCESS',
          `\`go ${args.join(' ')}\` failed (${signal ?? `exit ${code}`}) in ${options.cwd}:\n${stderrTail.join('\n')}`,
          {
            hint: 'check that the Go module proxy is reachable (GOPROXY) and that the disk has a few GB free',
          },
        ),
      );
    });
  });
}

/** `go mod download -json MODULE@VERSION`: fetches one module version into the module cache and says where it is. */
export async function goModDownload(
  context: GoContext,
  module: string,
  version: string,
  cwd: string,
): Promise<GoModuleDownload> {
  const out = await runGo(context, ['mod', 'download', '-json', `${module}@${version}`], { cwd });
  const parsed = JSON.parse(out) as Partial<GoModuleDownload> & { Error?: string };
  if (parsed.Error || !parsed.Dir || !parsed.GoMod) {
    throw new LlmisvcError(
      'LLMISVC_ERR_DEPENDENCY',
      `the Go module ${module}@${version} could not be downloaded: ${parsed.Error ?? 'no Dir in the answer'}`,
      { hint: 'check that the Go module proxy (GOPROXY) is reachable from this machine' },
    );
  }
  return parsed as GoModuleDownload;
}

/** A `tools.go` that imports the main packages, so `go mod tidy` keeps their requirements. */
export function toolsGo(binaries: readonly { binary: string; pkg: string }[]): string {
  return [
    '//go:build tools',
    '',
    '// Package tools pins the main packages llmisvc builds, so `go mod tidy` keeps their requirements.',
    'package tools',
    '',
    'import (',
    ...binaries.map(({ pkg }) => `\t_ "${pkg}"`),
    ')',
    '',
  ].join('\n');
}
