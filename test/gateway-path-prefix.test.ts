import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { matchRoute, type GatewayRoute, startEnvoy, type RunningEnvoy } from '../src/gateway/index.js';

const ENVOY_BIN = process.env['ENVOY_BIN'];

/** Routes as an HTTPRoute's PathPrefix matches and ReplacePrefixMatch filters give them. */
const routes: GatewayRoute[] = [
  { prefix: '/default/quickstart/v1/completions', rewrite: '/v1/completions', backend: 'pool' },
  { prefix: '/default/quickstart', rewrite: '/', backend: 'pool' },
  { prefix: '/foo/', rewrite: '/xyz', backend: 'pool' },
  { prefix: '/bar', rewrite: '/xyz/', backend: 'pool' },
  { prefix: '/keep', backend: 'pool' },
];

/** Request path → upstream path (undefined: no route, 404), from Gateway API's ReplacePrefixMatch table. */
const table: [string, string | undefined][] = [
  ['/default/quickstart/v1/models', '/v1/models'],
  ['/default/quickstart/v1/models?limit=1', '/v1/models?limit=1'],
  ['/default/quickstart/v1/models/', '/v1/models/'],
  ['/default/quickstart', '/'],
  ['/default/quickstart/', '/'],
  ['/default/quickstart?x=1', '/?x=1'],
  ['/default/quickstart/v1/completions', '/v1/completions'],
  ['/default/quickstart/v1/completions/', '/v1/completions/'],
  ['/default/quickstartX/v1/models', undefined],
  ['/foo/bar', '/xyz/bar'],
  ['/foo', '/xyz'],
  ['/foo/', '/xyz/'],
  ['/bar/baz', '/xyz/baz'],
  ['/bar', '/xyz'],
  ['/keep/v1/models', '/keep/v1/models'],
  ['/keeper', undefined],
  ['/other', undefined],
];

const sorted = [...routes].sort((a, b) => b.prefix.length - a.prefix.length);

describe('PathPrefix and ReplacePrefixMatch', () => {
  it('the builtin gateway follows the table', () => {
    for (const [path, expected] of table) assert.equal(matchRoute(sorted, path)?.path, expected, path);
  });

  describe(
    'a real Envoy with the generated routes',
    { skip: ENVOY_BIN ? false : 'ENVOY_BIN not set' },
    () => {
      let upstream: Server;
      let envoy: RunningEnvoy;
      const seen: string[] = [];
      before(async () => {
        upstream = createServer((req, res) => {
          seen.push(req.url!);
          res.end(req.url);
        });
        upstream.listen(0, '127.0.0.1');
        await once(upstream, 'listening');
        const port = (upstream.address() as { port: number }).port;
        // No EPP: the routes send every request to this one upstream, which echoes the path it was sent.
        envoy = await startEnvoy(ENVOY_BIN!, {
          eppHost: '127.0.0.1',
          eppPort: 1,
          routes,
          bypassEpp: { host: '127.0.0.1', port },
        });
      });
      after(async () => {
        await envoy?.close();
        upstream?.close();
      });

      it('follows the same table', async () => {
        for (const [path, expected] of table) {
          const response = await fetch(`http://127.0.0.1:${envoy.port}${path}`);
          const body = await response.text();
          if (expected === undefined) assert.equal(response.status, 404, `${path} → ${body}`);
          else assert.deepEqual([response.status, body], [200, expected], path);
        }
        assert.equal(
          seen.length,
          table.filter(([, e]) => e !== undefined).length,
          'unmatched paths reach nothing',
        );
      });
    },
  );
});
