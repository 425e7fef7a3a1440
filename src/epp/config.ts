/**
 * @module epp/config
 * The EndpointPickerConfig file (`--config-file` / `--config-text`), in the layout of llm-d-router (where the EPP
 * moved from GIE): `apiVersion` (`llm-d.ai/v1alpha1`, or GIE's `inference.networking.x-k8s.io/v1alpha1`),
 * `kind: EndpointPickerConfig`, `featureGates`, `plugins`, `schedulingProfiles`, `flowControl` (whose
 * `saturationDetector` names the detector plugin), `requestHandler.parsers`, `dataLayer`, and the deprecated
 * top-level `saturationDetector` and `parser`. Decoding is strict, as upstream: an unknown field is an error naming
 * its path. Fields this EPP accepts but does not act on are reported as warnings (logged at start), never dropped
 * silently. Every problem is reported at once.
 */
import { parse as parseYaml } from 'yaml';
import { isRecord } from './is-record.js';
import { LlmisvcError, ValidationError, type FieldProblem } from '../errors/index.js';
import {
  acceptedNotActedOn,
  checkTokenSources,
  createPlugin,
  isSaturationDetector,
  parseDurationMs,
  type LinkedPlugin,
  type PluginReport,
  type SaturationDetectorPlugin,
} from './plugins/index.js';
import { defaultSaturationThresholds, type SaturationThresholds } from './saturation.js';
import type { SchedulerPlugins } from './scheduler.js';
import {
  isFilter,
  isPicker,
  isPostResponse,
  isDataProducer,
  isRequestDataPreparer,
  isPluginService,
  isPreRequest,
  isProfileHandler,
  isScorer,
  type Filter,
  type Picker,
  type Plugin,
  type PluginService,
  type RequestDataPreparer,
  type ProfileHandler,
  type Scorer,
  type SchedulingProfile,
} from './types.js';
import { maxScorePicker } from './plugins/max-score-picker.js';
import { singleProfileHandler } from './plugins/single-profile-handler.js';
import { utilizationDetector } from './plugins/utilization-detector.js';
import { flowControlSettings, type FlowControlSettings } from './flow-control/index.js';

/**
 * GIE's and llm-d's config versions. `llm-d.ai/v1` moves two things (llm-d-router converts v1alpha1 to it): the
 * cross-replica syncer's fields under `dataLayer.crossReplica`, and discovery only under `dataLayer.discovery.endpoints`.
 */
export const ACCEPTED_API_VERSIONS = [
  'inference.networking.x-k8s.io/v1alpha1',
  'llm-d.ai/v1alpha1',
  'llm-d.ai/v1',
] as const;
const LLM_D_V1 = 'llm-d.ai/v1';

export { parseDurationMs } from './plugins/index.js';
export {
  defaultEndpointPickerConfig,
  prefillDecodeEndpointPickerConfig,
  weightedEndpointPickerConfig,
} from './default-configs.js';

/** A field accepted but not acted on, or a deprecated spelling: logged as a warning when the EPP starts. */
export interface ConfigWarning {
  path: string;
  message: string;
}

/** Times plugin calls (`plugin_duration_seconds`); the server sets `observe`, unset = not timed. */
export interface PluginTiming {
  observe:
    ((extensionPoint: string, pluginType: string, pluginName: string, seconds: number) => void) | undefined;
}

/** A loaded config: the scheduler's plugins plus the saturation thresholds. */
export interface EndpointPickerConfig {
  readonly scheduler: SchedulerPlugins;
  readonly saturation: SaturationThresholds;
  /** The saturation detector (`flowControl.saturationDetector`; utilization with `saturation` by default). */
  readonly detector: SaturationDetectorPlugin;
  /** Flow control's settings when the `flowControl` feature gate is on; undefined = shedding as before. */
  readonly flowControl: FlowControlSettings | undefined;
  /** Every plugin instance by name (for metrics and endpoint removal). */
  readonly plugins: ReadonlyMap<string, Plugin>;
  /** Every known feature gate with its value (upstream default unless the config set it). */
  readonly featureGates: ReadonlyMap<string, boolean>;
  readonly warnings: readonly ConfigWarning[];
  readonly pluginTiming: PluginTiming;
  /** Steps that may wait before scheduling (token-producer's render call); empty = schedule at once. */
  readonly preparers: readonly RequestDataPreparer[];
  /** Plugins with a background job (KV-event subscriptions), started and stopped with the EPP. */
  readonly services: readonly PluginService[];
  /**
   * `requestHandler.propagatePriority`: the request's priority (its InferenceObjective's) is written into the body's
   * `priority` field, for the model server's own priority scheduling.
   */
  readonly propagatePriority: boolean;
}

/**
 * llm-d-router's feature gates: default value, and whether a value is what this EPP does (a gate set to a value it
 * does not honour is a warning naming the gate).
 */
const FEATURE_GATES: Readonly<
  Record<string, { default: boolean; honoured: (on: boolean) => boolean; why: string }>
> = {
  flowControl: {
    default: false,
    honoured: () => true,
    why: '',
  },
  haPopulateNonLeaderDatastore: {
    default: true,
    honoured: (on) => on,
    why: 'this EPP has no leader election: every replica keeps its endpoints and routes',
  },
  dataLayer: {
    default: true,
    honoured: () => false,
    why: 'deprecated upstream and a no-op: model-server metrics are always scraped',
  },
  enableLegacyMetrics: {
    default: false,
    honoured: (on) => !on,
    why: 'there is one metrics path here',
  },
  prepareDataPlugins: {
    default: false,
    honoured: (on) => !on,
    why: 'data-producer plugins are not implemented',
  },
};

/** Parses `text` (YAML or JSON); `source` names it in messages (a file path or `--config-text`). */
export function loadEndpointPickerConfig(text: string, source = '--config-text'): EndpointPickerConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (error) {
    throw new LlmisvcError('LLMISVC_ERR_CONFIG', `${source}: not valid YAML: ${(error as Error).message}`, {
      hint: 'An EndpointPickerConfig is a YAML document with apiVersion, kind, plugins and schedulingProfiles.',
    });
  }
  return buildEndpointPickerConfig(doc, source);
}

/** What one config is checked against: problems (errors) and warnings, gathered together. */
class Checker {
  readonly problems: FieldProblem[] = [];
  readonly warnings: ConfigWarning[] = [];
  /** Names of plugins whose type was refused: a reference to one is not reported a second time. */
  readonly refused = new Set<string>();
  /** Each plugin's place in the config (`plugins[3]`), for problems found across plugins. */
  readonly pluginPaths = new Map<string, string>();

  problem(path: string, message: string): void {
    this.problems.push({ path, message });
  }

  warn(path: string, message: string): void {
    this.warnings.push({ path, message });
  }

  /** A mapping at `path` (or undefined, reported, when it is something else); unknown keys are errors. */
  mapping(value: unknown, path: string, known: readonly string[]): Record<string, unknown> | undefined {
    if (value === undefined || value === null) return undefined;
    if (!isRecord(value)) {
      this.problem(path, `must be a mapping with ${known.join(', ')}`);
      return undefined;
    }
    for (const key of Object.keys(value)) {
      if (!known.includes(key))
        this.problem(path ? `${path}.${key}` : key, `unknown field (known: ${known.join(', ')})`);
    }
    return value;
  }

  list(value: unknown, path: string, what: string): unknown[] {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) {
      this.problem(path, `must be a list of ${what}`);
      return [];
    }
    return value;
  }

  string(value: unknown, path: string, required = false): string | undefined {
    if (value === undefined || value === null || (value === '' && !required)) {
      if (required) this.problem(path, 'is required');
      return undefined;
    }
    if (typeof value !== 'string' || value === '') {
      this.problem(path, 'must be a non-empty string');
      return undefined;
    }
    return value;
  }

  /** `{pluginRef}` naming a plugin in `plugins`. */
  pluginRef(value: unknown, path: string, plugins: ReadonlyMap<string, Plugin>): Plugin | undefined {
    const ref = this.mapping(value, path, ['pluginRef']);
    if (!ref) return undefined;
    const name = this.string(ref['pluginRef'], `${path}.pluginRef`, true);
    if (name === undefined) return undefined;
    const plugin = plugins.get(name);
    if (!plugin && !this.refused.has(name))
      this.problem(`${path}.pluginRef`, `no plugin named "${name}" in plugins (defined: ${names(plugins)})`);
    return plugin;
  }
}

function names(plugins: ReadonlyMap<string, Plugin>): string {
  return [...plugins.keys()].join(', ') || 'none';
}

const TOP_LEVEL = [
  'apiVersion',
  'kind',
  'featureGates',
  'plugins',
  'schedulingProfiles',
  'flowControl',
  'requestHandler',
  'dataLayer',
  'saturationDetector',
  'parser',
  'data',
] as const;

/** Builds the plugins from an already parsed document. */
export function buildEndpointPickerConfig(
  doc: unknown,
  source = 'EndpointPickerConfig',
): EndpointPickerConfig {
  if (!isRecord(doc)) throw new ValidationError(source, [{ path: '', message: 'must be a YAML mapping' }]);
  const c = new Checker();
  const apiVersion = doc['apiVersion'];
  if (!ACCEPTED_API_VERSIONS.includes(apiVersion as (typeof ACCEPTED_API_VERSIONS)[number])) {
    c.problem(
      'apiVersion',
      `must be one of ${ACCEPTED_API_VERSIONS.join(', ')}, got ${JSON.stringify(apiVersion)}`,
    );
  }
  if (doc['kind'] !== 'EndpointPickerConfig') {
    c.problem('kind', `must be EndpointPickerConfig, got ${JSON.stringify(doc['kind'])}`);
  }
  c.mapping(doc, '', TOP_LEVEL);

  const featureGates = readFeatureGates(doc['featureGates'], c);
  const plugins = readPlugins(doc['plugins'], c);
  readTokenSources(plugins, c);
  const timing: PluginTiming = { observe: undefined };
  const profiles = readProfiles(doc['schedulingProfiles'], plugins, timing, c);

  const handlers = [...plugins.values()].filter(isProfileHandler);
  let handler: ProfileHandler;
  if (handlers.length > 1) {
    c.problem('plugins', `only one profile handler allowed, found ${handlers.map((h) => h.name).join(', ')}`);
  }
  if (handlers[0]) handler = handlers[0];
  else {
    if (profiles.size > 1) {
      c.problem(
        'plugins',
        'several scheduling profiles need a profile handler plugin (e.g. pd-profile-handler)',
      );
    }
    handler = singleProfileHandler('single-profile-handler');
  }

  const flowOn = featureGates.get('flowControl') === true;
  const flow = readFlowControl(doc['flowControl'], c, flowOn);
  const { thresholds: saturation, detector } = readSaturation(doc, flow, plugins, c);
  const flowControl = flowOn
    ? flowControlSettings(flow, plugins, c.problems, (path, message) => c.warn(path, message))
    : undefined;
  const propagatePriority = readRequestHandler(doc, plugins, c);
  readDataLayer(doc['dataLayer'], plugins, c, apiVersion === LLM_D_V1);
  if (doc['data'] !== undefined && doc['data'] !== null)
    c.warn(
      'data',
      "accepted, not acted on: GIE's data section; model-server metrics are scraped with built-in names",
    );

  plugins.forEach((plugin, name) => {
    // prefix-cache-scorer's prefixMatchInfoProducerName must name a plugin, as in llm-d-router.
    const producer = (plugin as { matchInfoProducer?: string }).matchInfoProducer;
    if (producer !== undefined && !plugins.has(producer) && !c.refused.has(producer))
      c.problem(
        `plugins (${name}).parameters.prefixMatchInfoProducerName`,
        `no plugin named "${producer}" in plugins (defined: ${names(plugins)})`,
      );
  });
  if (c.problems.length > 0) throw new ValidationError(`EndpointPickerConfig (${source})`, c.problems);
  const all = [...plugins.values()];
  return {
    scheduler: {
      handler,
      profiles,
      preRequest: all.filter(isPreRequest),
      postResponse: all.filter(isPostResponse),
      producers: all.filter(isDataProducer),
    },
    preparers: all.filter(isRequestDataPreparer),
    services: all.filter(isPluginService),
    saturation,
    detector,
    flowControl,
    plugins,
    featureGates,
    warnings: c.warnings,
    pluginTiming: timing,
    propagatePriority,
  };
}

/** `featureGates: [name | name=true | name=false]`, as llm-d-router reads them. */
function readFeatureGates(raw: unknown, c: Checker): Map<string, boolean> {
  const gates = new Map(Object.entries(FEATURE_GATES).map(([name, g]) => [name, g.default]));
  c.list(raw, 'featureGates', 'gate names ("name", "name=true" or "name=false")').forEach((entry, i) => {
    const path = `featureGates[${i}]`;
    if (typeof entry !== 'string' || entry === '') {
      c.problem(path, 'must be a gate name, "name=true" or "name=false"');
      return;
    }
    const [name = '', value, ...rest] = entry.split('=');
    const gate = FEATURE_GATES[name.trim()];
    if (!gate) {
      c.problem(path, `unknown feature gate "${name}" (known: ${Object.keys(FEATURE_GATES).join(', ')})`);
      return;
    }
    let on = true;
    if (value !== undefined) {
      const v = value.trim().toLowerCase();
      if (rest.length > 0 || !['true', 'false', 't', 'f', '1', '0'].includes(v)) {
        c.problem(path, `"${entry}": the value after "=" must be true or false`);
        return;
      }
      on = v === 'true' || v === 't' || v === '1';
    }
    gates.set(name.trim(), on);
    if (!gate.honoured(on))
      c.warn(path, `feature gate ${name.trim()}=${on} accepted, not acted on: ${gate.why}`);
  });
  return gates;
}

function readPlugins(raw: unknown, c: Checker): Map<string, Plugin> {
  const plugins = new Map<string, Plugin>();
  const report: PluginReport = { problems: c.problems, warnings: c.warnings };
  if (!Array.isArray(raw) || raw.length === 0) {
    c.problem('plugins', 'must be a non-empty list of {type, name?, parameters?}');
    return plugins;
  }
  raw.forEach((entry, i) => {
    const path = `plugins[${i}]`;
    const spec = c.mapping(entry, path, ['type', 'name', 'parameters']);
    if (!spec || typeof spec['type'] !== 'string' || spec['type'] === '') {
      c.problem(path, 'must have a string "type"');
      return;
    }
    const type = spec['type'];
    const name = typeof spec['name'] === 'string' && spec['name'] !== '' ? spec['name'] : type;
    const parameters = spec['parameters'] ?? {};
    if (!isRecord(parameters)) {
      c.problem(`${path}.parameters`, 'must be a mapping');
      return;
    }
    if (plugins.has(name) || c.refused.has(name)) {
      c.problem(`${path}.name`, `plugin name "${name}" is used twice; give one a distinct name`);
      return;
    }
    const plugin = createPlugin(type, name, parameters, path, report);
    if (!plugin) {
      c.refused.add(name);
      return;
    }
    plugins.set(name, plugin);
    c.pluginPaths.set(name, path);
    const why = acceptedNotActedOn[plugin.type];
    if (why !== undefined) c.warn(path, `plugin "${name}" (${plugin.type}) accepted, not acted on: ${why}`);
  });
  // Plugins that refer to others by name (a prefix-cache-scorer to its approx producer, listed before or after it)
  // are linked once all exist; each reports its own problems under its parameters.
  for (const plugin of plugins.values()) (plugin as Partial<LinkedPlugin>).link?.(plugins, c.refused);
  return plugins;
}

/**
 * Precise prefix-cache routing's token sources (plugins/token-sources.ts). A deprecated precise-prefix-cache-scorer
 * whose tokenizersPoolConfig maps onto a renderer gets it as its own request-data step, so the renderer runs before
 * scheduling as a token-producer would.
 */
function readTokenSources(plugins: ReadonlyMap<string, Plugin>, c: Checker): void {
  const report = checkTokenSources(plugins, (name) => c.pluginPaths.get(name) ?? `plugins (${name})`);
  c.problems.push(...report.problems);
  c.warnings.push(...report.warnings);
  for (const { plugin, renderer } of report.renderers)
    Object.assign(plugin, { prepareRequestData: renderer.prepareRequestData });
}

function readProfiles(
  raw: unknown,
  plugins: ReadonlyMap<string, Plugin>,
  timing: PluginTiming,
  c: Checker,
): Map<string, SchedulingProfile> {
  const profiles = new Map<string, SchedulingProfile>();
  const entries = c.list(raw, 'schedulingProfiles', '{name, plugins}');
  if (entries.length === 0) {
    // As llm-d-router: no profiles = one "default" profile with every filter, scorer (weight 1) and picker.
    const refs = [...plugins.values()]
      .filter((p) => isFilter(p) || isScorer(p) || isPicker(p))
      .map((p) => ({ pluginRef: p.name }));
    const profile = buildProfile(
      { name: 'default', plugins: refs },
      'schedulingProfiles',
      plugins,
      timing,
      c,
    );
    if (profile) profiles.set(profile.name, profile);
    return profiles;
  }
  const fallbacks: [string, string][] = [];
  entries.forEach((entry, i) => {
    const path = `schedulingProfiles[${i}]`;
    const profile = buildProfile(entry, path, plugins, timing, c);
    if (!profile) return;
    if (profiles.has(profile.name)) c.problem(`${path}.name`, `profile "${profile.name}" is defined twice`);
    else profiles.set(profile.name, profile);
    const fallback = (entry as Record<string, unknown>)['fallbackProfile'];
    if (fallback !== undefined && fallback !== null && fallback !== '') {
      if (typeof fallback !== 'string') c.problem(`${path}.fallbackProfile`, 'must be a profile name');
      else fallbacks.push([`${path}.fallbackProfile`, fallback]);
    }
  });
  for (const [path, name] of fallbacks) {
    if (!profiles.has(name)) c.problem(path, `no scheduling profile named "${name}"`);
    else
      c.warn(
        path,
        'accepted, not acted on: a profile whose scorers all score zero still uses its own picker (ties broken at random)',
      );
  }
  return profiles;
}

function buildProfile(
  raw: unknown,
  path: string,
  plugins: ReadonlyMap<string, Plugin>,
  timing: PluginTiming,
  c: Checker,
): SchedulingProfile | undefined {
  const spec = c.mapping(raw, path, ['name', 'plugins', 'fallbackProfile']);
  if (!spec || typeof spec['name'] !== 'string' || spec['name'] === '') {
    c.problem(path, 'must have a non-empty "name"');
    return undefined;
  }
  const refs = spec['plugins'];
  if (!Array.isArray(refs)) {
    c.problem(`${path}.plugins`, 'must be a list of {pluginRef, weight?}');
    return undefined;
  }
  const filters: Filter[] = [];
  const scorers: { scorer: Scorer; weight: number }[] = [];
  let picker: Picker | undefined;
  refs.forEach((entry, j) => {
    const refPath = `${path}.plugins[${j}]`;
    const ref = c.mapping(entry, refPath, ['pluginRef', 'weight']);
    if (!ref || typeof ref['pluginRef'] !== 'string') {
      c.problem(refPath, 'must have a string "pluginRef"');
      return;
    }
    const plugin = plugins.get(ref['pluginRef']);
    if (!plugin) {
      if (!c.refused.has(ref['pluginRef']))
        c.problem(
          `${refPath}.pluginRef`,
          `no plugin named "${ref['pluginRef']}" in plugins (defined: ${names(plugins)})`,
        );
      return;
    }
    const weight = ref['weight'] ?? 1;
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0) {
      c.problem(`${refPath}.weight`, `must be a number ≥ 0, got ${JSON.stringify(weight)}`);
      return;
    }
    let used = false;
    if (isFilter(plugin)) {
      filters.push(timedFilter(plugin, timing));
      used = true;
    }
    if (isScorer(plugin)) {
      scorers.push({ scorer: timedScorer(plugin, timing), weight });
      used = true;
    }
    if (isPicker(plugin)) {
      if (picker)
        c.problem(`${refPath}.pluginRef`, `a profile has one picker; "${picker.name}" is already set`);
      picker = timedPicker(plugin, timing);
      used = true;
    }
    // Upstream's SchedulerProfile.AddPlugins registers a plugin by the scheduling interfaces it implements and skips
    // any other without an error, so guides that list a data producer (tokenizer, a latency producer) in a profile
    // load there: here too, and the reference is named.
    if (!used)
      c.warn(
        `${refPath}.pluginRef`,
        `"${plugin.name}" (${plugin.type}) is not a filter, scorer or picker: ignored in this profile, as upstream (it runs as a plugin all the same)`,
      );
  });
  // Like GIE, a profile without a picker uses max-score.
  return {
    name: spec['name'],
    filters,
    scorers,
    picker: picker ?? timedPicker(maxScorePicker(`${spec['name']}-max-score-picker`), timing),
  };
}

/*
 * Timing wrappers (upstream extension point names): two clock reads per call when a metrics sink is set, none
 * otherwise. The wrapped plugin keeps its type and name.
 */
function timedFilter(f: Filter, timing: PluginTiming): Filter {
  return {
    type: f.type,
    name: f.name,
    filter(context, endpoints) {
      const observe = timing.observe;
      if (!observe) return f.filter(context, endpoints);
      const t = performance.now();
      const out = f.filter(context, endpoints);
      observe('Filter', f.type, f.name, (performance.now() - t) / 1000);
      return out;
    },
  };
}

function timedScorer(s: Scorer, timing: PluginTiming): Scorer {
  return {
    type: s.type,
    name: s.name,
    score(context, endpoints) {
      const observe = timing.observe;
      if (!observe) return s.score(context, endpoints);
      const t = performance.now();
      const out = s.score(context, endpoints);
      observe('Scorer', s.type, s.name, (performance.now() - t) / 1000);
      return out;
    },
  };
}

function timedPicker(p: Picker, timing: PluginTiming): Picker {
  return {
    type: p.type,
    name: p.name,
    pick(context, scored) {
      const observe = timing.observe;
      if (!observe) return p.pick(context, scored);
      const t = performance.now();
      const out = p.pick(context, scored);
      observe('Picker', p.type, p.name, (performance.now() - t) / 1000);
      return out;
    },
  };
}

/**
 * The saturation thresholds: from the detector plugin named by `flowControl.saturationDetector` (or the deprecated
 * top-level `saturationDetector: {pluginRef}`), or GIE's older top-level thresholds; ours by default.
 */
function readSaturation(
  doc: Record<string, unknown>,
  flow: Record<string, unknown> | undefined,
  plugins: Map<string, Plugin>,
  c: Checker,
): { thresholds: SaturationThresholds; detector: SaturationDetectorPlugin } {
  const fallback = (thresholds: SaturationThresholds = { ...defaultSaturationThresholds }) => ({
    thresholds,
    detector: utilizationDetector('utilization-detector', thresholds, 0),
  });
  const legacy = doc['saturationDetector'];
  let ref: { value: unknown; path: string } | undefined;
  if (flow?.['saturationDetector'] !== undefined && flow['saturationDetector'] !== null) {
    ref = { value: flow['saturationDetector'], path: 'flowControl.saturationDetector' };
    if (legacy !== undefined && legacy !== null)
      c.warn('saturationDetector', 'deprecated and ignored: flowControl.saturationDetector is set and wins');
  } else if (isRecord(legacy) && 'pluginRef' in legacy) {
    ref = { value: legacy, path: 'saturationDetector' };
    c.warn('saturationDetector', 'deprecated: move it to flowControl.saturationDetector');
  } else if (legacy !== undefined && legacy !== null) {
    return fallback(readSaturationThresholds(legacy, c));
  }
  if (!ref) return fallback();
  const spec = c.mapping(ref.value, ref.path, ['pluginRef']);
  const name = c.string(spec?.['pluginRef'], `${ref.path}.pluginRef`, true);
  if (name === undefined) return fallback();
  let plugin = plugins.get(name);
  // As upstream, "utilization-detector" names its default instance when no plugin has that name.
  if (!plugin && name === 'utilization-detector') {
    plugin = utilizationDetector(name, { ...UPSTREAM_UTILIZATION_DEFAULTS }, 0);
    plugins.set(name, plugin);
  }
  if (!plugin) {
    if (!c.refused.has(name))
      c.problem(`${ref.path}.pluginRef`, `no plugin named "${name}" in plugins (defined: ${names(plugins)})`);
    return fallback();
  }
  if (!isSaturationDetector(plugin)) {
    c.problem(
      `${ref.path}.pluginRef`,
      `"${name}" (${plugin.type}) is not a saturation detector (utilization-detector, concurrency-detector)`,
    );
    return fallback();
  }
  return { thresholds: { ...plugin.thresholds }, detector: plugin };
}

const UPSTREAM_UTILIZATION_DEFAULTS: SaturationThresholds = {
  queueDepthThreshold: 5,
  kvCacheUtilThreshold: 0.8,
  metricsStalenessThresholdMs: 200,
};

const FLOW_CONTROL_FIELDS = [
  'maxBytes',
  'maxRequests',
  'defaultRequestTTL',
  'noEndpointRequestTTL',
  'defaultPriorityBand',
  'defaultNegativePriorityBand',
  'priorityBands',
  'usageLimitPolicyPluginRef',
  'saturationDetector',
  'enableEviction',
] as const;
const BAND_FIELDS = [
  'priority',
  'maxBytes',
  'maxRequests',
  'fairnessPolicyRef',
  'orderingPolicyRef',
] as const;

/** A Kubernetes resource quantity ("100", "1k", "1Gi", "500M") or a number. */
function isQuantity(v: unknown): boolean {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0;
  return typeof v === 'string' && /^\d+(\.\d+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.test(v.trim());
}

/** A Go duration ("60s", "1m30s", "0"; go-duration.ts), not negative, or a number of milliseconds. */
function isGoDuration(v: unknown): boolean {
  return parseDurationMs(v) !== undefined;
}

/**
 * `flowControl`: checked field by field. With the `flowControl` gate off only `saturationDetector` is acted on (as
 * upstream, the legacy shedding uses it too), so every other field set is a warning.
 */
function readFlowControl(raw: unknown, c: Checker, gateOn: boolean): Record<string, unknown> | undefined {
  const flow = c.mapping(raw, 'flowControl', FLOW_CONTROL_FIELDS);
  if (!flow) return undefined;
  const band = (value: unknown, path: string, needsPriority: boolean) => {
    const b = c.mapping(value, path, BAND_FIELDS);
    if (!b) return;
    if (b['priority'] !== undefined || needsPriority) {
      if (typeof b['priority'] !== 'number' || !Number.isInteger(b['priority']))
        c.problem(`${path}.priority`, 'must be an integer');
    }
    for (const k of ['maxBytes', 'maxRequests'] as const)
      if (b[k] !== undefined && !isQuantity(b[k]))
        c.problem(`${path}.${k}`, 'must be a quantity like "100", "1k" or "1Gi"');
    for (const k of ['fairnessPolicyRef', 'orderingPolicyRef'] as const) c.string(b[k], `${path}.${k}`);
  };
  for (const [key, value] of Object.entries(flow)) {
    if (value === undefined || value === null) continue;
    const path = `flowControl.${key}`;
    switch (key) {
      case 'maxBytes':
      case 'maxRequests':
        if (!isQuantity(value)) c.problem(path, 'must be a quantity like "100", "1k" or "1Gi"');
        break;
      case 'defaultRequestTTL':
      case 'noEndpointRequestTTL':
        if (!isGoDuration(value)) c.problem(path, 'must be a duration like "60s" or "1m30s"');
        break;
      case 'defaultPriorityBand':
      case 'defaultNegativePriorityBand':
        band(value, path, false);
        break;
      case 'priorityBands':
        c.list(value, path, 'priority bands').forEach((b, i) => band(b, `${path}[${i}]`, true));
        break;
      case 'usageLimitPolicyPluginRef':
        c.string(value, path);
        break;
      case 'enableEviction':
        if (typeof value !== 'boolean') c.problem(path, 'must be true or false');
        break;
    }
    if (key !== 'saturationDetector' && !gateOn)
      c.warn(
        path,
        'accepted, not acted on: the flowControl feature gate is off, so flow control (queueing by priority band and fairness) does not run',
      );
  }
  return flow;
}

/** GIE's older top-level thresholds (`saturationDetector: {queueDepthThreshold, …}`). */
function readSaturationThresholds(raw: unknown, c: Checker): SaturationThresholds {
  const t = { ...defaultSaturationThresholds };
  if (!isRecord(raw)) {
    c.problem('saturationDetector', "must be a mapping: {pluginRef} (or GIE's thresholds)");
    return t;
  }
  for (const [key, value] of Object.entries(raw)) {
    const path = `saturationDetector.${key}`;
    if (key === 'queueDepthThreshold') {
      if (typeof value === 'number' && Number.isInteger(value) && value >= 0) t.queueDepthThreshold = value;
      else c.problem(path, 'must be an integer ≥ 0');
    } else if (key === 'kvCacheUtilThreshold') {
      if (typeof value === 'number' && value >= 0 && value <= 1) t.kvCacheUtilThreshold = value;
      else c.problem(path, 'must be a number between 0 and 1');
    } else if (key === 'metricsStalenessThreshold') {
      const ms = parseDurationMs(value);
      if (ms === undefined) c.problem(path, 'must be a duration like "200ms" or "2s"');
      else t.metricsStalenessThresholdMs = ms;
    } else
      c.problem(
        path,
        "unknown field (known: pluginRef, or GIE's queueDepthThreshold, kvCacheUtilThreshold, metricsStalenessThreshold)",
      );
  }
  return t;
}

/**
 * `requestHandler.parsers` (or the deprecated top-level `parser`): only the OpenAI parser, which is what we do.
 * Returns `requestHandler.propagatePriority`.
 */
function readRequestHandler(
  doc: Record<string, unknown>,
  plugins: ReadonlyMap<string, Plugin>,
  c: Checker,
): boolean {
  const handler = c.mapping(doc['requestHandler'], 'requestHandler', ['parsers', 'propagatePriority']);
  const propagate = handler?.['propagatePriority'];
  if (propagate !== undefined && propagate !== null && typeof propagate !== 'boolean')
    c.problem('requestHandler.propagatePriority', 'must be true or false');
  const refs: { value: unknown; path: string }[] = c
    .list(handler?.['parsers'], 'requestHandler.parsers', '{pluginRef}')
    .map((value, i) => ({ value, path: `requestHandler.parsers[${i}]` }));
  if (doc['parser'] !== undefined && doc['parser'] !== null) {
    if (refs.length > 0) c.warn('parser', 'deprecated and ignored: requestHandler.parsers is set and wins');
    else {
      c.warn('parser', 'deprecated: move it to requestHandler.parsers');
      refs.push({ value: doc['parser'], path: 'parser' });
    }
  }
  for (const { value, path } of refs) {
    const spec = c.mapping(value, path, ['pluginRef']);
    const name = c.string(spec?.['pluginRef'], `${path}.pluginRef`, true);
    if (name === undefined) continue;
    const plugin = plugins.get(name);
    // As upstream, "openai-parser" names the default instance when no plugin has that name.
    if (!plugin && name === 'openai-parser') continue;
    if (!plugin) {
      if (!c.refused.has(name))
        c.problem(`${path}.pluginRef`, `no plugin named "${name}" in plugins (defined: ${names(plugins)})`);
    } else if (plugin.type !== 'openai-parser')
      c.problem(
        `${path}.pluginRef`,
        `"${name}" (${plugin.type}) is not a parser; this EPP has openai-parser`,
      );
  }
  return propagate === true;
}

/**
 * `dataLayer`: sources and extractors are checked and named in warnings; discovery plugins are not supported yet;
 * the cross-replica syncer is accepted and not acted on, since replicas do not share state. `v1` is `llm-d.ai/v1`'s
 * layout (`crossReplica.{syncerPluginRef, syncInterval, publishTimeout}`, discovery only as `discovery.endpoints`);
 * otherwise v1alpha1's (`crossReplicaSyncerPluginRef`, …, and also the older bare `discovery.pluginRef`).
 */
function readDataLayer(raw: unknown, plugins: ReadonlyMap<string, Plugin>, c: Checker, v1: boolean): void {
  const crossReplica = v1
    ? ['crossReplica']
    : ['crossReplicaSyncerPluginRef', 'crossReplicaSyncInterval', 'crossReplicaPublishTimeout'];
  const dl = c.mapping(raw, 'dataLayer', ['injectDefaults', 'sources', 'discovery', ...crossReplica]);
  if (!dl) return;
  if (dl['injectDefaults'] !== undefined && dl['injectDefaults'] !== null) {
    if (typeof dl['injectDefaults'] !== 'boolean')
      c.problem('dataLayer.injectDefaults', 'must be true or false');
    else if (!dl['injectDefaults'])
      c.warn('dataLayer.injectDefaults', 'accepted, not acted on: model-server metrics are always scraped');
  }
  c.list(dl['sources'], 'dataLayer.sources', '{pluginRef, extractors}').forEach((entry, i) => {
    const path = `dataLayer.sources[${i}]`;
    const source = c.mapping(entry, path, ['pluginRef', 'extractors']);
    if (!source) return;
    c.pluginRef({ pluginRef: source['pluginRef'] }, path, plugins);
    c.list(source['extractors'], `${path}.extractors`, '{pluginRef}').forEach((e, j) =>
      c.pluginRef(e, `${path}.extractors[${j}]`, plugins),
    );
  });
  readDiscovery(dl['discovery'], plugins, c, v1);
  if (v1) {
    const cr = c.mapping(dl['crossReplica'], 'dataLayer.crossReplica', [
      'syncerPluginRef',
      'syncInterval',
      'publishTimeout',
    ]);
    if (cr)
      readCrossReplica(
        cr,
        'dataLayer.crossReplica.',
        {
          syncer: 'syncerPluginRef',
          durations: ['syncInterval', 'publishTimeout'],
        },
        c,
      );
  } else
    readCrossReplica(
      dl,
      'dataLayer.',
      {
        syncer: 'crossReplicaSyncerPluginRef',
        durations: ['crossReplicaSyncInterval', 'crossReplicaPublishTimeout'],
      },
      c,
    );
}

/** `dataLayer.discovery`: `{endpoints: {pluginRef}, peers: {pluginRef}}`, and in v1alpha1 also the bare `{pluginRef}`. */
function readDiscovery(raw: unknown, plugins: ReadonlyMap<string, Plugin>, c: Checker, v1: boolean): void {
  if (raw === undefined || raw === null) return;
  const d = c.mapping(
    raw,
    'dataLayer.discovery',
    v1 ? ['endpoints', 'peers'] : ['endpoints', 'peers', 'pluginRef'],
  );
  if (!d) return;
  if ('endpoints' in d || (!v1 && 'pluginRef' in d)) {
    const path = 'endpoints' in d ? 'dataLayer.discovery.endpoints' : 'dataLayer.discovery';
    const plugin = c.pluginRef(
      'endpoints' in d ? d['endpoints'] : { pluginRef: d['pluginRef'] },
      path,
      plugins,
    );
    if (plugin)
      c.problem(
        `${path}.pluginRef`,
        `"${plugin.name}" (${plugin.type}) is not a discovery plugin; discovery plugins are not supported yet: give the endpoints with --endpoints (static) or --pool-name (Kubernetes)`,
      );
  }
  if (d['peers'] !== undefined && d['peers'] !== null) {
    const plugin = c.pluginRef(d['peers'], 'dataLayer.discovery.peers', plugins);
    if (plugin)
      c.problem(
        'dataLayer.discovery.peers.pluginRef',
        `"${plugin.name}" (${plugin.type}) is not a peer discovery plugin; EPP replicas do not discover each other here: each decides from its own scrapes and KV events`,
      );
  }
}

/** The cross-replica syncer's reference, interval and publish timeout under their v1alpha1 or v1 names. */
function readCrossReplica(
  fields: Record<string, unknown>,
  prefix: string,
  names: { syncer: string; durations: readonly string[] },
  c: Checker,
): void {
  const notActedOn = 'accepted, not acted on: replicas do not share state';
  const given = (key: string) => fields[key] !== undefined && fields[key] !== null;
  if (given(names.syncer)) {
    c.string(fields[names.syncer], `${prefix}${names.syncer}`);
    c.warn(`${prefix}${names.syncer}`, notActedOn);
  }
  for (const key of names.durations.filter(given)) {
    if (!isGoDuration(fields[key])) c.problem(`${prefix}${key}`, 'must be a duration like "1s"');
    c.warn(`${prefix}${key}`, notActedOn);
  }
}
