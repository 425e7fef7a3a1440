/**
 * @module bench/envoy-hop
 * The pure half of `npm run bench:peers -- --envoy-hop`, which splits what the Envoy path of `llmisvc up` costs into
 * its parts by running the bootstrap `up` wrote in variants: Envoy alone (no ext_proc filter: the pool cluster's round
 * robin), Envoy asking an ext_proc server that decides next to nothing (the hop's floor: in Go on grpc-go, and in Node
 * on the EPP's own transport), and Envoy asking our EPP (the bootstrap as written). Here: those variants and the
 * report.
 */
import { EPP_FILTER, EXT_PROC, HTTP_CONNECTION_MANAGER, RESPONSE_OBSERVER_FILTER } from '../gateway/index.js';
import { summarize } from './stats.js';

// An Envoy bootstrap is JSON of Envoy's schema, read back from a file: walked loosely, checked where it matters.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

function connectionManagers(bootstrap: Json): Json[] {
  const found: Json[] = [];
  for (const listener of bootstrap?.static_resources?.listeners ?? [])
    for (const chain of listener.filter_chains ?? [])
      for (const filter of chain.filters ?? [])
        if (filter.typed_config?.['@type'] === HTTP_CONNECTION_MANAGER) found.push(filter.typed_config);
  if (found.length === 0) throw new Error('the Envoy bootstrap has no HTTP connection manager');
  return found;
}

/** The ext_proc filters that ask the Endpoint Picker (the routing one and a response observer, not the body router). */
function eppFilters(manager: Json): Json[] {
  return (manager.http_filters ?? []).filter(
    (f: Json) => f.name === EPP_FILTER || f.name === RESPONSE_OBSERVER_FILTER,
  );
}

/** The bootstrap without any ext_proc filter: Envoy routes by the routes and the pool cluster's own balancing. */
export function withoutExtProc(bootstrap: Json): Json {
  const copy = structuredClone(bootstrap);
  for (const manager of connectionManagers(copy))
    manager.http_filters = manager.http_filters.filter((f: Json) => f.typed_config?.['@type'] !== EXT_PROC);
  return copy;
}

/**
 * The bootstrap with the Endpoint Picker's cluster pointing at one other ext_proc server (`host:port`), without the
 * health checks a replicated EPP's cluster has (the stand-in serves none). The clusters are the ones the filters name;
 * per-route overrides of a multi-service bootstrap are left as they are (`up` writes one service).
 */
export function withExtProcAt(bootstrap: Json, host: string, port: number): Json {
  const copy = structuredClone(bootstrap);
  const names = new Set<string>();
  for (const manager of connectionManagers(copy))
    for (const filter of eppFilters(manager)) {
      const name: unknown = filter.typed_config.grpc_service?.envoy_grpc?.cluster_name;
      if (typeof name === 'string') names.add(name);
    }
  if (names.size === 0)
    throw new Error('the Envoy bootstrap has no ext_proc filter asking an Endpoint Picker');
  for (const name of names) {
    const cluster = (copy.static_resources.clusters ?? []).find((c: Json) => c.name === name);
    if (!cluster) throw new Error(`the Envoy bootstrap has no cluster ${name}`);
    delete cluster.health_checks;
    cluster.load_assignment = {
      cluster_name: name,
      endpoints: [
        {
          lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: port } } } }],
        },
      ],
    };
  }
  return copy;
}

/** The bootstrap with every listener on `port` (0: any free port, read back from the admin API). */
export function withListenPort(bootstrap: Json, port: number): Json {
  const copy = structuredClone(bootstrap);
  for (const listener of copy?.static_resources?.listeners ?? [])
    listener.address.socket_address.port_value = port;
  return copy;
}

/** One path measured once: the idle added TTFT and the CPU per request of each process on it. */
export interface HopRow {
  path: string;
  /** Routed minus direct TTFT of sequential requests on the idle fleet, ms. */
  idleAddedP50: number;
  idleAddedP99: number;
  /** CPU per request under load, ms: Envoy's, and the ext_proc server's (0 without one). */
  envoyCpuMs: number;
  extProcCpuMs: number;
  /** Requests that succeeded under load (the CPU's denominator) and those sent. */
  ok: number;
  sent: number;
}

const fixed = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : '–');

/** Every round's row, then per path the median of the rounds (each column's own median), as Markdown tables. */
export function envoyHopTables(rows: readonly HopRow[]): string[] {
  const header = [
    '| Path | idle added TTFT p50 / p99 ms | Envoy CPU ms/req | ext_proc server CPU ms/req | total ms/req | ok/sent |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  const line = (r: Omit<HopRow, 'sent' | 'ok'>, total: number, counts: string): string =>
    `| ${r.path} | ${fixed(r.idleAddedP50)} / ${fixed(r.idleAddedP99)} | ${fixed(r.envoyCpuMs)} | ` +
    `${fixed(r.extProcCpuMs)} | ${fixed(total)} | ${counts} |`;
  const paths = [...new Set(rows.map((r) => r.path))];
  const median = (values: number[]): number => summarize(values).p50;
  const medians = paths.map((path) => {
    const of = rows.filter((r) => r.path === path);
    return line(
      {
        path,
        idleAddedP50: median(of.map((r) => r.idleAddedP50)),
        idleAddedP99: median(of.map((r) => r.idleAddedP99)),
        envoyCpuMs: median(of.map((r) => r.envoyCpuMs)),
        extProcCpuMs: median(of.map((r) => r.extProcCpuMs)),
      },
      median(of.map((r) => r.envoyCpuMs + r.extProcCpuMs)),
      `${of.length} rounds`,
    );
  });
  return [
    '### Each round',
    '',
    ...header,
    ...rows.map((r) => line(r, r.envoyCpuMs + r.extProcCpuMs, `${r.ok}/${r.sent}`)),
    '',
    '### Median of the rounds',
    '',
    ...header,
    ...medians,
    '',
  ];
}
