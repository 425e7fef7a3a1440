/**
 * @module test/harness/provision
 * What `npm test` prepares before the tests run. A provisioner makes sure an external part is on this machine
 * (cached per machine) and returns the environment variables that tell the tests where it is; a service is started
 * once for the whole run and stopped at the end. `scripts/test.mjs` runs them in order, printing progress.
 */
import { envoyProvisioner } from './envoy.js';

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

export const provisioners: Provisioner[] = [envoyProvisioner];

export const services: TestService[] = [];
