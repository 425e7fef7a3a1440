/**
 * @module bench/chaos-common
 * Shared pieces of `npm run chaos`: the machine and load average beside every figure, child processes of our own CLI
 * (logged to a file, never outliving the run), resident memory from /proc, and a fixed-rate open loop whose requests
 * go through the load generator's client (src/bench `sendRequest`). The loop stays here rather than in `runLoad`:
 * chaos needs evenly spaced arrivals, a cap on requests in flight (counted as skipped, not queued), a stop hook and
 * each outcome as it happens, while processes are being killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Agent, type Dispatcher } from 'undici';
import { loadAverage, machineDescription, sendRequest, type WorkloadRequest } from '../src/bench/index.js';
import { forgetChild, killOnExit } from '../src/process/index.js';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const cli = join(root, 'bin/llmisvc.js');

export function load(): string {
  return loadAverage();
}

export function machine(): string {
  return machineDescription();
}

export { sleep };

export function log(scenario: string, message: string): void {
  console.log(`[chaos:${scenario}] ${new Date().toISOString().slice(11, 19)} ${message}`);
}

/** A process of ours (`node bin/llmisvc.js …`) with its output in `logPath`. */
export interface CliProcess {
  child: ChildProcess;
  pid: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL: no handler runs, no socket is closed politely. */
  kill(): Promise<void>;
  /** SIGTERM, then SIGKILL after 10 s. */
  stop(): Promise<void>;
}

export function startCli(args: readonly string[], logPath: string): CliProcess {
  const fd = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  killOnExit(child);
  let gone = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      gone = true;
      forgetChild(child);
      resolve({ code, signal });
    }),
  );
  return {
    child,
    pid: child.pid ?? -1,
    exited,
    async kill() {
      if (!gone) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (gone) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Resident set size of a process in MiB (VmRSS), undefined once it is gone. */
export function rssMiB(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
    return kb ? Number(kb) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Direct children of a process, from /proc (pid → command line). */
export function childrenOf(pid: number): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== pid) continue;
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
      out.push({ pid: Number(entry), cmdline });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** How one request ended, as its client saw it. */
export interface Outcome {
  /** ms since the load started */
  start: number;
  end: number;
  /** HTTP status; 0 when no response head arrived. */
  status: number;
  /** `x-inference-pod` of the response, when there was one. */
  pod: string | undefined;
  /** ok: 200 and, for a stream, `data: [DONE]`; error-head: no head or a non-200 status; error-body: cut mid-stream. */
  result: 'ok' | 'error-head' | 'error-body' | 'timeout';
  error?: string;
}

export interface RequestShape {
  baseUrl: string;
  model: string;
  prompt: string;
  maxTokens: number;
  stream: boolean;
  timeoutMs: number;
}

/**
 * One chat completion through the gateway with the load generator's client (`sendRequest` of src/bench), never
 * throwing: the outcome says how it went, split by whether the failure came before or after a 200 head.
 */
export async function chat(shape: RequestShape, t0: number, dispatcher: Dispatcher): Promise<Outcome> {
  const start = performance.now() - t0;
  const request: WorkloadRequest = {
    path: '/v1/chat/completions',
    body: {
      model: shape.model,
      messages: [{ role: 'user', content: shape.prompt }],
      max_tokens: shape.maxTokens,
    },
    group: '',
  };
  const options = { stream: shape.stream, timeoutMs: shape.timeoutMs };
  const r = await sendRequest(
    shape.baseUrl,
    request,
    0,
    start,
    options,
    dispatcher,
    new AbortController().signal,
  );
  const status = r.status ?? 0;
  const result =
    r.outcome === 'ok'
      ? 'ok'
      : r.outcome === 'timeout'
        ? 'timeout'
        : status === 200
          ? 'error-body'
          : 'error-head';
  const outcome: Outcome = { start, end: start + r.e2eMs, status, pod: r.pod, result };
  return r.error === undefined ? outcome : { ...outcome, error: r.error };
}

/**
 * Open-loop load: `rate` requests a second for `durationMs` (at most `maxInFlight` at once: a request that would
 * exceed it is counted as `skipped`, not queued), each shaped by `shape(i)`. Resolves when all have ended.
 */
export async function openLoop(options: {
  rate: number;
  durationMs: number;
  maxInFlight: number;
  shape: (i: number) => RequestShape;
  t0: number;
  onOutcome?: (o: Outcome) => void;
  stop?: () => boolean;
}): Promise<{ outcomes: Outcome[]; skipped: number }> {
  const outcomes: Outcome[] = [];
  const pending = new Set<Promise<void>>();
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: null });
  let skipped = 0;
  const begin = performance.now();
  for (let i = 0; ; i++) {
    const due = begin + (i * 1000) / options.rate;
    if (due - begin > options.durationMs || options.stop?.()) break;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    if (pending.size >= options.maxInFlight) {
      skipped++;
      continue;
    }
    const p: Promise<void> = chat(options.shape(i), options.t0, dispatcher).then((o) => {
      outcomes.push(o);
      options.onOutcome?.(o);
      pending.delete(p);
    });
    pending.add(p);
  }
  await Promise.all(pending);
  await dispatcher.close();
  return { outcomes, skipped };
}

/** Waits for `llmisvc up`'s summary on stdout and returns the OpenAI base URL and model it printed. */
export function parseUpSummary(text: string): { baseUrl: string; model: string } | undefined {
  const match = /OpenAI API\s+(\S+)\/v1\s+\(model "([^"]+)"\)/.exec(text);
  return match ? { baseUrl: match[1]!, model: match[2]! } : undefined;
}
