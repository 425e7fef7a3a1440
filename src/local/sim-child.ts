/**
 * @module local/sim-child
 * The entry point of one simulator process of `llmisvc up`: `node sim-child.js '<SimulatorOptions as JSON>'`.
 * Loads only the simulator (not the whole CLI with gRPC and the Kubernetes client), which keeps start-up of a fleet
 * well under a second per process.
 */
import { startSimulator, type SimulatorOptions } from '../sim/index.js';

const options = JSON.parse(process.argv[2] ?? '{}') as Partial<SimulatorOptions>;
const simulator = await startSimulator(options);
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
