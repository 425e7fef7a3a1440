/**
 * @module local/dashboard
 * The live view of `llmisvc up` at `/dashboard` on the gateway port: one self-contained HTML page (no build step, no
 * CDN) that polls `/dashboard/state`, a small JSON document of the stack's state — per endpoint its queue depth,
 * running batch, KV-cache use and prefix-cache hit ratio (scraped from the model servers' vLLM metrics), requests
 * per second, and the most recent routing decisions the gateway made.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { RoutingDecision } from '../gateway/index.js';
import { refusedMisdirected } from '../transport/index.js';

export interface DashboardEndpoint {
  pod: string;
  workload: string;
  role: string;
  address: string;
}

export interface EndpointView extends DashboardEndpoint {
  up: boolean;
  waiting: number;
  running: number;
  /** KV-cache use in [0, 1]. */
  kvCacheUsage: number;
  /** Prefix-cache hit ratio over the last few seconds (tokens hit / tokens queried), in [0, 1]; null when idle. */
  prefixHitRatio: number | null;
  /** Requests the gateway sent here per second (last 5 s). */
  rps: number;
  requests: number;
}

export interface DashboardSnapshot {
  time: number;
  rps: number;
  requests: number;
  endpoints: EndpointView[];
  decisions: RoutingDecision[];
}

/** The value of one unlabelled-or-labelled sample, summed over its label sets. */
export function sampleValue(exposition: string, name: string): number | undefined {
  let total: number | undefined;
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) total = (total ?? 0) + value;
  }
  return total;
}

const WINDOW_S = 5;
const DECISIONS = 40;
/** How long after the last `/dashboard/state` poll the endpoints are still scraped. */
const WATCH_MS = 10_000;

/**
 * Requests per second over the last `WINDOW_S` full seconds, in a fixed ring of one slot per second of the window
 * plus the current one: `llmisvc up` may run for weeks with nobody polling, so what `record` keeps must not grow with
 * the uptime, and counting stays O(1) with no allocation. A slot whose second is not the one being counted is reused.
 */
class PerSecondCounts {
  static readonly SLOTS = WINDOW_S + 1;
  /** The second (epoch s) each slot counts; -1 for never. */
  private readonly slotSecond = new Float64Array(PerSecondCounts.SLOTS).fill(-1);
  private readonly slotCount = new Uint32Array(PerSecondCounts.SLOTS);

  add(second: number): void {
    const slot = second % PerSecondCounts.SLOTS;
    if (this.slotSecond[slot] !== second) {
      this.slotSecond[slot] = second;
      this.slotCount[slot] = 0;
    }
    this.slotCount[slot]! += 1;
  }

  /** Slots counting some second: at most `SLOTS`, whatever the uptime. */
  held(): number {
    let held = 0;
    for (const second of this.slotSecond) if (second !== -1) held++;
    return held;
  }

  /** The mean over the `WINDOW_S` full seconds before `now`'s (the current second is incomplete). */
  rate(now: number): number {
    const current = Math.floor(now / 1000);
    let total = 0;
    for (let slot = 0; slot < PerSecondCounts.SLOTS; slot++) {
      const second = this.slotSecond[slot]!;
      if (second >= current - WINDOW_S && second < current) total += this.slotCount[slot]!;
    }
    return total / WINDOW_S;
  }
}

interface Live {
  view: EndpointView;
  /** Prefix counters over the last scrapes: [time, queried, hit]. */
  prefix: [number, number, number][];
  seconds: PerSecondCounts;
}

/** The state behind `/dashboard/state`; the gateway feeds it decisions, a timer scrapes the endpoints while it is watched. */
export class DashboardState {
  private readonly live = new Map<string, Live>();
  private readonly decisions: RoutingDecision[] = [];
  private readonly seconds = new PerSecondCounts();
  private requests = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Set by `start`: scraping is allowed, at this pace. */
  private intervalMs: number | undefined;
  private lastWatchedAt = 0;

  /** Replaces the endpoints (a restarted server may have moved), keeping what was gathered of those that stay. */
  setEndpoints(endpoints: readonly DashboardEndpoint[]): void {
    const next = new Set(endpoints.map((e) => e.address));
    for (const address of [...this.live.keys()]) if (!next.has(address)) this.live.delete(address);
    for (const e of endpoints) {
      const live = this.live.get(e.address);
      if (live) {
        live.view = { ...live.view, ...e };
        continue;
      }
      this.live.set(e.address, {
        view: {
          ...e,
          up: false,
          waiting: 0,
          running: 0,
          kvCacheUsage: 0,
          prefixHitRatio: null,
          rps: 0,
          requests: 0,
        },
        prefix: [],
        seconds: new PerSecondCounts(),
      });
    }
  }

  /** Called by the gateway for every request: O(1), no allocation beyond the decision itself. */
  record(decision: RoutingDecision): void {
    const second = Math.floor(decision.time / 1000);
    this.requests += 1;
    this.seconds.add(second);
    if (decision.endpoint) {
      const live = this.live.get(decision.endpoint);
      if (live) {
        live.view.requests += 1;
        live.seconds.add(second);
      }
    }
    this.decisions.push(decision);
    if (this.decisions.length > DECISIONS) this.decisions.shift();
  }

  /**
   * Enables scraping the endpoints' metrics once a second — while someone watches: the page polls `/dashboard/state`
   * every second, and scraping stops `WATCH_MS` after the last poll. An unwatched dashboard cost `llmisvc up` eight
   * `fetch`es a second for nothing.
   */
  start(intervalMs = 1000): void {
    this.intervalMs = intervalMs;
  }

  /**
   * A viewer asked for the state: keep scraping while polls continue. Resolves once the state is current: at once
   * while scraping runs, after a first scrape when it starts (so the first view is not empty).
   */
  watched(now = Date.now()): Promise<void> {
    this.lastWatchedAt = now;
    if (this.intervalMs === undefined || this.timer) return Promise.resolve();
    this.timer = setInterval(() => {
      if (Date.now() - this.lastWatchedAt > WATCH_MS) this.close();
      else void this.scrape();
    }, this.intervalMs);
    this.timer.unref();
    return this.scrape();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async scrape(): Promise<void> {
    await Promise.all(
      [...this.live.values()].map(async (live) => {
        try {
          const res = await fetch(`http://${live.view.address}/metrics`, {
            signal: AbortSignal.timeout(800),
          });
          const text = await res.text();
          const v = live.view;
          v.up = res.ok;
          v.waiting = sampleValue(text, 'vllm:num_requests_waiting') ?? 0;
          v.running = sampleValue(text, 'vllm:num_requests_running') ?? 0;
          v.kvCacheUsage =
            sampleValue(text, 'vllm:kv_cache_usage_perc') ??
            sampleValue(text, 'vllm:gpu_cache_usage_perc') ??
            0;
          const queried = sampleValue(text, 'vllm:prefix_cache_queries_total');
          const hit = sampleValue(text, 'vllm:prefix_cache_hits_total');
          if (queried !== undefined && hit !== undefined) {
            live.prefix.push([Date.now(), queried, hit]);
            while (live.prefix.length > 1 && Date.now() - live.prefix[0]![0] > 10_000) live.prefix.shift();
            const first = live.prefix[0]!;
            const dq = queried - first[1];
            // A restarted server resets its counters: start the window again.
            if (dq < 0) live.prefix = [[Date.now(), queried, hit]];
            v.prefixHitRatio = dq > 0 ? (hit - first[2]) / dq : queried > 0 ? hit / queried : null;
          }
        } catch {
          live.view.up = false;
        }
      }),
    );
  }

  /**
   * How many per-second counts the state holds, over the total and every endpoint: bounded by the number of
   * endpoints, whatever the uptime (for the test that says so; nothing on the request path calls it).
   */
  countedSeconds(): number {
    let held = this.seconds.held();
    for (const live of this.live.values()) held += live.seconds.held();
    return held;
  }

  snapshot(now = Date.now()): DashboardSnapshot {
    return {
      time: now,
      rps: this.seconds.rate(now),
      requests: this.requests,
      endpoints: [...this.live.values()].map((l) => ({
        ...l.view,
        rps: l.seconds.rate(now),
      })),
      decisions: [...this.decisions].reverse(),
    };
  }
}

function serve(state: DashboardState, req: IncomingMessage, res: ServerResponse): boolean {
  const path = (req.url ?? '').split('?')[0];
  if (path === '/dashboard' || path === '/dashboard/') {
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'content-length': Buffer.byteLength(DASHBOARD_HTML),
    });
    res.end(DASHBOARD_HTML);
    return true;
  }
  if (path === '/dashboard/state') {
    void state.watched().then(() => {
      const body = JSON.stringify(state.snapshot());
      res.writeHead(200, {
        'content-type': 'application/json',
        'cache-control': 'no-store',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
    });
    return true;
  }
  return false;
}

/** The builtin gateway's hook: answers `/dashboard` and `/dashboard/state`, leaves everything else. */
export function dashboardHandler(
  state: DashboardState,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const url = req.url;
    if (!url || !url.startsWith('/dashboard')) return false;
    return serve(state, req, res);
  };
}

/**
 * A small server for the dashboard alone, which Envoy routes `/dashboard` to (with the client's Host). It listens on
 * loopback, so a page rebound to 127.0.0.1 could reach it directly: it too answers only loopback Host names.
 */
export async function startDashboardServer(
  state: DashboardState,
): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    if (refusedMisdirected(req, res, 'the dashboard', '127.0.0.1')) return;
    if (!serve(state, req, res)) {
      res.writeHead(404);
      res.end();
    }
  });
  const port = await new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : 0);
    }),
  );
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>llmisvc · local stack</title>
<link rel="icon" href="data:,">
<style>
  :root { --bg:#0f1419; --panel:#171d24; --line:#2a323c; --text:#e6e9ee; --dim:#8b96a5; --accent:#4fb3ff; --ok:#3ecf8e; --warn:#f5b83d; --bad:#ff6b6b; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background:var(--bg); color:var(--text); }
  header { display:flex; align-items:baseline; gap:16px; padding:16px 24px; border-bottom:1px solid var(--line); }
  header h1 { font-size:18px; margin:0; font-weight:600; }
  header .dim { color:var(--dim); }
  main { padding:20px 24px; display:grid; gap:20px; }
  .tiles { display:grid; grid-template-columns:repeat(auto-fit, minmax(160px, 1fr)); gap:12px; }
  .tile { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
  .tile .label { color:var(--dim); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
  .tile .value { font-size:24px; font-weight:600; font-variant-numeric:tabular-nums; }
  section { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:14px 16px; }
  section h2 { font-size:14px; margin:0 0 10px; color:var(--dim); font-weight:600; text-transform:uppercase; letter-spacing:.04em; }
  table { width:100%; border-collapse:collapse; font-variant-numeric:tabular-nums; }
  th, td { text-align:left; padding:6px 8px; border-bottom:1px solid var(--line); white-space:nowrap; }
  th { color:var(--dim); font-weight:500; font-size:12px; }
  td.num, th.num { text-align:right; }
  .bar { position:relative; width:120px; height:8px; background:#222a33; border-radius:4px; display:inline-block; vertical-align:middle; margin-right:8px; }
  .bar > i { position:absolute; left:0; top:0; bottom:0; border-radius:4px; background:var(--accent); }
  .role { font-size:12px; padding:1px 8px; border-radius:10px; background:#22303d; color:var(--accent); }
  .role.prefill { background:#3a2f1a; color:var(--warn); }
  .role.decode { background:#1a3a2c; color:var(--ok); }
  .dot { display:inline-block; width:8px; height:8px; border-radius:50%; margin-right:6px; background:var(--ok); }
  .dot.down { background:var(--bad); }
  .s2 { color:var(--ok); } .s4 { color:var(--warn); } .s5 { color:var(--bad); }
  code { font-family:ui-monospace, SFMono-Regular, Menlo, monospace; font-size:12px; color:var(--dim); }
  #error { color:var(--bad); }
</style>
</head>
<body>
<header><h1>llmisvc local stack</h1><span class="dim" id="updated">connecting…</span><span id="error"></span></header>
<main>
  <div class="tiles">
    <div class="tile"><div class="label">Requests / s</div><div class="value" id="rps">–</div></div>
    <div class="tile"><div class="label">Requests total</div><div class="value" id="total">–</div></div>
    <div class="tile"><div class="label">Endpoints up</div><div class="value" id="up">–</div></div>
    <div class="tile"><div class="label">Queued</div><div class="value" id="queued">–</div></div>
  </div>
  <section>
    <h2>Endpoints</h2>
    <table id="endpoints"><thead><tr>
      <th>Pod</th><th>Role</th><th>Address</th><th class="num">Queue</th><th class="num">Running</th>
      <th>KV cache</th><th>Prefix hits</th><th class="num">Req/s</th><th class="num">Requests</th>
    </tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Recent routing decisions</h2>
    <table id="decisions"><thead><tr>
      <th>Time</th><th>Path</th><th>Via</th><th>Endpoint</th><th>Prefill</th><th class="num">Status</th><th class="num">Headers ms</th><th class="num">Total ms</th>
    </tr></thead><tbody></tbody></table>
  </section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
function esc(s) { return String(s ?? "").replace(/[&<>"]/g, (c) => ({ "&":"&amp;", "<":"&lt;", ">":"&gt;", '"':"&quot;" })[c]); }
function pct(x) { return x == null ? "–" : (100 * x).toFixed(0) + "%"; }
function bar(x, color) {
  const w = Math.max(0, Math.min(1, x ?? 0)) * 100;
  return '<span class="bar"><i style="width:' + w.toFixed(1) + '%' + (color ? ';background:' + color : '') + '"></i></span>' + pct(x);
}
function render(s) {
  $("rps").textContent = s.rps.toFixed(1);
  $("total").textContent = s.requests;
  $("up").textContent = s.endpoints.filter((e) => e.up).length + " / " + s.endpoints.length;
  $("queued").textContent = s.endpoints.reduce((n, e) => n + e.waiting, 0);
  const byAddress = new Map(s.endpoints.map((e) => [e.address, e.pod]));
  $("endpoints").tBodies[0].innerHTML = s.endpoints.map((e) =>
    '<tr data-pod="' + esc(e.pod) + '"><td><span class="dot' + (e.up ? '' : ' down') + '"></span>' + esc(e.pod) + '</td>' +
    '<td><span class="role ' + esc(e.role) + '">' + esc(e.role) + '</span></td>' +
    '<td><code>' + esc(e.address) + '</code></td>' +
    '<td class="num">' + e.waiting + '</td><td class="num">' + e.running + '</td>' +
    '<td>' + bar(e.kvCacheUsage) + '</td><td>' + bar(e.prefixHitRatio, "var(--ok)") + '</td>' +
    '<td class="num">' + e.rps.toFixed(1) + '</td><td class="num">' + e.requests + '</td></tr>').join("");
  $("decisions").tBodies[0].innerHTML = s.decisions.length === 0
    ? '<tr><td colspan="8" class="dim">No requests yet: send one with the curl command the terminal printed.</td></tr>'
    : s.decisions.map((d) =>
      '<tr><td>' + new Date(d.time).toLocaleTimeString() + '</td><td><code>' + esc(d.method + " " + d.path) + '</code></td>' +
      '<td>' + esc(d.via) + '</td><td>' + esc(d.pod ?? byAddress.get(d.endpoint) ?? d.endpoint ?? "–") + '</td>' +
      '<td>' + esc(d.prefill ? (byAddress.get(d.prefill) ?? d.prefill) : "–") + '</td>' +
      '<td class="num s' + String(d.status)[0] + '">' + d.status + '</td>' +
      '<td class="num">' + d.headersMs.toFixed(1) + '</td><td class="num">' + d.totalMs.toFixed(1) + '</td></tr>').join("");
  $("updated").textContent = "updated " + new Date(s.time).toLocaleTimeString();
}
async function tick() {
  try {
    const res = await fetch("/dashboard/state", { cache: "no-store" });
    render(await res.json());
    $("error").textContent = "";
  } catch (e) {
    $("error").textContent = "gateway unreachable";
  }
}
tick();
setInterval(tick, 1000);
</script>
</body>
</html>
`;
