/**
 * @module epp/config
 * The EndpointPickerConfig file (`--config-file` / `--config-text`), in the format llm-d and GIE use:
 * `apiVersion` (`inference.networking.x-k8s.io/v1alpha1` or `llm-d.ai/v1alpha1`), `kind: EndpointPickerConfig`,
 * `plugins: [{type, name?, parameters?}]`, `schedulingProfiles: [{name, plugins: [{pluginRef, weight?}]}]` and an
 * optional `saturationDetector`. Every problem is reported at once, naming the plugin or field.
 */
import { parse as parseYaml } from 'yaml';
import { LlmisvcError, ValidationError, type FieldProblem } from '../errors/index.js';
import { createPlugin } from './plugins/index.js';
import { defaultSaturationThresholds, type SaturationThresholds } from './saturation.js';
import type { SchedulerPlugins } from './scheduler.js';
import {
  isFilter,
  isPicker,
  isPostResponse,
  isPreRequest,
  isProfileHandler,
  isScorer,
  type Filter,
  type Picker,
  type Plugin,
  type PostResponse,
  type PreRequest,
  type ProfileHandler,
  type Scorer,
  type SchedulingProfile,
} from './types.js';
import { maxScorePicker } from './plugins/max-score-picker.js';
import { singleProfileHandler } from './plugins/single-profile-handler.js';

export const ACCEPTED_API_VERSIONS = ['inference.networking.x-k8s.io/v1alpha1', 'llm-d.ai/v1alpha1'] as const;

export {
  defaultEndpointPickerConfig,
  prefillDecodeEndpointPickerConfig,
  weightedEndpointPickerConfig,
} from './default-configs.js';

/** A loaded config: the scheduler's plugins plus the saturation thresholds. */
export interface EndpointPickerConfig {
  readonly scheduler: SchedulerPlugins;
  readonly saturation: SaturationThresholds;
  /** Every plugin instance by name (for metrics and endpoint removal). */
  readonly plugins: ReadonlyMap<string, Plugin>;
}

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

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Builds the plugins from an already parsed document. */
export function buildEndpointPickerConfig(
  doc: unknown,
  source = 'EndpointPickerConfig',
): EndpointPickerConfig {
  const problems: FieldProblem[] = [];
  if (!isRecord(doc)) throw new ValidationError(source, [{ path: '', message: 'must be a YAML mapping' }]);
  const apiVersion = doc['apiVersion'];
  if (!ACCEPTED_API_VERSIONS.includes(apiVersion as (typeof ACCEPTED_API_VERSIONS)[number])) {
    problems.push({
      path: 'apiVersion',
      message: `must be one of ${ACCEPTED_API_VERSIONS.join(', ')}, got ${JSON.stringify(apiVersion)}`,
    });
  }
  if (doc['kind'] !== 'EndpointPickerConfig') {
    problems.push({
      path: 'kind',
      message: `must be EndpointPickerConfig, got ${JSON.stringify(doc['kind'])}`,
    });
  }
  const known = new Set([
    'apiVersion',
    'kind',
    'plugins',
    'schedulingProfiles',
    'saturationDetector',
    'featureGates',
    'data',
  ]);
  for (const key of Object.keys(doc)) {
    if (!known.has(key)) problems.push({ path: key, message: 'unknown field' });
  }

  const plugins = new Map<string, Plugin>();
  const rawPlugins = doc['plugins'];
  if (!Array.isArray(rawPlugins) || rawPlugins.length === 0) {
    problems.push({ path: 'plugins', message: 'must be a non-empty list of {type, name?, parameters?}' });
  } else {
    rawPlugins.forEach((raw, i) => {
      const path = `plugins[${i}]`;
      if (!isRecord(raw) || typeof raw['type'] !== 'string') {
        problems.push({ path, message: 'must have a string "type"' });
        return;
      }
      const type = raw['type'];
      const name = typeof raw['name'] === 'string' && raw['name'] !== '' ? raw['name'] : type;
      const parameters = raw['parameters'] ?? {};
      if (!isRecord(parameters)) {
        problems.push({ path: `${path}.parameters`, message: 'must be a mapping' });
        return;
      }
      if (plugins.has(name)) {
        problems.push({
          path: `${path}.name`,
          message: `plugin name "${name}" is used twice; give one a distinct name`,
        });
        return;
      }
      const plugin = createPlugin(type, name, parameters, path, problems);
      if (plugin) plugins.set(name, plugin);
    });
  }

  const profiles = new Map<string, SchedulingProfile>();
  const rawProfiles = doc['schedulingProfiles'];
  if (!Array.isArray(rawProfiles) || rawProfiles.length === 0) {
    problems.push({ path: 'schedulingProfiles', message: 'must be a non-empty list of {name, plugins}' });
  } else {
    rawProfiles.forEach((raw, i) => {
      const profile = buildProfile(raw, `schedulingProfiles[${i}]`, plugins, problems);
      if (!profile) return;
      if (profiles.has(profile.name)) {
        problems.push({
          path: `schedulingProfiles[${i}].name`,
          message: `profile "${profile.name}" is defined twice`,
        });
      } else profiles.set(profile.name, profile);
    });
  }

  const handlers = [...plugins.values()].filter(isProfileHandler);
  let handler: ProfileHandler;
  if (handlers.length > 1) {
    problems.push({
      path: 'plugins',
      message: `only one profile handler allowed, found ${handlers.map((h) => h.name).join(', ')}`,
    });
  }
  if (handlers[0]) handler = handlers[0];
  else {
    if (profiles.size > 1) {
      problems.push({
        path: 'plugins',
        message: 'several scheduling profiles need a profile handler plugin (e.g. pd-profile-handler)',
      });
    }
    handler = singleProfileHandler('single-profile-handler');
  }

  const saturation = readSaturation(doc['saturationDetector'], problems);
  if (problems.length > 0) throw new ValidationError(`EndpointPickerConfig (${source})`, problems);
  const all = [...plugins.values()];
  return {
    scheduler: {
      handler,
      profiles,
      preRequest: all.filter(isPreRequest) as PreRequest[],
      postResponse: all.filter(isPostResponse) as PostResponse[],
    },
    saturation,
    plugins,
  };
}

function buildProfile(
  raw: unknown,
  path: string,
  plugins: ReadonlyMap<string, Plugin>,
  problems: FieldProblem[],
): SchedulingProfile | undefined {
  if (!isRecord(raw) || typeof raw['name'] !== 'string' || raw['name'] === '') {
    problems.push({ path, message: 'must have a non-empty "name"' });
    return undefined;
  }
  const refs = raw['plugins'];
  if (!Array.isArray(refs)) {
    problems.push({ path: `${path}.plugins`, message: 'must be a list of {pluginRef, weight?}' });
    return undefined;
  }
  const filters: Filter[] = [];
  const scorers: { scorer: Scorer; weight: number }[] = [];
  let picker: Picker | undefined;
  refs.forEach((ref, j) => {
    const refPath = `${path}.plugins[${j}]`;
    if (!isRecord(ref) || typeof ref['pluginRef'] !== 'string') {
      problems.push({ path: refPath, message: 'must have a string "pluginRef"' });
      return;
    }
    const plugin = plugins.get(ref['pluginRef']);
    if (!plugin) {
      problems.push({
        path: `${refPath}.pluginRef`,
        message: `no plugin named "${ref['pluginRef']}" in plugins (defined: ${[...plugins.keys()].join(', ')})`,
      });
      return;
    }
    const weight = ref['weight'] ?? 1;
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0) {
      problems.push({
        path: `${refPath}.weight`,
        message: `must be a number ≥ 0, got ${JSON.stringify(weight)}`,
      });
      return;
    }
    let used = false;
    if (isFilter(plugin)) {
      filters.push(plugin);
      used = true;
    }
    if (isScorer(plugin)) {
      scorers.push({ scorer: plugin, weight });
      used = true;
    }
    if (isPicker(plugin)) {
      if (picker)
        problems.push({
          path: `${refPath}.pluginRef`,
          message: `a profile has one picker; "${picker.name}" is already set`,
        });
      picker = plugin;
      used = true;
    }
    if (!used) {
      problems.push({
        path: `${refPath}.pluginRef`,
        message: `"${plugin.name}" (${plugin.type}) is not a filter, scorer or picker; list it under plugins only`,
      });
    }
  });
  // Like GIE, a profile without a picker uses max-score.
  return {
    name: raw['name'],
    filters,
    scorers,
    picker: picker ?? maxScorePicker(`${raw['name']}-max-score-picker`),
  };
}

/** Reads "200ms", "2s", "1m" or a number of milliseconds. */
export function parseDurationMs(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  if (typeof value !== 'string') return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(value.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}

function readSaturation(raw: unknown, problems: FieldProblem[]): SaturationThresholds {
  const t = { ...defaultSaturationThresholds };
  if (raw === undefined || raw === null) return t;
  if (!isRecord(raw)) {
    problems.push({ path: 'saturationDetector', message: 'must be a mapping' });
    return t;
  }
  for (const [key, value] of Object.entries(raw)) {
    const path = `saturationDetector.${key}`;
    if (key === 'queueDepthThreshold') {
      if (typeof value === 'number' && Number.isInteger(value) && value >= 0) t.queueDepthThreshold = value;
      else problems.push({ path, message: 'must be an integer ≥ 0' });
    } else if (key === 'kvCacheUtilThreshold') {
      if (typeof value === 'number' && value >= 0 && value <= 1) t.kvCacheUtilThreshold = value;
      else problems.push({ path, message: 'must be a number between 0 and 1' });
    } else if (key === 'metricsStalenessThreshold') {
      const ms = parseDurationMs(value);
      if (ms === undefined) problems.push({ path, message: 'must be a duration like "200ms" or "2s"' });
      else t.metricsStalenessThresholdMs = ms;
    } else
      problems.push({
        path,
        message:
          'unknown field (known: queueDepthThreshold, kvCacheUtilThreshold, metricsStalenessThreshold)',
      });
  }
  return t;
}
