/**
 * @module epp/server
 * `startEpp`: the whole Endpoint Picker in one process — ext_proc gRPC server, gRPC health server, Prometheus
 * metrics over HTTP, the metrics scraper, and the endpoint source (static list or Kubernetes watches). Used by
 * `llmisvc epp`, by `llmisvc up` and by the tests (port 0 = ephemeral).
 */
import { createServer, type Server as HttpServer } from 'node:http';
import { pino, type Logger } from 'pino';
import { LlmisvcError } from '../errors/index.js';
import {
  defaultEndpointPickerConfig,
  loadEndpointPickerConfig,
  type EndpointPickerConfig,
} from './config.js';
import { Datastore, type EndpointSpec } from './datastore.js';
import { emptyModelDirectory, type ModelDirectory } from './director.js';
import { EppMetrics } from './epp-metrics.js';
import { createProcessHandler } from './extproc-server.js';
import { RequestSession, type RoutingAnswer, type SessionDeps } from './request-session.js';
import { FlowController } from './flow-control/index.js';
import {
  createGrpcServer,
  assertNodeTransportSupported,
  createNodeGrpcServer,
  decodeHealthCheckRequest,
  decodeEppProcessingRequest,
  encodeHealthCheckResponse,
  encodeProcessingResponse,
  ConnectionLimitError,
  Http2GoawayError,
  type ConnectionLimits,
  isLoopbackAddress,
  refusedMisdirected,
  type GrpcCall,
  type GrpcServer,
  type ServingStatusName,
} from '../transport/index.js';
import type { KubernetesSource } from './kubernetes.js';
import { MetricsScraper } from './metrics-scraper.js';
import { weighsInFlight } from './scheduler.js';
import { metricsPathOf, PrefixIndex } from './plugins/index.js';
import type { PluginHost } from './types.js';
import { selfSignedKeyPair } from '../certs/index.js';
import { loadKeyPair } from './tls.js';

export interface EppOptions {
  /** ext_proc port (upstream default 9002; 0 = any free port). */
  grpcPort?: number;
  /** gRPC health port (default 9003). */
  grpcHealthPort?: number;
  /** Prometheus metrics port (default 9090). */
  metricsPort?: number;
  /** Address to listen on (default 0.0.0.0). */
  host?: string;
  /** Static mode: the model servers. */
  endpoints?: EndpointSpec[];
  /** Kubernetes mode: the InferencePool to serve. */
  pool?: { name: string; namespace: string; kubeconfig?: string | undefined };
  /** EndpointPickerConfig YAML; default: queue 2, KV-cache 2, prefix 3, active requests 2, max-score. */
  configText?: string;
  /** Names the config in its error messages: the file it came from (default `--config-text`). */
  configSource?: string;
  /** Scrape interval of model-server metrics (default 50 ms). */
  refreshMetricsIntervalMs?: number;
  /**
   * This EPP routes all the traffic its endpoints get (`llmisvc up` with one EPP): under load an endpoint is scraped
   * only after the EPP routed a request to it or saw one end there; when every profile weighs the EPP's own in-flight
   * counts, only after a request there ended cut off or with a 5xx (see `metrics-scraper.ts`). Default false: every
   * endpoint every interval, as GIE's EPP.
   */
  soleRouter?: boolean;
  /** Also export process metrics (CPU, GC pauses, event-loop lag): for an EPP that is its own process. */
  processMetrics?: boolean;
  /** Largest request body (default 16 MiB). */
  bodyLimitBytes?: number;
  /**
   * Connections the ext_proc and health servers each hold at once, in all and from one client address (defaults
   * 4,096 and 256). Behind a sidecar proxy that rewrites every source address (Istio's 127.0.0.6), all gateways are
   * one address: raise the second to the first.
   */
  connectionLimits?: ConnectionLimits;
  /** Set `x-served-by: <pod>` on every routed response (the `serving.kserve.io/enable-served-by-header` annotation). */
  servedByHeader?: boolean;
  /** Serve TLS: `certPath` with tls.crt/tls.key, or a self-signed certificate when omitted. */
  tls?: { certPath?: string | undefined } | undefined;
  /** Static InferenceObjective priorities / model routes (Kubernetes mode reads them from the API). */
  directory?: ModelDirectory;
  logger?: Logger;
  /**
   * The HTTP/2 under the gRPC servers: `ours` (default, `transport/`) or `node` (`node:http2`, Node >= 22.10; refused
   * on older Node, see `transport/node-grpc-server.ts`).
   */
  transport?: 'ours' | 'node';
}

export interface RunningEpp {
  grpcPort: number;
  healthPort: number;
  metricsPort: number;
  datastore: Datastore;
  config: EndpointPickerConfig;
  /**
   * Static mode: replaces the endpoint set and scrapes the new set at once, as Kubernetes mode does on a pool change
   * (`llmisvc up` learns each model server's address as it comes up, and again when a restarted one moves).
   */
  setEndpoints(specs: readonly EndpointSpec[]): void;
  /**
   * Opens a request's session, as the ext_proc handler does for each stream, for a gateway in the same process to
   * drive directly (`gateway/inprocess-picker`): the same decision and accounting, without the messages.
   */
  openSession(answer: (answer: RoutingAnswer) => void): RequestSession;
  /** The flow controller when the `flowControl` feature gate is on. */
  flowControl: FlowController | undefined;
  /** Stops at once: open ext_proc streams are dropped. */
  close(): Promise<void>;
  /**
   * Stops gracefully (SIGTERM): readiness turns NOT_SERVING, the ext_proc listener closes and every connection gets
   * GOAWAY, so gateways send new requests to the other replicas while the streams already open (requests already
   * routed, their responses still passing through) finish; those still open after `timeoutMs` are dropped. Then
   * as `close`. Resolves with the number dropped.
   */
  drain(timeoutMs: number): Promise<{ dropped: number }>;
}

export const DEFAULT_BODY_LIMIT = 16 * 1024 * 1024;

async function listenGrpc(server: GrpcServer, host: string, port: number): Promise<number> {
  try {
    return await server.listen(host, port);
  } catch (error) {
    throw new LlmisvcError(
      'LLMISVC_ERR_PROCESS',
      `cannot listen on ${host}:${port}: ${(error as Error).message}`,
      {
        hint: 'Choose another port.',
      },
    );
  }
}

function listenHttp(server: HttpServer, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (error) =>
      reject(
        new LlmisvcError('LLMISVC_ERR_PROCESS', `cannot listen on ${host}:${port}: ${error.message}`, {
          hint: 'Choose another port.',
        }),
      ),
    );
    server.listen(port, host, () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}

/** The health service names the EPP answers; kubelet gRPC probes name one in `service`. */
export const HEALTH_SERVICES = {
  /** The process serves: a liveness probe must not restart an EPP whose model servers are still warming up. */
  liveness: 'liveness',
  /** At least one model server endpoint is known: requests can be routed. */
  readiness: 'readiness',
  /**
   * The ext_proc service itself: serving as long as the process is, as KServe's scheduler preset probes liveness
   * with this name (it answers every request, with a 503 while no endpoint is ready).
   */
  extProc: 'envoy.service.ext_proc.v3.ExternalProcessor',
} as const;

/**
 * The status of one health service: liveness and the ext_proc service mean the process serves, readiness and the
 * server as a whole (`''`) mean it can route; other names are SERVICE_UNKNOWN, which every probe takes as failing.
 */
export function healthOf(service: string, ready: () => ServingStatusName): ServingStatusName {
  switch (service) {
    case HEALTH_SERVICES.liveness:
    case HEALTH_SERVICES.extProc:
      return 'SERVING';
    case HEALTH_SERVICES.readiness:
    case '':
      return ready();
    default:
      return 'SERVICE_UNKNOWN';
  }
}

/** Starts an EPP; resolves once it listens and has scraped every endpoint once. */
export async function startEpp(options: EppOptions): Promise<RunningEpp> {
  if (!options.endpoints && !options.pool) {
    throw new LlmisvcError(
      'LLMISVC_ERR_CONFIG',
      'the endpoint picker needs endpoints: --endpoints or --pool-name',
      {
        hint: 'Static: --endpoints 127.0.0.1:8001,127.0.0.1:8002. Kubernetes: --pool-name <InferencePool> --pool-namespace <ns>.',
      },
    );
  }
  // Before anything starts: on a Node too old for it, --transport node is refused with its reason.
  if (options.transport === 'node') assertNodeTransportSupported();
  const logger = options.logger ?? pino({ level: 'info' });
  const config =
    options.configText === undefined
      ? loadEndpointPickerConfig(defaultEndpointPickerConfig, 'the default EndpointPickerConfig')
      : loadEndpointPickerConfig(options.configText, options.configSource);
  const datastore = new Datastore();
  // Per-endpoint plugin state (prefix LRUs) is dropped when an endpoint leaves the pool.
  for (const plugin of config.plugins.values()) {
    const index = (plugin as { index?: unknown }).index;
    if (index instanceof PrefixIndex) datastore.onRemove((address) => index.remove(address));
  }
  for (const w of config.warnings)
    logger.warn({ field: w.path }, `EndpointPickerConfig ${w.path}: ${w.message}`);
  const metrics = new EppMetrics(datastore, {
    processMetrics: options.processMetrics ?? false,
    poolName: options.pool?.name,
    poolNamespace: options.pool?.namespace,
    onError: (error) => logger.error({ err: error }, 'recording a metric failed'),
  });
  config.pluginTiming.observe = (point, type, name, seconds) =>
    metrics.later(() => metrics.observePlugin(point, type, name, seconds));
  let directory: ModelDirectory = options.directory ?? emptyModelDirectory;
  const host = options.host ?? '0.0.0.0';

  const scraper = new MetricsScraper(datastore, {
    intervalMs: options.refreshMetricsIntervalMs ?? 50,
    path: metricsPathOf(config.plugins),
    stalenessThresholdMs: () => config.saturation.metricsStalenessThresholdMs,
    changeDriven: options.soleRouter
      ? () => (weighsInFlight(config.scheduler) ? 'trouble' : 'traffic')
      : undefined,
    onError: (address, error) => {
      metrics.pollErrors.inc({ source_type: 'metrics-data-source' });
      logger.debug({ endpoint: address, err: String(error) }, 'metrics scrape failed');
    },
  });

  let kube: KubernetesSource | undefined;
  if (options.endpoints) datastore.setEndpoints(options.endpoints);
  else if (options.pool) {
    // Loaded only in Kubernetes mode: kube/ brings @kubernetes/client-node (for kubeconfig loading), ~27 MB of heap
    // (a pause for all requests in flight) has to mark.
    const { watchInferencePool } = await import('./kubernetes.js');
    kube = await watchInferencePool({
      ...options.pool,
      logger,
      onEndpoints: (specs) => {
        datastore.setEndpoints(specs);
        void scraper.scrapeAll();
      },
      onDirectory: (d) => {
        directory = d;
      },
    });
  }
  await scraper.scrapeAll();
  scraper.start();
  // Plugins with a background job (precise-prefix-cache-producer's KV-event subscription) follow the endpoint set.
  const pluginHost: PluginHost = {
    endpoints: () => datastore.endpoints(),
    onEndpointsChange: (listener) => datastore.onChange(listener),
    onRemove: (listener) => datastore.onRemove(listener),
    log: logger,
  };
  const services = config.services;
  const stopServices = () => Promise.all(services.map((s) => s.stop()));
  try {
    for (const service of services) await service.start(pluginHost);
  } catch (error) {
    await stopServices();
    await scraper.close();
    await kube?.close();
    throw new LlmisvcError('LLMISVC_ERR_CONFIG', `EPP plugin could not start: ${(error as Error).message}`, {
      hint: 'precise-prefix-cache-producer: is kvEventsConfig.zmqEndpoint free to bind on this host?',
    });
  }

  // Flow control (feature gate `flowControl`): saturation read from the configured detector over every endpoint.
  let flowControl: FlowController | undefined;
  if (config.flowControl) {
    const detector = config.detector;
    const saturation = () => detector.saturation(datastore.endpoints(), Date.now());
    const observer = metrics.flowControl(() =>
      flowControl
        ? {
            controller: flowControl,
            saturation,
            staleEndpoints: () => detector.staleCount(datastore.endpoints(), Date.now()),
            detectorName: detector.name,
          }
        : undefined,
    );
    flowControl = new FlowController(
      config.flowControl,
      () => ({ saturation: saturation(), empty: datastore.endpoints().length === 0 }),
      { observer },
    );
  }

  const bodyLimitBytes = options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT;
  // A connection ended for a flood is an attack or a broken gateway, and comes once per connection: warn; so do
  // connections refused at the cap, reported at most twice in 10 s. Other protocol errors stay at debug, where a
  // client sending many cannot flood the log.
  const onError = (error: unknown) => {
    if (error instanceof Http2GoawayError && error.code === 'ENHANCE_YOUR_CALM') {
      logger.warn({ peer: error.peer, reason: error.message }, 'HTTP/2 connection closed for a flood');
    } else if (error instanceof ConnectionLimitError) {
      logger.warn({ dropped: error.dropped, limit: error.limit }, error.message);
    } else {
      logger.debug({ err: error }, 'gRPC stream error');
    }
  };
  const sessionDeps: SessionDeps = {
    datastore,
    config: () => config,
    directory: () => directory,
    metrics,
    logger,
    bodyLimitBytes,
    flowControl,
  };
  // Every request tells the scraper that traffic flows (its fast pace).
  const processStream = createProcessHandler({
    ...sessionDeps,
    servedByHeader: options.servedByHeader === true,
    onStream: () => scraper.noteTraffic(),
  });
  const openSession = (answer: (answer: RoutingAnswer) => void): RequestSession => {
    scraper.noteTraffic();
    return new RequestSession(sessionDeps, answer);
  };
  const createRpcServer = options.transport === 'node' ? createNodeGrpcServer : createGrpcServer;
  let draining = false;
  const ready = (): ServingStatusName =>
    !draining && datastore.endpoints().length > 0 ? 'SERVING' : 'NOT_SERVING';
  const statusOf = (service: string): ServingStatusName => healthOf(service, ready);
  const healthCheck = {
    decode: decodeHealthCheckRequest,
    encode: encodeHealthCheckResponse,
    open: (call: GrpcCall<{ status: ServingStatusName }>) => ({
      message(request: { service: string }) {
        call.send({ status: statusOf(request.service) });
        call.end();
      },
      end() {
        if (call.isOpen()) call.end();
      },
      abort() {},
    }),
  };
  const server = createRpcServer({
    methods: {
      '/envoy.service.ext_proc.v3.ExternalProcessor/Process': {
        decode: decodeEppProcessingRequest,
        encode: encodeProcessingResponse,
        open: processStream,
      },
      // Also on the ext_proc port, where GIE's standalone Envoy configuration health-checks the EPP's cluster
      // (service envoy.service.ext_proc.v3.ExternalProcessor, over the same TLS): without it the checks fail and
      // Envoy only routes to the EPP in panic mode. Check only: a Watch is a stream that would hold a drain open.
      '/grpc.health.v1.Health/Check': healthCheck,
    },
    // A body message carries at most the body limit; headers and metadata ride in separate messages.
    maxMessageBytes: bodyLimitBytes + 1024 * 1024,
    ...options.connectionLimits,
    tls: options.tls
      ? options.tls.certPath
        ? loadKeyPair(options.tls.certPath)
        : selfSignedKeyPair()
      : undefined,
    onError,
  });
  // Open health Watch calls, their service and the status each was last sent: a change is pushed, as the gRPC
  // health protocol asks.
  const watchers = new Map<
    GrpcCall<{ status: ServingStatusName }>,
    { service: string; sent: ServingStatusName }
  >();
  datastore.onChange(() => {
    for (const [call, watch] of watchers) {
      const now = statusOf(watch.service);
      if (watch.sent === now) continue;
      watch.sent = now;
      call.send({ status: now });
    }
  });
  const health = createRpcServer({
    methods: {
      '/grpc.health.v1.Health/Check': healthCheck,
      '/grpc.health.v1.Health/Watch': {
        decode: decodeHealthCheckRequest,
        encode: encodeHealthCheckResponse,
        open: (call: GrpcCall<{ status: ServingStatusName }>) => ({
          message(request: { service: string }) {
            const sent = statusOf(request.service);
            watchers.set(call, { service: request.service, sent });
            call.send({ status: sent });
          },
          end() {},
          abort() {
            watchers.delete(call);
          },
        }),
      },
    },
    maxMessageBytes: 64 * 1024,
    ...options.connectionLimits,
    onError,
  });
  // On loopback (`llmisvc up`) a page rebound to 127.0.0.1 could read the pool's endpoints and model names here.
  const loopbackOnly = isLoopbackAddress(host);
  const metricsServer = createServer((req, res) => {
    if (loopbackOnly && refusedMisdirected(req, res, "the EPP's metrics server", host)) return;
    if (req.url === '/metrics' || req.url?.startsWith('/metrics?')) {
      metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
        },
        (error: unknown) => {
          res.writeHead(500);
          res.end(String(error));
        },
      );
    } else {
      res.writeHead(404);
      res.end('not found\n');
    }
  });

  try {
    const grpcPort = await listenGrpc(server, host, options.grpcPort ?? 9002);
    const healthPort = await listenGrpc(health, host, options.grpcHealthPort ?? 9003);
    const metricsPort = await listenHttp(metricsServer, host, options.metricsPort ?? 9090);
    logger.info(
      { grpcPort, healthPort, metricsPort, endpoints: datastore.endpoints().length },
      'endpoint picker listening',
    );
    const running: RunningEpp = {
      grpcPort,
      healthPort,
      metricsPort,
      datastore,
      config,
      setEndpoints(specs) {
        datastore.setEndpoints(specs);
        void scraper.scrapeAll();
      },
      openSession,
      flowControl,
      async drain(timeoutMs) {
        draining = true;
        for (const [call, watch] of watchers) {
          const now = statusOf(watch.service);
          if (watch.sent !== now) {
            watch.sent = now;
            call.send({ status: now });
          }
        }
        const result = await server.drain(timeoutMs);
        logger.info({ dropped: result.dropped }, 'ext_proc streams drained');
        await running.close();
        return result;
      },
      async close() {
        flowControl?.close();
        await stopServices();
        await scraper.close();
        await kube?.close();
        for (const w of watchers.keys()) w.end();
        // In-flight ext_proc streams belong to requests the gateway will retry elsewhere; do not wait for them.
        await server.close();
        await health.close();
        await new Promise<void>((resolve) => {
          metricsServer.close(() => resolve());
          metricsServer.closeAllConnections();
        });
      },
    };
    return running;
  } catch (error) {
    flowControl?.close();
    await stopServices();
    await scraper.close();
    await kube?.close();
    await server.close();
    await health.close();
    metricsServer.close();
    throw error;
  }
}
