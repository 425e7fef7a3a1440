/**
 * @module api/documents
 * Reading LLMInferenceService and LLMInferenceServiceConfig objects from YAML or JSON text: multi-document streams,
 * `List` objects, version checks, every problem reported with the document it came from, and conversion of
 * v1alpha1 input to the stored v1alpha2.
 */
import { parseAllDocuments } from 'yaml';
import { type FieldProblem, LlmisvcError, ValidationError } from '../errors/index.js';
import { convertObject, versionOf } from './convert.js';
import { nestingProblem } from './nesting.js';
import {
  GROUP,
  KINDS,
  type Kind,
  type LLMInferenceService,
  type LLMInferenceServiceConfig,
} from './schema.js';
import { nameProblems, ownSpecProblems, semanticProblems, structuralProblems } from './validate.js';

/** A raw Kubernetes object read from a file, with where it came from (for messages). */
export interface SourcedObject {
  object: Record<string, unknown>;
  /** For example `service.yaml (document 2)`. */
  source: string;
}

/**
 * Parses YAML (or JSON) text holding one or more documents; `List` objects are flattened. Empty documents are
 * skipped. Throws LLMISVC_ERR_INPUT with the line and column of a syntax error.
 */
export function parseDocuments(text: string, file: string): SourcedObject[] {
  const documents = parseAllDocuments(text, { prettyErrors: true });
  const out: SourcedObject[] = [];
  const list = Array.isArray(documents) ? documents : [documents];
  list.forEach((document, index) => {
    const source = list.length > 1 ? `${file} (document ${index + 1})` : file;
    const error = document.errors[0];
    if (error) {
      const at = error.linePos?.[0];
      throw new LlmisvcError(
        'LLMISVC_ERR_INPUT',
        `${file}${at ? `:${at.line}:${at.col}` : ''} is not valid YAML: ${error.message.split('\n')[0]}`,
        { hint: 'check the indentation and quoting around that line' },
      );
    }
    let value: unknown;
    try {
      value = document.toJS();
    } catch (error) {
      // The yaml library refuses to expand an alias bomb ("billion laughs") here, with a bare ReferenceError.
      throw new LlmisvcError(
        'LLMISVC_ERR_INPUT',
        `${source} is not valid YAML: ${(error as Error).message.split('\n')[0]}`,
        { hint: 'YAML aliases (*name) may repeat an anchor only a bounded number of times' },
      );
    }
    if (value === null || value === undefined) return;
    if (typeof value !== 'object' || Array.isArray(value)) {
      throw new LlmisvcError(
        'LLMISVC_ERR_INPUT',
        `${source} is not a Kubernetes object (a mapping with apiVersion and kind)`,
      );
    }
    const object = value as Record<string, unknown>;
    if (
      typeof object['kind'] === 'string' &&
      object['kind'].endsWith('List') &&
      Array.isArray(object['items'])
    ) {
      object['items'].forEach((item, i) =>
        out.push({ object: item as Record<string, unknown>, source: `${source} item ${i + 1}` }),
      );
    } else {
      out.push({ object, source });
    }
  });
  return out;
}

function describe(object: Record<string, unknown>, source: string): string {
  const kind = typeof object['kind'] === 'string' ? object['kind'] : 'object';
  const metadata = (object['metadata'] ?? {}) as Record<string, unknown>;
  const name = typeof metadata['name'] === 'string' ? `"${metadata['name']}"` : '(unnamed)';
  return `${kind} ${name} in ${source}`;
}

/** Problems with apiVersion, kind, metadata and the spec's structure, in the object's own version. */
export function objectProblems(object: Record<string, unknown>): FieldProblem[] {
  // First, alone: every check below walks the object recursively.
  const tooDeep = nestingProblem(object, '');
  if (tooDeep) return [tooDeep];
  const problems: FieldProblem[] = [];
  const version = versionOf(object['apiVersion']);
  if (version === undefined) {
    problems.push({
      path: 'apiVersion',
      message: `must be ${GROUP}/v1alpha2 (or ${GROUP}/v1alpha1), not ${JSON.stringify(object['apiVersion'] ?? null)}`,
    });
  }
  if (!KINDS.includes(object['kind'] as Kind)) {
    problems.push({
      path: 'kind',
      message: `must be LLMInferenceService or LLMInferenceServiceConfig, not ${JSON.stringify(object['kind'] ?? null)}`,
    });
  }
  const metadata = object['metadata'];
  if (metadata === null || typeof metadata !== 'object') {
    problems.push({ path: 'metadata', message: 'is required, with at least a name' });
  } else {
    problems.push(...nameProblems((metadata as Record<string, unknown>)['name']));
  }
  const spec = object['spec'] ?? {};
  problems.push(...structuralProblems(spec, version ?? 'v1alpha2'));
  return problems;
}

/**
 * Checks and converts one object to v1alpha2. For services the webhook's cross-field rules run too.
 * Throws a ValidationError listing every problem.
 */
export function toTypedObject({
  object,
  source,
}: SourcedObject): LLMInferenceService | LLMInferenceServiceConfig {
  const problems = objectProblems(object);
  if (problems.length > 0) throw new ValidationError(describe(object, source), problems);
  const converted = convertObject({ ...object, spec: object['spec'] ?? {} }, 'v1alpha2') as unknown as
    LLMInferenceService | LLMInferenceServiceConfig;
  if (converted.kind === 'LLMInferenceService') {
    const semantic = serviceRuleProblems(converted);
    if (semantic.length > 0) throw new ValidationError(describe(object, source), semantic);
  }
  return converted;
}

/** Every problem of one object (structure and rules), without throwing: what the validating webhook reports. */
export function validateObject(object: Record<string, unknown>): FieldProblem[] {
  const problems = objectProblems(object);
  if (problems.length > 0 || object['kind'] !== 'LLMInferenceService') return problems;
  const converted = convertObject(
    { ...object, spec: object['spec'] ?? {} },
    'v1alpha2',
  ) as unknown as LLMInferenceService;
  return serviceRuleProblems(converted);
}

function serviceRuleProblems(service: LLMInferenceService): FieldProblem[] {
  return [...semanticProblems(service.spec, service.metadata.name), ...ownSpecProblems(service.spec)];
}
