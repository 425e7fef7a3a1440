/**
 * @module local/sim-child
 * The entry point of one simulator process of `llmisvc up`: `node sim-child.js '<SimulatorOptions as JSON>'`.
 * Loads only the simulator (not the whole CLI with gRPC and the Kubernetes client), which keeps start-up of a fleet
 * well under a second per process. It binds the port it is given (0 at first, its previous one after a restart) or,
 * when that is taken, any free one, and reports the port it got to the supervisor over IPC: no port race.
 */
import { startSimulator, type SimulatorOptions } from '../sim/index.js';

const options = JSON.parse(process.argv[2] ?? '{}') as Partial<SimulatorOptions>;
const simulator = await startSimulator(options).catch((error: NodeJS.ErrnoException) => {
  if (error.code !== 'EADDRINUSE' || !options.port) throw error;
  console.log(`port ${options.port} is taken now; taking another`);
  return startSimulator({ ...options, port: 0 });
});
process.send?.({ type: 'listening', port: simulator.port });
console.log(
  `${simulator.podName} serving ${simulator.options.model} at ${simulator.url} (${simulator.options.role})`,
);
const stop = (): void => {
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  void simulator.close().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
