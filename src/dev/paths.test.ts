import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crdCacheDir, kubeAssetsDir, llmisvcCacheDir } from './paths.js';

describe('cache paths', () => {
  it('follow XDG_CACHE_HOME when it is absolute, else ~/.cache', () => {
    assert.equal(
      llmisvcCacheDir({ XDG_CACHE_HOME: '/var/cache/me', HOME: '/home/me' }),
      '/var/cache/me/llmisvc',
    );
    assert.equal(llmisvcCacheDir({ HOME: '/home/me' }), '/home/me/.cache/llmisvc');
    // A relative XDG_CACHE_HOME is invalid per the spec and ignored.
    assert.equal(llmisvcCacheDir({ XDG_CACHE_HOME: 'cache', HOME: '/home/me' }), '/home/me/.cache/llmisvc');
  });

  it('keep one folder per Kubernetes version and per module version', () => {
    assert.equal(kubeAssetsDir('/c/llmisvc', 'v1.34.4'), '/c/llmisvc/kube-assets/v1.34.4');
    assert.equal(
      crdCacheDir('/c/llmisvc', 'sigs.k8s.io/lws', 'v0.8.0'),
      '/c/llmisvc/crds/sigs.k8s.io_lws@v0.8.0',
    );
  });
});
