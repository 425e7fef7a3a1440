/**
 * Integration: active-active EPP replicas (`llmisvc up --epp-replicas 3`) under steady streaming load, behind the
 * builtin gateway and behind a real Envoy. One replica is drained (SIGTERM: GOAWAY, open streams finish) and, once
 * the supervisor has it back, another is SIGKILLed. Counted from the client's side: a request that started after a
 * kill must not fail — it had not been routed yet, so the gateway had another replica to ask. Behind Envoy a
 * SIGKILL breaks the ext_proc streams open on the dead replica (the response body streams through them, as GIE
 * configures it), so those routed requests may fail; never more than were in flight.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createServer, type Socket } from 'node:net';
import { pino } from 'pino';
import { startModelServerFixture } from '../src/bench/index.js';
import { startEpp } from '../src/epp/index.js';
import { EppReplicaSet } from '../src/gateway/index.js';
import { startLocalStack, type LocalStack, type StackEvent } from '../src/local/index.js';
import { freeLoopbackPort, waitFor } from '../src/process/index.js';

const ENVOY_BIN = process.env['ENVOY_BIN'];

interface Outcome {
  start: number;
  end: number;
  ok: boolean;
  detail: string;
}

/** Closed-loop streaming load: `workers` clients, each sending its next request when the last one ended. */
function steadyLoad(stack: LocalStack, workers: number) {
  const outcomes: Outcome[] = [];
  let running = true;
  const one = async (w: number, i: number): Promise<Outcome> => {
    const start = performance.now();
    try {
      const res = await fetch(`${stack.baseUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: stack.model,
          // 4 users sharing a long prefix each: the prefix index matters.
          messages: [{ role: 'user', content: `${`user ${w % 4} context. `.repeat(40)} question ${i}` }],
          max_tokens: 8,
          stream: true,
        }),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await res.text();
      const ok = res.ok && text.includes('data: [DONE]');
      return { start, end: performance.now(), ok, detail: ok ? '' : `${res.status} ${text.slice(0, 120)}` };
    } catch (error) {
      return { start, end: performance.now(), ok: false, detail: String((error as Error).cause ?? error) };
    }
  };
  const done = Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = 0; running; i++) outcomes.push(await one(w, i));
    }),
  );
  return {
    outcomes,
    async stop() {
      running = false;
      await done;
    },
  };
}

function killTest(gateway: 'builtin' | 'envoy') {
  let stack: LocalStack;
  const events: { t: number; e: StackEvent }[] = [];
  before(async () => {
    stack = await startLocalStack({
      port: 0,
      gateway,
      eppReplicas: 3,
      envoyBin: ENVOY_BIN,
      simulator: { timeScale: 0.2 },
      onEvent: (e) => events.push({ t: performance.now(), e }),
    });
  });
  after(async () => {
    await stack?.stop();
  });

  /** Kills one replica under load; returns the outcomes around it, once the replica is back and serving. */
  async function killUnderLoad(victim: string, signal: NodeJS.Signals) {
    const load = steadyLoad(stack, 6);
    try {
      await waitFor(() => load.outcomes.length >= 16, {
        what: '16 requests before the kill',
        timeoutMs: 30_000,
      });
      const pid = stack.pids()[victim]!;
      const killAt = performance.now();
      process.kill(pid, signal);
      await waitFor(
        () =>
          events.some((x) => x.t > killAt && x.e.type === 'ready' && x.e.name === victim && x.e.restarts > 0),
        { what: `${victim} restarted by the supervisor`, timeoutMs: 30_000 },
      );
      await waitFor(() => load.outcomes.filter((o) => o.start > killAt).length >= 24, {
        what: '24 requests started after the kill',
        timeoutMs: 30_000,
      });
      await load.stop();
      const outcomes = load.outcomes;
      return {
        outcomes,
        inFlight: outcomes.filter((o) => o.start < killAt && o.end > killAt),
        after: outcomes.filter((o) => o.start > killAt),
      };
    } finally {
      await load.stop();
    }
  }

  test(`${gateway}: three replicas share the load`, async () => {
    assert.deepEqual(
      stack.eppReplicas.map((r) => r.name),
      ['epp-0', 'epp-1', 'epp-2'],
    );
    const load = steadyLoad(stack, 6);
    await waitFor(() => load.outcomes.length >= 30, { what: '30 requests', timeoutMs: 30_000 });
    await load.stop();
    assert.deepEqual(
      load.outcomes.filter((o) => !o.ok).map((o) => o.detail),
      [],
    );
    for (const r of stack.eppReplicas) {
      const text = await (await fetch(`http://127.0.0.1:${r.metricsPort}/metrics`)).text();
      const routed = /llmisvc_epp_requests_total\{[^}]*outcome="routed"[^}]*\} (\d+)/.exec(text);
      assert.ok(Number(routed?.[1] ?? 0) > 0, `${r.name} routed no request`);
    }
  });

  test(`${gateway}: SIGTERM drains a replica without failing a request`, async () => {
    const { outcomes, inFlight } = await killUnderLoad('epp-1', 'SIGTERM');
    assert.ok(inFlight.length > 0, 'the load was running at the drain');
    assert.deepEqual(
      outcomes.filter((o) => !o.ok).map((o) => o.detail),
      [],
    );
  });

  test(`${gateway}: SIGKILL fails no request that had not been routed`, async () => {
    const { outcomes, inFlight, after: later } = await killUnderLoad('epp-2', 'SIGKILL');
    assert.deepEqual(
      later.filter((o) => !o.ok).map((o) => o.detail),
      [],
      'requests started after the kill',
    );
    const failed = outcomes.filter((o) => !o.ok);
    if (gateway === 'builtin') {
      // The builtin gateway needs the ext_proc stream only for the decision: a routed request outlives its replica.
      assert.deepEqual(
        failed.map((o) => o.detail),
        [],
      );
    } else {
      assert.ok(
        failed.every((o) => inFlight.includes(o)),
        `only requests in flight at the kill may fail: ${failed.map((o) => o.detail).join('; ')}`,
      );
    }
  });
}

describe('active-active EPP replicas behind the builtin gateway', () => killTest('builtin'));

describe(
  'active-active EPP replicas behind a real Envoy',
  { skip: ENVOY_BIN ? false : 'ENVOY_BIN not set (run through npm test)' },
  () => killTest('envoy'),
);

describe('EppReplicaSet: a replica that fails before deciding is skipped', () => {
  test('a dead replica and a hung one: every pick answered by the live one, the others moved to the end', async () => {
    const server = await startModelServerFixture('pod-a');
    const epp = await startEpp({
      grpcPort: 0,
      grpcHealthPort: 0,
      metricsPort: 0,
      host: '127.0.0.1',
      endpoints: [{ address: server.address, name: 'pod-a' }],
      logger: pino({ level: 'silent' }),
    });
    // Hung: accepts the connection and never answers (not even the HTTP/2 preface).
    const sockets = new Set<Socket>();
    const hung = createServer((s) => sockets.add(s));
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    const hungPort = (hung.address() as { port: number }).port;
    const deadPort = await freeLoopbackPort(undefined, [hungPort, epp.grpcPort]);
    const replicas = EppReplicaSet.connect([
      `127.0.0.1:${deadPort}`,
      `127.0.0.1:${hungPort}`,
      `127.0.0.1:${epp.grpcPort}`,
    ]);
    try {
      const body = Buffer.from(JSON.stringify({ model: 'test-model', prompt: 'hello' }));
      const picks = [];
      for (let i = 0; i < 9; i++)
        picks.push(
          await replicas.pick(
            { path: '/v1/completions', headers: { 'content-type': 'application/json' }, body },
            { timeoutMs: 1000 },
          ),
        );
      for (const pick of picks) pick.done();
      assert.deepEqual(
        picks.map((p) => p.endpoint),
        picks.map(() => server.address),
      );
      // Each failed replica cost at most one retry per request, and far fewer once it was known to fail.
      assert.ok(replicas.retries >= 2 && replicas.retries < 18, `${replicas.retries} retries`);
    } finally {
      replicas.close();
      for (const s of sockets) s.destroy();
      hung.close();
      await epp.close();
      await server.close();
    }
  });
});
