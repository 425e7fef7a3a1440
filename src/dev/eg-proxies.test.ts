import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serviceForwards } from './eg-proxies.js';

describe('the load balancer of a gateway proxy Service', () => {
  it('forwards each port to the Envoy listener port it maps to, on the Service’s address', () => {
    assert.deepEqual(
      serviceForwards({
        spec: {
          ports: [
            { port: 80, targetPort: 10080 },
            { port: 8443, targetPort: 8443 },
            { port: 9000, targetPort: 'named' },
          ],
        },
        status: { loadBalancer: { ingress: [{ ip: '127.2.9.7' }] } },
      }),
      [{ address: '127.2.9.7', port: 80, targetPort: 10080 }],
    );
  });

  it('forwards nothing before the Service has an address', () => {
    assert.deepEqual(serviceForwards({ spec: { ports: [{ port: 80, targetPort: 10080 }] } }), []);
  });
});
