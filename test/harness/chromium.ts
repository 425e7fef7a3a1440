/**
 * @module test/harness/chromium
 * The Chromium provisioner: Debian's `chromium` package (`apt-get install -y chromium` when /usr/bin/chromium is
 * missing), exported to the tests as `CHROMIUM_BIN` and driven with playwright-core. A browser is never downloaded
 * from anywhere else. `CHROMIUM_BIN` from the environment wins.
 */
import { existsSync } from 'node:fs';
import { runCommand } from '../../src/process/index.js';
import type { Provisioner } from './provision.js';

export const DEBIAN_CHROMIUM = '/usr/bin/chromium';

/** The flags the dashboard test launches Chromium with: headless, no sandbox (root in CI), nothing phoning home. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--headless',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function run(command: string, args: string[], log: (m: string) => void): Promise<void> {
  return runCommand(command, args, {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    // apt prints one line per package: enough to show progress without flooding the log.
    onLine: (line) => {
      if (/^(Get:|Setting up|Unpacking|Reading|Fetched|E:)/.test(line)) log(line);
    },
  });
}

export const chromiumProvisioner: Provisioner = {
  name: 'chromium',
  async provision({ log, env }): Promise<Record<string, string>> {
    const fromEnv = env['CHROMIUM_BIN'];
    if (fromEnv && existsSync(fromEnv)) return { CHROMIUM_BIN: fromEnv };
    if (existsSync(DEBIAN_CHROMIUM)) return { CHROMIUM_BIN: DEBIAN_CHROMIUM };
    log('installing Debian chromium with apt-get (about 100 MB, once per machine)');
    try {
      await run('apt-get', ['update'], log);
      await run('apt-get', ['install', '-y', '--no-install-recommends', 'chromium'], log);
    } catch (error) {
      // The dashboard test skips itself without CHROMIUM_BIN; the rest of the run goes on.
      log(
        `cannot install chromium (${(error as Error).message.split('\n')[0]}); the browser test will be skipped`,
      );
      return {};
    }
    if (!existsSync(DEBIAN_CHROMIUM)) {
      log('apt-get finished but /usr/bin/chromium is missing; the browser test will be skipped');
      return {};
    }
    log(`installed ${DEBIAN_CHROMIUM}`);
    return { CHROMIUM_BIN: DEBIAN_CHROMIUM };
  },
};
