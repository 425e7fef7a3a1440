/**
 * @module epp/kv-events/subscriber
 * The ZMQ side of KV-cache events, as llm-d-router's `precise-prefix-cache-producer` does it, in both of its modes:
 *
 * - **Per-endpoint** (`discoverPods`, llm-d-router's default): one SUB socket connects to every endpoint of the pool
 *   at `tcp://<endpoint ip>:<socketPort>` (5557), where vLLM's publisher binds (`--kv-events-config` endpoint
 *   `tcp://*:5557`). The endpoint is the source of its events whatever the topic says.
 * - **Central** (`zmqEndpoint`, e.g. `tcp://*:5557`): one SUB socket binds and publishers connect to it (what
 *   llm-d-inference-sim does: its PUB dials `--zmq-endpoint`). The topic `kv@<pod>@<model>` names the source.
 *
 * Every message is three frames: topic, an 8-byte big-endian sequence number, the msgpack payload. Sockets refuse
 * messages above `maxMessageBytes` (ZMQ_MAXMSGSIZE drops the peer that sends one), and the receive loop yields to
 * the event loop every few messages so a flood of events cannot starve request handling.
 */
import { Subscriber } from 'zeromq';

/** One event message, frames already split. */
export interface KvEventMessage {
  /** The endpoint address the socket is connected to (per-endpoint mode); undefined on the central socket. */
  source: string | undefined;
  topic: string;
  sequence: bigint;
  payload: Uint8Array;
}

export interface KvEventSubscriberOptions {
  /** Subscription prefix (llm-d's `topicFilter`, default `kv@`). */
  topicFilter: string;
  /** Central mode: the address to bind, e.g. `tcp://*:5557`. */
  bindEndpoint: string | undefined;
  /** Per-endpoint mode: the port every endpoint publishes on; undefined = off. */
  socketPort: number | undefined;
  /** Largest message accepted. */
  maxMessageBytes: number;
  onMessage(message: KvEventMessage): void;
  /** Frames that are not [topic, sequence, payload]. */
  onMalformed(source: string | undefined, frames: number): void;
  onError(error: unknown, where: string): void;
}

/** Messages handled before the loop yields to the event loop. */
const YIELD_EVERY = 64;

export class KvEventSubscriber {
  private central: Subscriber | undefined;
  private readonly perEndpoint = new Map<string, Subscriber>();
  private closed = false;

  constructor(private readonly options: KvEventSubscriberOptions) {}

  /** Binds the central socket (when configured); resolves once it listens. */
  async start(): Promise<void> {
    const endpoint = this.options.bindEndpoint;
    if (endpoint === undefined) return;
    const socket = this.socket();
    await socket.bind(endpoint);
    this.central = socket;
    void this.receive(socket, undefined);
  }

  /** The address the central socket listens on (with the port the system chose for `:0`). */
  get boundEndpoint(): string | undefined {
    return this.central?.lastEndpoint ?? undefined;
  }

  /** Per-endpoint mode: connects to endpoints that joined and closes the sockets of those that left. */
  setEndpoints(addresses: readonly string[]): void {
    const port = this.options.socketPort;
    if (port === undefined || this.closed) return;
    const wanted = new Set(addresses);
    for (const [address, socket] of this.perEndpoint) {
      if (!wanted.has(address)) {
        this.perEndpoint.delete(address);
        socket.close();
      }
    }
    for (const address of wanted) {
      if (this.perEndpoint.has(address)) continue;
      const host = hostOf(address);
      if (host === undefined) continue;
      const socket = this.socket();
      try {
        socket.connect(`tcp://${host}:${port}`);
      } catch (error) {
        this.options.onError(error, `connect ${host}:${port}`);
        socket.close();
        continue;
      }
      this.perEndpoint.set(address, socket);
      void this.receive(socket, address);
    }
  }

  /** Endpoints with a connected (or connecting) socket. */
  get connectedEndpoints(): string[] {
    return [...this.perEndpoint.keys()];
  }

  close(): void {
    this.closed = true;
    this.central?.close();
    this.central = undefined;
    for (const socket of this.perEndpoint.values()) socket.close();
    this.perEndpoint.clear();
  }

  private socket(): Subscriber {
    const socket = new Subscriber({
      // Without it ZMQ's TCP transport never reaches an IPv6 pod (`tcp://[fd00::5]:5557`) and says nothing; with
      // it, IPv4 works as before (and a central `tcp://*:…` listens on both).
      ipv6: true,
      maxMessageSize: this.options.maxMessageBytes,
      // Bounded receive queue: when the EPP falls behind, ZMQ drops the newest (the sequence gap is noticed).
      receiveHighWaterMark: 10_000,
      linger: 0,
    });
    socket.subscribe(this.options.topicFilter);
    return socket;
  }

  private async receive(socket: Subscriber, source: string | undefined): Promise<void> {
    let handled = 0;
    try {
      for await (const frames of socket) {
        if (frames.length !== 3 || frames[1]!.length < 8) this.options.onMalformed(source, frames.length);
        else {
          try {
            this.options.onMessage({
              source,
              topic: frames[0]!.toString('utf8'),
              sequence: frames[1]!.readBigUInt64BE(0),
              payload: frames[2]!,
            });
          } catch (error) {
            this.options.onError(error, 'handling a KV event message');
          }
        }
        if (++handled % YIELD_EVERY === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } catch (error) {
      if (!this.closed && !socket.closed) this.options.onError(error, 'receiving KV events');
    }
  }
}

/** The host of `ip:port` / `[v6]:port` (the socket connects there, on the events port). */
function hostOf(address: string): string | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d+$/.exec(address);
  return m?.[1];
}
