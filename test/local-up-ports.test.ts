/**
 * `llmisvc up` without a port race (issue 17): a `--model-server-cmd` that finds its `{port}` taken by another process
 * (a real listener, started between the stack's pick and the server's bind) is started again on a new port, and a
 * simulator restarted while another process holds its old port comes back on a new one; either way the EPP, the
 * gateway (builtin or Envoy), the EPP replica processes and the dashboard follow, and requests reach every server.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { startLocalStack, type LocalStack, type StackEvent } from '../src/local/index.js';
import { CLI } from './harness/repo.js';

const ENVOY_BIN = process.env['ENVOY_BIN'];
const SQUATTER = fileURLToPath(new URL('./harness/port-squatter.js', import.meta.url));

async function eventually(what: string, check: () => Promise<boolean> | boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(20);
  }
  assert.fail(`timed out waiting for ${what}`);
}

const portOf = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));

/**
 * Sends rounds of 8 concurrent completions with distinct prompts until every pod has answered one (the EPP spreads
 * concurrent load by queue length); every request must succeed. Returns the pods seen.
 */
async function podsServing(stack: LocalStack): Promise<Set<string>> {
  const pods = new Set<string>();
  for (let round = 0; round < 40 && pods.size < stack.endpoints.length; round++) {
    const responses = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        fetch(`${stack.baseUrl}/v1/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            model: stack.model,
            prompt: `round ${round}, request ${i}`,
            max_tokens: 32,
          }),
        }),
      ),
    );
    for (const res of responses) {
      assert.equal(res.status, 200, await res.clone().text());
      await res.arrayBuffer();
      pods.add(res.headers.get('x-inference-pod') ?? '(none)');
    }
  }
  return pods;
}

/** Holds `port` as soon as it is free (the killed server's socket is gone), before the supervisor's restart. */
async function squat(port: number): Promise<Server> {
  for (let attempt = 0; attempt < 2000; attempt++) {
    // A listener that drops whatever connects (a request sent to the old address before the move).
    const server = createServer((socket) => socket.destroy());
    const bound = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (bound) return server;
    await sleep(2);
  }
  return assert.fail(`port ${port} never came free`);
}

async function dashboardAddresses(stack: LocalStack): Promise<string[]> {
  const state = (await (await fetch(`${stack.url}/dashboard/state`)).json()) as {
    endpoints: { address: string }[];
  };
  return state.endpoints.map((e) => e.address).sort();
}

describe('llmisvc up: a {port} command whose port is taken before it binds it', () => {
  it('starts it again on a new port and routes to every server', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'llmisvc-squat-'));
    const events: StackEvent[] = [];
    let stack: LocalStack | undefined;
    try {
      // Every server's first start finds its {port} held by another process, as after a lost race.
      const command =
        `/bin/sh -c '${process.execPath} ${SQUATTER} ${dir} {port} {pod} && ` +
        `exec ${process.execPath} ${CLI} sim --host 127.0.0.1 --port {port} --model {model} --pod-name {pod}'`;
      stack = await startLocalStack({ port: 0, modelServerCmd: command, onEvent: (e) => events.push(e) });
      const squatted = readdirSync(dir).map(
        (name) => JSON.parse(readFileSync(join(dir, name), 'utf8')) as { pid: number; port: number },
      );
      assert.equal(squatted.length, 4, 'each of the 4 servers lost its first port');
      const taken = events.flatMap((e) => (e.type === 'port-taken' ? [e.port] : []));
      assert.deepEqual(taken.sort(), squatted.map((s) => s.port).sort());
      for (const e of stack.endpoints) {
        assert.ok(!taken.includes(portOf(e.address)), `${e.pod} serves on ${e.address}, not a taken port`);
      }
      assert.deepEqual(stack.eppEndpoints?.split(',').sort(), stack.endpoints.map((e) => e.address).sort());
      assert.deepEqual([...(await podsServing(stack))].sort(), stack.endpoints.map((e) => e.pod).sort());
    } finally {
      await stack?.stop();
      for (const name of readdirSync(dir)) {
        const { pid } = JSON.parse(readFileSync(join(dir, name), 'utf8')) as { pid: number };
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Kills one simulator and takes its port before the supervisor restarts it: the simulator comes back on another
 * port, and `checkFollowers` waits for the parts that restart to learn it.
 */
async function movedSimulator(
  stack: LocalStack,
  waitForFollowers: (before: Record<string, number>) => Promise<void> = () => Promise.resolve(),
): Promise<void> {
  const victim = stack.endpoints.find((e) => e.pod === 'quickstart-kserve-1')!;
  const old = victim.address;
  const before = stack.pids();
  process.kill(before['quickstart-kserve-1']!, 'SIGKILL');
  const squatter = await squat(portOf(old));
  try {
    await eventually('the simulator back on another port', () => victim.address !== old);
    assert.ok(!stack.eppEndpoints?.includes(old), stack.eppEndpoints);
    assert.ok(stack.eppEndpoints?.includes(victim.address), stack.eppEndpoints);
    await waitForFollowers(before);
    await eventually('the dashboard showing the new address', async () =>
      (await dashboardAddresses(stack)).includes(victim.address),
    );
    assert.deepEqual(await dashboardAddresses(stack), stack.endpoints.map((e) => e.address).sort());
    assert.deepEqual(
      [...(await podsServing(stack))].sort(),
      stack.endpoints.map((e) => e.pod).sort(),
      'every simulator, the moved one too, answers through the gateway',
    );
  } finally {
    await new Promise((resolve) => squatter.close(resolve));
  }
}

/** Waits until the named processes run as new ones (restarted with the new address) and requests pass again. */
function restarted(stack: LocalStack, names: (pids: Record<string, number>) => string[]) {
  return async (before: Record<string, number>) => {
    for (const name of names(before)) {
      await eventually(`${name} restarted`, () => stack.pids()[name] !== before[name]);
    }
    await eventually('the gateway serving again', async () => {
      const res = await fetch(`${stack.baseUrl}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: stack.model, prompt: 'again?', max_tokens: 1 }),
      }).catch(() => undefined);
      await res?.arrayBuffer();
      return res?.status === 200;
    });
  };
}

describe('llmisvc up: a simulator restarted while another process holds its port', () => {
  it('comes back on a new port; the EPP, the builtin gateway and the dashboard follow', async () => {
    const stack = await startLocalStack({ port: 0 });
    try {
      await movedSimulator(stack);
    } finally {
      await stack.stop();
    }
  });

  it('with EPP replica processes: each starts again with the new address', async () => {
    const stack = await startLocalStack({ port: 0, eppReplicas: 2 });
    try {
      await movedSimulator(
        stack,
        restarted(stack, () => ['epp-0', 'epp-1']),
      );
    } finally {
      await stack.stop();
    }
  });

  it(
    'behind Envoy: its pool cluster lists the new address',
    { skip: ENVOY_BIN ? false : 'ENVOY_BIN not set (run through npm test)' },
    async () => {
      const stack = await startLocalStack({ port: 0, gateway: 'envoy', envoyBin: ENVOY_BIN });
      try {
        await movedSimulator(
          stack,
          restarted(stack, () => ['envoy']),
        );
      } finally {
        await stack.stop();
      }
    },
  );
});
