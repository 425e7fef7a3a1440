/**
 * @module test/harness/lagging-metrics-server
 * The model-server fixture as a process of its own, for `llmisvc up --model-server-cmd`:
 * `node lagging-metrics-server.js PORT NAME MODEL DELAY_MS|never` answers /health and completions at once but
 * /metrics only after DELAY_MS (or never), like a server the EPP cannot scrape yet. SIGTERM ends it.
 */
import { startModelServerFixture } from '../../src/bench/index.js';

const [port, name, model, delay] = process.argv.slice(2);
const fixture = await startModelServerFixture(name!, model, { port: Number(port) });
fixture.state.failMetrics = true;
if (delay !== 'never') setTimeout(() => (fixture.state.failMetrics = false), Number(delay));
