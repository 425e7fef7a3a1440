/**
 * @module test/harness/port-squatter
 * Loses a model server its first port race, for real: `node port-squatter.js DIR PORT NAME` — the first time for
 * NAME (no file DIR/NAME yet) it starts a separate process listening on 127.0.0.1:PORT, waits until it listens,
 * records that process's pid and the port in DIR/NAME, and exits 0; every later time it exits 0 at once. Run before
 * the server in a `--model-server-cmd` (`sh -c 'node port-squatter.js … && exec server --port {port}'`), the server
 * then finds its port taken as another program would take it between `freeLoopbackPort` and the bind. The squatter
 * gives the port up after 120 s at most, so a crashed test leaves nothing for long; tests kill it by the pid.
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const [dir, portText, name] = process.argv.slice(2);
const port = Number(portText);
if (!dir || !name || !Number.isInteger(port) || port < 1 || port > 65535) {
  console.error('usage: node port-squatter.js DIR PORT NAME');
  process.exit(2);
}
const marker = join(dir, name);
if (!existsSync(marker)) {
  const squatter = spawn(
    process.execPath,
    [
      '-e',
      `require('node:net').createServer().listen(${port}, '127.0.0.1'); setTimeout(() => process.exit(0), 120000)`,
    ],
    { detached: true, stdio: 'ignore' },
  );
  squatter.unref();
  const listening = () =>
    new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
  for (let i = 0; i < 500 && !(await listening()); i++) await sleep(10);
  writeFileSync(marker, JSON.stringify({ pid: squatter.pid, port }));
}
