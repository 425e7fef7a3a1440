/**
 * @module process
 * Starting, supervising and stopping child processes, ports, log tails and waiting for conditions, shared by dev/,
 * local/, bench/ and the tests: no child outlives this process, and no caller writes its own.
 */
export { startAnnouncing, type AnnouncingProcess, type AnnouncingSpec } from './announcing.js';
export { forgetChild, killOnExit, startWatchdog, type WatchdogOptions } from './children.js';
export { keepTail, logTail } from './log-tail.js';
export { commandLineMentions, isPidAlive, killAndWait } from './pids.js';
export { freeLoopbackPort, freeLoopbackPorts, listenerPortRange, listenOnFreePort } from './ports.js';
export { runCommand, type RunCommandOptions } from './run.js';
export {
  failExited,
  lostPortRace,
  startOnFreePorts,
  startProcess,
  waitReady,
  type ExitInfo,
  type ManagedProcess,
  type ProcessSpec,
} from './start.js';
export { waitFor, type WaitOptions } from './wait.js';
