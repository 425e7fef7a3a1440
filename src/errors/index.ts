/**
 * @module errors
 * The one catalogue of user-facing errors. Each has a stable code (like undici's `UND_ERR_*`), a message that names
 * the field or object and what is wrong, and a hint that says what to do. The CLI prints `code`, message and hint
 * without a stack trace; `--verbose` adds the stack.
 */

/** Stable error codes; never rename one, only add. */
export type ErrorCode =
  | 'LLMISVC_ERR_INPUT' // a file or flag could not be read or parsed
  | 'LLMISVC_ERR_INVALID' // an object failed validation (see `problems`)
  | 'LLMISVC_ERR_NOT_FOUND' // a referenced object (config, preset) does not exist
  | 'LLMISVC_ERR_TEMPLATE' // a template expression could not be rendered
  | 'LLMISVC_ERR_CONFIG' // a configuration file or flag value is wrong
  | 'LLMISVC_ERR_DEPENDENCY' // a required external component is missing
  | 'LLMISVC_ERR_KUBE' // the Kubernetes API answered with an error
  | 'LLMISVC_ERR_PROCESS'; // a child process failed to start or died

/** One problem with a field, as `<path>: <message>`. */
export interface FieldProblem {
  /** A JSON-path-like location, for example `spec.parallelism.dataLocal`. */
  path: string;
  message: string;
}

export class LlmisvcError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LlmisvcError';
    this.code = code;
    this.hint = options.hint;
  }
}

/** A validation failure that carries every problem found, not just the first. */
export class ValidationError extends LlmisvcError {
  readonly problems: readonly FieldProblem[];

  constructor(subject: string, problems: readonly FieldProblem[]) {
    super(
      'LLMISVC_ERR_INVALID',
      `${subject} is invalid:\n${problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`,
    );
    this.name = 'ValidationError';
    this.problems = problems;
  }
}

export function formatProblem(problem: FieldProblem): string {
  return problem.path ? `${problem.path}: ${problem.message}` : problem.message;
}

export function isLlmisvcError(error: unknown): error is LlmisvcError {
  return error instanceof LlmisvcError;
}
