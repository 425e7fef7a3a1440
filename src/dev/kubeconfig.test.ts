import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { DEV_CONTEXT_NAME, renderDevKubeconfig } from './kubeconfig.js';

describe('the development kubeconfig', () => {
  it('is read by @kubernetes/client-node as one cluster with a token user', () => {
    const caPem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const config = new KubeConfig();
    config.loadFromString(renderDevKubeconfig({ server: 'https://127.0.0.1:6443', caPem, token: 'abc' }));
    assert.equal(config.getCurrentContext(), DEV_CONTEXT_NAME);
    assert.equal(config.getCurrentCluster()?.server, 'https://127.0.0.1:6443');
    assert.equal(Buffer.from(config.getCurrentCluster()?.caData ?? '', 'base64').toString('utf8'), caPem);
    assert.equal(config.getCurrentUser()?.token, 'abc');
    assert.equal(config.getContextObject(DEV_CONTEXT_NAME)?.namespace, 'default');
  });
});
