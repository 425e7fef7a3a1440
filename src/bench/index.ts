/**
 * @module bench
 * Load generation and reporting for OpenAI-compatible endpoints: seeded workloads, the open-loop load generator,
 * sweeps and comparisons over setups, and the Markdown/SVG report writers.
 */
export {
  createWorkload,
  words,
  workloadDefaults,
  workloadNames,
  type Workload,
  type WorkloadName,
  type WorkloadOptions,
  type WorkloadRequest,
} from './workloads.js';
export {
  baseUrl,
  runLoad,
  sendRequest,
  summarizeRun,
  type LoadOptions,
  type LoadProgress,
  type LoadResult,
  type Outcome,
  type RequestRecord,
} from './load.js';
export { runComparison, runSweep, urlTarget, type BenchTarget, type SweepOptions } from './sweep.js';
export {
  formatMs,
  loadAverage,
  machineDescription,
  markdownReport,
  reportCharts,
  writeReport,
  type ReportContext,
  type ReportSeries,
} from './report.js';
export { formatTick, lineChartSvg, niceTicks, type ChartSeries, type LineChart } from './chart.js';
export { progressDisplay, progressLine, type ProgressDisplay } from './progress.js';
export { percentile, percentileOf, summarize, type Summary } from './stats.js';
export { poissonArrivals, seededRandom, type Random } from './random.js';
export { discoverModels, type ServedModels } from './models.js';
export {
  startModelServerFixture,
  type FixtureState,
  type ModelServerFixture,
  type ReceivedRequest,
} from './model-server-fixture.js';
export { provisionInferenceSim, INFERENCE_SIM_VERSION } from './peers-provision.js';
