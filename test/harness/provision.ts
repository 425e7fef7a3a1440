/**
 * @module test/harness/provision
 * What `npm test` prepares before the tests run. A provisioner makes sure an external part is on this machine
 * (cached per machine) and returns the environment variables that tell the tests where it is; a service is started
 * once for the whole run and stopped at the end. `scripts/test.mjs` runs them in order, printing progress.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { provisionDevAssets, provisionDevClusterAssets, startDevApiServer } from '../../src/dev/index.js';
import { chromiumProvisioner } from './chromium.js';
import { envoyProvisioner } from './envoy.js';
import { h2specProvisioner } from './h2spec.js';
import { inferenceSimProvisioner } from './inference-sim.js';
import { node22Provisioner } from './node22.js';

export interface HarnessContext {
  log: (message: string) => void;
  env: NodeJS.ProcessEnv;
}

export interface Provisioner {
  name: string;
  provision(context: HarnessContext): Promise<Record<string, string>>;
}

export interface TestService {
  name: string;
  start(context: HarnessContext): Promise<{ env: Record<string, string>; stop: () => Promise<void> }>;
}

/**
 * kube-apiserver, etcd and kubectl (KUBEBUILDER_ASSETS, else built once per machine from Go modules — the first
 * build prints its progress) and the dependency CRD manifests (from Go modules, cached). Tests that start their own
 * API server find the binaries through the KUBEBUILDER_ASSETS this returns; `LLMISVC_KUBECTL` is the kubectl binary.
 */
const kubeApiserverAssets: Provisioner = {
  name: 'kube-apiserver',
  async provision({ log, env }) {
    const { assets } = await provisionDevAssets({ env, log });
    log(`binaries from ${assets.source === 'cache' ? 'the cache' : 'KUBEBUILDER_ASSETS'}: ${assets.dir}`);
    return {
      KUBEBUILDER_ASSETS: assets.dir,
      ...(assets.kubectl ? { LLMISVC_KUBECTL: assets.kubectl } : {}),
    };
  },
};

/**
 * kube-controller-manager, kube-scheduler, KWOK, the LWS manager and Envoy Gateway for the dev-cluster tests (built once per
 * machine; the controllers reuse kube-apiserver's compiled packages, so this runs after it). The test finds them in
 * the cache.
 */
const devClusterAssets: Provisioner = {
  name: 'dev-cluster',
  async provision({ log, env }) {
    const assets = await provisionDevClusterAssets({ env, log });
    log(
      `controllers, KWOK, LWS and Envoy Gateway in the cache: ${assets.kubeControllerManager}, ${assets.kwok}, ` +
        `${assets.lwsManager}, ${assets.envoyGateway}`,
    );
    return {};
  },
};

/**
 * One API server with every CRD set installed, shared by the whole `npm test` run; tests read its kubeconfig path
 * from `LLMISVC_TEST_KUBECONFIG` and keep to their own namespaces (deleted namespaces stay Terminating: there is no
 * namespace controller).
 */
const sharedKubeApiserver: TestService = {
  name: 'kube-apiserver',
  async start({ log, env }) {
    const dir = await mkdtemp(join(tmpdir(), 'llmisvc-test-apiserver-'));
    const server = await startDevApiServer({ dir, crds: true, env, log });
    log(`serving ${server.server}; kubeconfig ${server.kubeconfigPath}`);
    return {
      env: { LLMISVC_TEST_KUBECONFIG: server.kubeconfigPath },
      async stop() {
        await server.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
};

export const provisioners: Provisioner[] = [
  kubeApiserverAssets,
  devClusterAssets,
  envoyProvisioner,
  chromiumProvisioner,
  h2specProvisioner,
  inferenceSimProvisioner,
  node22Provisioner,
];

export const services: TestService[] = [sharedKubeApiserver];
