import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Publisher } from 'zeromq';
import { KvEventSubscriber, type KvEventMessage } from './subscriber.js';

/** A publisher bound on `host` (any port), sending one event every 20 ms until stopped. */
async function publisher(host: string): Promise<{ port: number; stop(): void }> {
  const pub = new Publisher({ ipv6: host.includes(':'), linger: 0 });
  await pub.bind(`tcp://${host.includes(':') ? `[${host}]` : host}:0`);
  const port = Number(/:(\d+)$/.exec(pub.lastEndpoint!)![1]);
  const sequence = Buffer.alloc(8);
  const timer = setInterval(
    () => void pub.send(['kv@pod@m', sequence, Buffer.from([0x90])]).catch(() => {}),
    20,
  );
  return {
    port,
    stop() {
      clearInterval(timer);
      pub.close();
    },
  };
}

describe('KV-event subscriber, per endpoint', () => {
  for (const [family, host, address] of [
    ['IPv4', '127.0.0.1', (port: number) => `127.0.0.1:${port}`],
    // An IPv6 pod: ZMQ reaches it only on a socket with ZMQ_IPV6 on, and says nothing when it is off.
    ['IPv6', '::1', (port: number) => `[::1]:${port}`],
  ] as const) {
    it(`receives the events of an ${family} endpoint`, async () => {
      const pub = await publisher(host);
      let resolve!: (message: KvEventMessage) => void;
      const first = new Promise<KvEventMessage>((r) => (resolve = r));
      const subscriber = new KvEventSubscriber({
        topicFilter: 'kv@',
        bindEndpoint: undefined,
        socketPort: pub.port,
        maxMessageBytes: 1 << 20,
        onMessage: (m) => resolve(m),
        onMalformed: () => undefined,
        onError: (error) => assert.fail(String(error)),
      });
      try {
        subscriber.setEndpoints([address(8000)]);
        const timeout = new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error(`no event from ${family} in 5 s`)), 5000).unref(),
        );
        const message = await Promise.race([first, timeout]);
        assert.equal(message.source, address(8000));
        assert.equal(message.topic, 'kv@pod@m');
      } finally {
        subscriber.close();
        pub.stop();
      }
    });
  }
});
