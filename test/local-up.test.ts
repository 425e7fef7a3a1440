/**
 * `llmisvc up` end to end: the default stack (4 simulators, the EPP, the builtin gateway) and the same service
 * behind a real Envoy, streamed and non-streamed requests through the HTTPRoute's paths, the EPP's immediate
 * answers, a P/D service whose decode simulator receives the prefill header, a killed simulator coming back, and a
 * shutdown that leaves no process — including a SIGKILL of the `llmisvc up` process itself — and a gateway that opens
 * only once the EPP has scraped every model server.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startLocalStack, type LocalStack } from '../src/local/index.js';
import { CLI, REPO_ROOT } from './harness/repo.js';

const ENVOY_BIN = process.env['ENVOY_BIN'];

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Every process whose ancestry includes `root` (from /proc). */
function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(name), Number(fields[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  for (const pid of parent.keys()) {
    let p = parent.get(pid);
    for (let depth = 0; p && depth < 20; depth++) {
      if (p === root) {
        out.push(pid);
        break;
      }
      p = parent.get(p);
    }
  }
  return out;
}

async function eventually(what: string, check: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(50);
  }
  assert.fail(`timed out waiting for ${what}`);
}

async function chat(stack: LocalStack, extra: Record<string, unknown> = {}) {
  return fetch(`${stack.baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: stack.model,
      messages: [{ role: 'user', content: 'Tell me about prefix caching.' }],
      max_tokens: 8,
      ...extra,
    }),
  });
}

async function streamed(stack: LocalStack): Promise<{ pod: string | null; events: string[] }> {
  const res = await fetch(`${stack.baseUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: stack.model, prompt: 'Once upon a time', max_tokens: 6, stream: true }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const text = await res.text();
  const events = text
    .split('\n\n')
    .map((e) => e.trim())
    .filter(Boolean);
  return { pod: res.headers.get('x-inference-pod'), events };
}

/** The parts of `up`'s Envoy bootstrap the Host test reads. */
interface EnvoyJson {
  admin?: { address: unknown };
  static_resources: {
    clusters: {
      name: string;
      load_assignment: {
        endpoints: {
          lb_endpoints: { endpoint: { address: { socket_address: { port_value: number } } } }[];
        }[];
      };
    }[];
  };
}

/** One request with the Host header as given (fetch would set its own), to a loopback port or a Unix socket. */
function hostRequest(
  port: number,
  host: string,
  path: string,
  body?: string,
  socketPath?: string,
): Promise<{ status: number; contentType: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        ...(socketPath ? { socketPath } : { host: '127.0.0.1', port }),
        path,
        method: body === undefined ? 'GET' : 'POST',
        headers: { host, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        agent: false,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode!, contentType: res.headers['content-type'], body: text }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function checkRequests(stack: LocalStack): Promise<void> {
  const res = await chat(stack);
  assert.equal(res.status, 200, await res.clone().text());
  const body = (await res.json()) as { model: string; choices: { message: { content: string } }[] };
  assert.equal(body.model, stack.model);
  assert.ok(body.choices[0]!.message.content.length > 0);
  assert.ok(
    stack.endpoints.some((e) => e.pod === res.headers.get('x-inference-pod')),
    `answered by a pod of the stack: ${res.headers.get('x-inference-pod')}`,
  );

  const { pod, events } = await streamed(stack);
  assert.ok(stack.endpoints.some((e) => e.pod === pod));
  assert.equal(events.at(-1), 'data: [DONE]');
  assert.ok(events.length >= 3, `several SSE events: ${events.length}`);

  // The EPP's immediate answer reaches the client: a body that is not JSON is a 400 with an OpenAI error.
  const bad = await fetch(`${stack.baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{not json',
  });
  assert.equal(bad.status, 400);
  const error = (await bad.json()) as { error: { message: string } };
  assert.ok(error.error.message.length > 0);

  // The catch-all route's `ReplacePrefixMatch: /` keeps one slash: /<ns>/<name>/v1/models → /v1/models.
  const models = await fetch(`${stack.baseUrl}/v1/models`);
  assert.equal(models.status, 200, await models.clone().text());
  const listed = (await models.json()) as { data: { id: string }[] };
  assert.ok(
    listed.data.some((m) => m.id === stack.model),
    JSON.stringify(listed),
  );

  // Paths outside the HTTPRoute are not served.
  const outside = await fetch(`${stack.url}/other/v1/models`);
  assert.equal(outside.status, 404);
}

describe('llmisvc up: the default stack on the builtin gateway', () => {
  let stack: LocalStack;
  before(async () => {
    stack = await startLocalStack({ port: 0 });
  });
  after(async () => {
    await stack?.stop();
  });

  it('runs the embedded quickstart: 4 simulators with stable pod names behind the EPP', () => {
    assert.equal(stack.model, 'Qwen/Qwen2.5-0.5B-Instruct');
    assert.deepEqual(
      stack.endpoints.map((e) => e.pod),
      ['quickstart-kserve-0', 'quickstart-kserve-1', 'quickstart-kserve-2', 'quickstart-kserve-3'],
    );
    assert.ok(stack.eppEndpoints);
    assert.equal(stack.baseUrl, `${stack.url}/default/quickstart`);
  });

  it('serves streamed and non-streamed requests on the route paths', async () => {
    await checkRequests(stack);
  });

  it('sends requests sharing a long prefix to the same endpoint', async () => {
    const system = 'You are a careful assistant. '.repeat(80);
    const pods = new Set<string | null>();
    for (let i = 0; i < 6; i++) {
      const res = await chat(stack, {
        messages: [
          { role: 'system', content: system },
          { role: 'user', content: `question ${i}` },
        ],
      });
      await res.arrayBuffer();
      pods.add(res.headers.get('x-inference-pod'));
    }
    assert.equal(pods.size, 1, `one pod for a shared prefix, got ${[...pods].join(', ')}`);
  });

  it('shows endpoints and routing decisions on the dashboard', async () => {
    const page = await fetch(`${stack.url}/dashboard`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /llmisvc local stack/);
    await eventually('scraped metrics', async () => {
      const state = (await (await fetch(`${stack.url}/dashboard/state`)).json()) as {
        endpoints: { pod: string; up: boolean }[];
        decisions: { status: number; pod: string }[];
      };
      return state.endpoints.length === 4 && state.endpoints.every((e) => e.up) && state.decisions.length > 0;
    });
  });

  it('restarts a simulator that dies, on the same address', async () => {
    const before = stack.pids()['quickstart-kserve-1']!;
    process.kill(before, 'SIGKILL');
    await eventually('a new simulator process', () => {
      const now = stack.pids()['quickstart-kserve-1']!;
      return now !== before && alive(now);
    });
    const address = stack.endpoints.find((e) => e.pod === 'quickstart-kserve-1')!.address;
    await eventually('the restarted simulator serving', async () => {
      const res = await fetch(`http://${address}/health`).catch(() => undefined);
      return res?.status === 200;
    });
    const res = await chat(stack);
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  });

  it('stops every process it started', async () => {
    const pids = Object.values(stack.pids());
    assert.ok(pids.every(alive));
    await stack.stop();
    assert.deepEqual(pids.filter(alive), [], 'no simulator left after stop');
  });
});

describe(
  'llmisvc up --gateway envoy',
  { skip: ENVOY_BIN ? false : 'ENVOY_BIN not set (run through npm test)' },
  () => {
    let stack: LocalStack;
    before(async () => {
      stack = await startLocalStack({ port: 0, gateway: 'envoy', envoyBin: ENVOY_BIN });
    });
    after(async () => {
      await stack?.stop();
    });

    it('serves the same paths through a real Envoy with the generated bootstrap', async () => {
      assert.equal(stack.gateway, 'envoy');
      await checkRequests(stack);
    });

    it("serves the dashboard through Envoy, with the routing decisions from Envoy's access log", async () => {
      const state = async () => {
        const response = await fetch(`${stack.url}/dashboard/state`);
        assert.equal(response.status, 200);
        return (await response.json()) as { endpoints: unknown[]; decisions: { endpoint?: string }[] };
      };
      assert.equal((await state()).endpoints.length, 4);
      // The requests of the test before went through Envoy; Envoy writes its access log at once when idle.
      let decisions: { endpoint?: string }[] = [];
      for (let i = 0; i < 50 && decisions.length === 0; i++) {
        decisions = (await state()).decisions;
        if (decisions.length === 0) await sleep(100);
      }
      assert.ok(decisions.length > 0, 'no routing decision reached the dashboard');
      assert.ok(
        decisions.some((d) => d.endpoint?.startsWith('127.0.0.1:')),
        JSON.stringify(decisions.slice(0, 3)),
      );
    });

    it('answers only loopback Host names, and keeps its dashboard server and admin API from a rebound page', async () => {
      const gatewayPort = Number(new URL(stack.url).port);
      const models = `${new URL(stack.baseUrl).pathname}/v1/models`;
      for (const host of [
        'localhost',
        `localhost:${gatewayPort}`,
        'LOCALHOST:1',
        'app.localhost:80',
        'localhost.',
      ]) {
        const reply = await hostRequest(gatewayPort, host, models);
        assert.equal(reply.status, 200, `${host}: ${reply.body}`);
      }
      for (const host of [`127.0.0.1:${gatewayPort}`, `[::1]:${gatewayPort}`]) {
        assert.equal((await hostRequest(gatewayPort, host, models)).status, 200, host);
      }
      for (const [host, path] of [
        [`rebound.example:${gatewayPort}`, models],
        ['localhost.rebound.example', '/dashboard/state'],
        [`127.0.0.1.nip.io:${gatewayPort}`, `${new URL(stack.baseUrl).pathname}/v1/completions`],
      ] as const) {
        const reply = await hostRequest(gatewayPort, host, path, '{"model":"x","prompt":"hi"}');
        assert.equal(reply.status, 421, `${host} ${path}: ${reply.body}`);
        assert.equal(reply.contentType, 'application/json');
        const error = JSON.parse(reply.body) as { error: { message: string; type: string } };
        assert.equal(error.error.type, 'MisdirectedRequestError');
        assert.match(error.error.message, /DNS rebinding/);
      }
      // The dashboard's own server, which Envoy routes /dashboard to, checks the Host too.
      const bootstrap = JSON.parse(readFileSync(join(stack.logDir, 'envoy.json'), 'utf8')) as EnvoyJson;
      const dashboard = bootstrap.static_resources.clusters.find((c) => c.name === 'dashboard')!;
      const dashboardPort =
        dashboard.load_assignment.endpoints[0]!.lb_endpoints[0]!.endpoint.address.socket_address.port_value;
      assert.equal(
        (await hostRequest(dashboardPort, `127.0.0.1:${dashboardPort}`, '/dashboard/state')).status,
        200,
      );
      const direct = await hostRequest(dashboardPort, `rebound.example:${dashboardPort}`, '/dashboard/state');
      assert.equal(direct.status, 421, direct.body);
      assert.doesNotMatch(direct.body, /endpoints/);
      // Envoy's admin API is on a Unix socket in the log directory, not on a port.
      const socketPath = join(stack.logDir, 'envoy-admin.sock');
      assert.deepEqual(bootstrap.admin?.address, { pipe: { path: socketPath, mode: 0o600 } });
      assert.equal(statSync(socketPath).mode & 0o777, 0o600);
      const ready = await hostRequest(0, 'localhost', '/ready', undefined, socketPath);
      assert.equal(ready.status, 200, ready.body);
    });

    it('leaves no process after stop', async () => {
      const pids = Object.values(stack.pids());
      assert.equal(pids.length, 5, 'four simulators and Envoy');
      await stack.stop();
      assert.deepEqual(pids.filter(alive), []);
    });
  },
);

describe('llmisvc up: model servers whose metrics lag their health', () => {
  // Each server answers /health at once but /metrics only after a delay (or never): the gateway must not open
  // before the EPP has scraped every server.
  const server = fileURLToPath(new URL('./harness/lagging-metrics-server.js', import.meta.url));
  const lagging = (delay: string) => `${process.execPath} ${server} {port} {pod} {model} ${delay}`;

  it('routes the first request the moment it is up', async () => {
    const stack = await startLocalStack({ port: 0, modelServerCmd: lagging('500') });
    try {
      const res = await fetch(`${stack.baseUrl}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: stack.model, prompt: 'hi', max_tokens: 1 }),
      });
      assert.equal(res.status, 200, await res.text());
      assert.ok(stack.endpoints.some((e) => e.pod === res.headers.get('x-served-by')));
    } finally {
      await stack.stop();
    }
  });

  it('fails, naming every server, when the EPP gets no metrics from them within 10 s', async () => {
    // A stack that starts after all is stopped, so that the failed assertion does not leave it running.
    const started = startLocalStack({ port: 0, modelServerCmd: lagging('never') }).then((stack) =>
      stack.stop(),
    );
    await assert.rejects(started, (error: Error) => {
      for (let i = 0; i < 4; i++) {
        assert.match(
          error.message,
          new RegExp(`quickstart-kserve-${i} \\(http://127\\.0\\.0\\.1:\\d+/metrics\\)`),
        );
      }
      assert.match(error.message, /no metrics .* after 10 s/);
      return true;
    });
    const left = readdirSync('/proc').filter((pid) => {
      try {
        return /^\d+$/.test(pid) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(server);
      } catch {
        return false; // gone meanwhile
      }
    });
    assert.deepEqual(left, [], 'a model server outlived the failed start');
  });
});

describe('llmisvc up: prefill/decode', () => {
  let stack: LocalStack;
  before(async () => {
    stack = await startLocalStack({ port: 0, file: join(REPO_ROOT, 'examples/prefill-decode.yaml') });
  });
  after(async () => {
    await stack?.stop();
  });

  it('runs decode and prefill simulators with their roles', () => {
    const roles = stack.endpoints.map((e) => e.role).sort();
    assert.ok(roles.includes('prefill') && roles.includes('decode'), roles.join(','));
    assert.match(stack.eppEndpoints ?? '', /role=prefill/);
  });

  it('sends a long prompt to a decode simulator that fetched its prefill from a prefill simulator', async () => {
    const res = await fetch(`${stack.baseUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: stack.model, prompt: 'Summarise this. '.repeat(200), max_tokens: 4 }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    await res.arrayBuffer();
    const decode = res.headers.get('x-inference-pod');
    const prefill = res.headers.get('x-prefiller-pod');
    assert.equal(stack.endpoints.find((e) => e.pod === decode)?.role, 'decode');
    assert.equal(stack.endpoints.find((e) => e.pod === prefill)?.role, 'prefill', `prefill pod ${prefill}`);
  });
});

describe("llmisvc up: prefill/decode routed by llm-d-router's disagg-profile-handler layout", () => {
  // Written for this test in the shape of llm-d-router's P/D samples: the handler with a prefix-based decider.
  const config = `apiVersion: llm-d.ai/v1
kind: EndpointPickerConfig
plugins:
- type: approx-prefix-cache-producer
- type: prefix-cache-scorer
- type: queue-scorer
- type: prefill-filter
- type: decode-filter
- type: max-score-picker
- type: disagg-profile-handler
  parameters: {deciders: {prefill: prefix-based-pd-decider}}
- type: prefix-based-pd-decider
  parameters: {nonCachedTokens: 64}
schedulingProfiles:
- name: prefill
  plugins: [{pluginRef: prefill-filter}, {pluginRef: max-score-picker}, {pluginRef: prefix-cache-scorer, weight: 2}, {pluginRef: queue-scorer}]
- name: decode
  plugins: [{pluginRef: decode-filter}, {pluginRef: max-score-picker}, {pluginRef: prefix-cache-scorer, weight: 2}, {pluginRef: queue-scorer}]
`;
  let stack: LocalStack;
  before(async () => {
    stack = await startLocalStack({
      port: 0,
      file: join(REPO_ROOT, 'examples/prefill-decode.yaml'),
      eppConfigText: config,
    });
  });
  after(async () => {
    await stack?.stop();
  });

  async function complete(prompt: string): Promise<{ decode: string | null; prefill: string | null }> {
    const res = await fetch(`${stack.baseUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: stack.model, prompt, max_tokens: 4 }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    await res.arrayBuffer();
    return { decode: res.headers.get('x-inference-pod'), prefill: res.headers.get('x-prefiller-pod') };
  }

  it('prefills a long new prompt on a prefill simulator, and not again once its decode simulator holds it', async () => {
    const long = 'Summarise this report, section by section. '.repeat(60);
    const first = await complete(long);
    assert.equal(stack.endpoints.find((e) => e.pod === first.decode)?.role, 'decode');
    assert.equal(
      stack.endpoints.find((e) => e.pod === first.prefill)?.role,
      'prefill',
      `prefill ${first.prefill}`,
    );
    const again = await complete(long);
    assert.equal(again.decode, first.decode, 'the prefix brings it back to the same decode simulator');
    assert.equal(again.prefill, null, 'which already holds it: nothing left to prefill elsewhere');
    assert.equal(
      (await complete('Say hi.')).prefill,
      null,
      'a short prompt is prefilled where it is decoded',
    );
  });
});

describe('llmisvc up (the command)', () => {
  function startCli(): Promise<{ child: ReturnType<typeof spawn>; output: () => string; url: string }> {
    const child = spawn(process.execPath, [CLI, 'up', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no summary:\n${output}`)), 60_000);
      const onData = () => {
        const m = /OpenAI API\s+(http:\/\/127\.0\.0\.1:\d+\/default\/quickstart)\/v1/.exec(output);
        if (m && output.includes('Ctrl-C')) {
          clearTimeout(timer);
          child.stdout.off('data', onData);
          resolve({ child, output: () => output, url: m[1]! });
        }
      };
      child.stdout.on('data', onData);
      child.once('exit', (code) => reject(new Error(`exited ${code}:\n${output}`)));
    });
  }

  it('prints a clean summary with a working curl command, and SIGTERM stops everything', async () => {
    const { child, output, url } = await startCli();
    const text = output();
    assert.ok(!text.includes('\u001b['), 'no terminal escapes when stdout is not a TTY');
    assert.match(text, /quickstart-kserve-3\s+127\.0\.0\.1:\d+\s+both/);
    assert.match(text, /curl -s http:\/\/127\.0\.0\.1:\d+\/default\/quickstart\/v1\/chat\/completions/);
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'Qwen/Qwen2.5-0.5B-Instruct',
        messages: [{ role: 'user', content: 'Hello!' }],
      }),
    });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    const children = descendants(child.pid!);
    assert.ok(children.length >= 4, `simulators run as child processes: ${children.length}`);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.match(output(), /stopped\./);
    assert.deepEqual(children.filter(alive), []);
  });

  it('leaves no process behind when it is killed with SIGKILL', async () => {
    const { child } = await startCli();
    const children = descendants(child.pid!);
    assert.ok(children.length >= 4);
    child.kill('SIGKILL');
    await eventually('the watchdogs to stop every child', () => children.filter(alive).length === 0);
  });
});
