/**
 * @module local/kv-events-relay
 * KV-cache events for active-active EPP replicas in `llmisvc up`, with no shared store: every replica gets every
 * model server's events and keeps its own index.
 *
 * In a cluster this needs nothing: vLLM's publisher binds on each pod and every replica connects to every pod
 * (llm-d's per-pod subscriber mode, `kvEventsConfig.podDiscoveryConfig.socketPort`). llm-d-inference-sim (v0.10.2)
 * cannot bind: its PUB socket only dials one `--zmq-endpoint`, so one address would have to reach N replicas. The
 * relay is that address: a SUB socket bound where the servers dial (`{kv-events-endpoint}`), and a PUB socket
 * connected to every replica's own bound socket (each replica's `kvEventsConfig.zmqEndpoint`, given a fixed port).
 * A PUB connected to N peers sends each message to all of them; frames pass unchanged (topic, sequence, payload),
 * so each replica sees exactly what a server would have sent it. Nothing is kept: a replica that restarts rebinds
 * its port, the PUB reconnects, and the replica's index refills from new events as a restarted llm-d EPP's does.
 */
import { appendFileSync } from 'node:fs';
import { Publisher, Subscriber } from 'zeromq';
import { isMap, isSeq, parseDocument } from 'yaml';

export interface KvEventsRelay {
  /** Where the model servers publish (`{kv-events-endpoint}`). */
  readonly endpoint: string;
  /** Messages forwarded (for tests). */
  readonly forwarded: () => number;
  /** Sends every later message to a replica's bound events socket too (`tcp://127.0.0.1:port`). */
  connect(replicaEndpoint: string): void;
  close(): void;
}

/**
 * Binds the servers' side on loopback. The replicas are connected afterwards: they start once the servers' addresses
 * are known, and the servers need this one to start.
 */
export async function startKvEventsRelay(
  /** Where a failure of the relay is written (it would otherwise only show as replicas without events). */
  logPath: string,
): Promise<KvEventsRelay> {
  // The replicas' own limit (16 MiB): a larger message is dropped here, with its sender's connection.
  const incoming = new Subscriber({ linger: 0, receiveHighWaterMark: 10_000, maxMessageSize: 16 << 20 });
  // Every topic: what a replica subscribes to is its own business (its filter applies on the PUB side).
  incoming.subscribe();
  const outgoing = new Publisher({ linger: 0, sendHighWaterMark: 10_000 });
  await incoming.bind('tcp://127.0.0.1:0');
  let forwarded = 0;
  let closed = false;
  void (async () => {
    try {
      for await (const frames of incoming) {
        // A PUB drops what a slow replica cannot take (its high-water mark), as vLLM's publisher does.
        await outgoing.send(frames);
        forwarded++;
      }
    } catch (error) {
      if (!closed) appendFileSync(logPath, `KV-events relay stopped: ${String(error)}\n`);
    }
  })();
  return {
    endpoint: incoming.lastEndpoint!,
    forwarded: () => forwarded,
    connect(replicaEndpoint) {
      outgoing.connect(replicaEndpoint);
    },
    close() {
      closed = true;
      incoming.close();
      outgoing.close();
    },
  };
}

/** The plugin types that subscribe to KV events: the producer and llm-d's deprecated all-in-one scorer. */
const PRECISE_TYPES = ['precise-prefix-cache-producer', 'precise-prefix-cache-scorer'];

/**
 * The replica's copy of an EndpointPickerConfig: every precise-prefix-cache-producer that binds an events socket
 * (`kvEventsConfig.zmqEndpoint`) binds `endpoint` instead. Undefined when none binds (nothing to relay).
 */
export function withKvEventsEndpoint(configText: string, endpoint: string): string | undefined {
  const doc = parseDocument(configText);
  const plugins = doc.get('plugins');
  let changed = false;
  for (const plugin of isSeq(plugins) ? plugins.items : []) {
    if (!isMap(plugin) || !PRECISE_TYPES.includes(String(plugin.get('type')))) continue;
    const path = ['parameters', 'kvEventsConfig', 'zmqEndpoint'];
    if (!plugin.getIn(path)) continue;
    plugin.setIn(path, endpoint);
    changed = true;
  }
  return changed ? doc.toString() : undefined;
}
