/**
 * @module presets/template
 * The Go-template expressions KServe's presets and specs use in string fields, for example
 * `{{ ChildName .ObjectMeta.Name "-inference-pool" }}` or `{{ .Spec.Model.Name }}`. A deliberately small subset of
 * Go's text/template: field paths (`.A.B`, matched to JSON field names ignoring case, as Go's field names are the
 * JSON names capitalised), string (`"…"`, `` `…` ``) and number literals, the functions below, parentheses,
 * `if`/`else`/`end` blocks and the `{{-`/`-}}` trim markers. A path to a field the API does not have is an error
 * that names it; a field the API has but the object leaves unset renders as empty, as Go does for nil.
 */
import { LlmisvcError } from '../errors/index.js';
import { childName } from '../api/index.js';

/** Where a template may look things up; `known` says which keys exist at a path (undefined: any key). */
export interface TemplateScope {
  data: Record<string, unknown>;
  known: (path: readonly string[]) => readonly string[] | undefined;
}

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; expr: Expr; source: string }
  | { kind: 'if'; cond: Expr; then: Node[]; otherwise: Node[]; source: string };

type Expr =
  | { kind: 'path'; path: string[] }
  | { kind: 'literal'; value: string | number | boolean }
  | { kind: 'call'; name: string; args: Expr[] };

const FUNCTIONS: Record<string, (...args: unknown[]) => unknown> = {
  ChildName: (parent, suffix) => childName(print(parent), print(suffix)),
  or: (...args) => args.find(truthy) ?? args[args.length - 1],
  and: (...args) => args.find((a) => !truthy(a)) ?? args[args.length - 1],
  not: (value) => !truthy(value),
  eq: (a, b) => a === b,
  ne: (a, b) => a !== b,
  default: (fallback, value) => (truthy(value) ? value : fallback),
};

function truthy(value: unknown): boolean {
  if (value === undefined || value === null || value === false || value === 0 || value === '') return false;
  // A present object counts as set even when empty, as a non-nil pointer does in Go (`scheduler: {}` enables it).
  if (Array.isArray(value)) return value.length > 0;
  return true;
}

/** A template that cannot be parsed or rendered; `field` is where it was rendered, `action` the `{{ … }}` at fault. */
export class TemplateError extends LlmisvcError {
  constructor(
    readonly action: string,
    readonly field: string,
    readonly problem: string,
  ) {
    super('LLMISVC_ERR_TEMPLATE', `${field}: template "${action}" ${problem}`, {
      hint: 'template fields are .ObjectMeta (Name, Namespace, Labels, Annotations), .Spec (the merged spec) and .GlobalConfig',
    });
    this.name = 'TemplateError';
  }
}

function templateError(source: string, where: string, message: string): TemplateError {
  return new TemplateError(source, where, message);
}

/** Splits `a b "c d" (e f)` into tokens, keeping quoted strings and parentheses whole. */
function tokenize(expression: string, fail: (message: string) => never): string[] {
  const tokens: string[] = [];
  let i = 0;
  while (i < expression.length) {
    const c = expression[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '(' || c === ')') {
      tokens.push(c);
      i++;
    } else if (c === '"' || c === '`') {
      const end = expression.indexOf(c, i + 1);
      if (end < 0) fail(`has an unterminated string`);
      tokens.push(expression.slice(i, end + 1));
      i = end + 1;
    } else {
      let j = i;
      while (j < expression.length && !/[\s()]/.test(expression[j]!)) j++;
      tokens.push(expression.slice(i, j));
      i = j;
    }
  }
  return tokens;
}

function parseExpr(tokens: string[], fail: (message: string) => never): Expr {
  let position = 0;
  function term(): Expr {
    const token = tokens[position++];
    if (token === undefined) fail('ends where a value was expected');
    if (token === '(') {
      const inner = call();
      if (tokens[position++] !== ')') fail('has an unclosed "("');
      return inner;
    }
    if (token.startsWith('"')) {
      try {
        return { kind: 'literal', value: JSON.parse(token) as string };
      } catch {
        fail(`has a malformed string ${token}: use \\ for a backslash, or a raw string in backquotes`);
      }
    }
    if (token.startsWith('`')) return { kind: 'literal', value: token.slice(1, -1) };
    if (/^-?\d+(\.\d+)?$/.test(token)) return { kind: 'literal', value: Number(token) };
    if (token === 'true' || token === 'false') return { kind: 'literal', value: token === 'true' };
    if (token === '.') return { kind: 'path', path: [] };
    if (token.startsWith('.')) return { kind: 'path', path: token.slice(1).split('.') };
    fail(`uses "${token}", which is not a value; functions are ${Object.keys(FUNCTIONS).join(', ')}`);
  }
  function call(): Expr {
    const token = tokens[position];
    if (token !== undefined && FUNCTIONS[token]) {
      position++;
      const args: Expr[] = [];
      while (position < tokens.length && tokens[position] !== ')') args.push(term());
      return { kind: 'call', name: token, args };
    }
    if (token !== undefined && /^[A-Za-z]\w*$/.test(token) && !['true', 'false'].includes(token)) {
      fail(`calls unknown function "${token}"; functions are ${Object.keys(FUNCTIONS).join(', ')}`);
    }
    return term();
  }
  const expr = call();
  if (position < tokens.length) fail(`has unexpected "${tokens[position]}"`);
  return expr;
}

/** Parses a template string into nodes; `where` names the field for errors. */
function parseTemplate(text: string, where: string): Node[] {
  const root: Node[] = [];
  // `chained` frames come from `else if`: they end with the `end` of the `if` they continue.
  type Frame = { nodes: Node[]; node?: Extract<Node, { kind: 'if' }>; inElse: boolean; chained: boolean };
  const stack: Frame[] = [{ nodes: root, inElse: false, chained: false }];
  const pattern = /\{\{(-?)\s*([\s\S]*?)\s*(-?)\}\}/g;
  let last = 0;
  let trimNext = false;
  let match: RegExpExecArray | null;
  const top = () => stack[stack.length - 1]!;
  const pushText = (t: string) => {
    if (t) top().nodes.push({ kind: 'text', text: t });
  };
  while ((match = pattern.exec(text)) !== null) {
    const [source, trimLeft, body = '', trimRight] = match;
    let before = text.slice(last, match.index);
    if (trimNext) before = before.replace(/^\s+/, '');
    if (trimLeft) before = before.replace(/\s+$/, '');
    pushText(before);
    last = match.index + source.length;
    trimNext = trimRight === '-';
    const fail = (message: string): never => {
      throw templateError(source, where, message);
    };
    const words = body.trim();
    const openIf = (condition: string, chained: boolean) => {
      const node: Extract<Node, { kind: 'if' }> = {
        kind: 'if',
        cond: parseExpr(tokenize(condition, fail), fail),
        then: [],
        otherwise: [],
        source,
      };
      top().nodes.push(node);
      stack.push({ nodes: node.then, node, inElse: false, chained });
    };
    if (words.startsWith('if ')) {
      openIf(words.slice(3), false);
    } else if (words === 'else' || words.startsWith('else if ')) {
      const frame = top();
      if (!frame.node || frame.inElse) fail('has an "else" without a matching "if"');
      frame.nodes = frame.node!.otherwise;
      frame.inElse = true;
      if (words !== 'else') openIf(words.slice('else if '.length), true);
    } else if (words === 'end') {
      if (stack.length === 1) fail('has an "end" without a matching "if"');
      while (stack.pop()!.chained) {
        // an `else if` chain closes with the one `end` of its first `if`
      }
    } else if (words.startsWith('/*')) {
      // a template comment
    } else {
      top().nodes.push({ kind: 'action', expr: parseExpr(tokenize(words, fail), fail), source });
    }
  }
  let rest = text.slice(last);
  if (trimNext) rest = rest.replace(/^\s+/, '');
  pushText(rest);
  if (stack.length > 1) throw templateError(text, where, 'has an "if" without its "end"');
  return root;
}

function lookup(scope: TemplateScope, path: string[], source: string, where: string): unknown {
  let value: unknown = scope.data;
  const walked: string[] = [];
  for (const segment of path) {
    const known = scope.known(walked);
    const keys = known ?? (value !== null && typeof value === 'object' ? Object.keys(value) : []);
    const key = keys.find((k) => k.toLowerCase() === segment.toLowerCase());
    if (key === undefined) {
      if (known === undefined && (value === undefined || value === null)) return undefined;
      if (known !== undefined || value === undefined || value === null || typeof value !== 'object') {
        const at = walked.length ? `.${walked.join('.')}` : 'the template data';
        throw templateError(source, where, `refers to "${segment}", which ${at} does not have`);
      }
      return undefined;
    }
    walked.push(key);
    value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
  }
  return value;
}

function evaluate(expr: Expr, scope: TemplateScope, source: string, where: string): unknown {
  switch (expr.kind) {
    case 'literal':
      return expr.value;
    case 'path':
      return lookup(scope, expr.path, source, where);
    case 'call': {
      // `and` and `or` stop at the first argument that decides, as Go's do (1.18 on): what follows is not looked
      // up, so `{{ if and .GlobalConfig.EnableTLS .GlobalConfig.Newer }}` renders where EnableTLS is false.
      if (expr.name === 'and' || expr.name === 'or') {
        let value: unknown;
        for (const arg of expr.args) {
          value = evaluate(arg, scope, source, where);
          if (truthy(value) === (expr.name === 'or')) return value;
        }
        return value;
      }
      return FUNCTIONS[expr.name]!(...expr.args.map((a) => evaluate(a, scope, source, where)));
    }
  }
}

function print(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  return JSON.stringify(value) ?? '';
}

/**
 * Most bytes the actions of one spec may print, all strings together. Templates print names and short values (a
 * spec's real ones print well under a kilobyte); without a bound, a spec of a few thousand `{{ .Spec }}` strings
 * expands to gigabytes — one manifest would take the controller's memory for every tenant.
 */
export const TEMPLATE_OUTPUT_LIMIT = 1024 * 1024;

/** What is left to print, shared by every string of one `renderTemplates` call. */
interface Budget {
  left: number;
}

function run(nodes: Node[], scope: TemplateScope, where: string, budget: Budget): string {
  let out = '';
  for (const node of nodes) {
    if (node.kind === 'text') out += node.text;
    else if (node.kind === 'action') {
      const printed = print(evaluate(node.expr, scope, node.source, where));
      budget.left -= printed.length;
      if (budget.left < 0)
        throw templateError(
          node.source,
          where,
          `prints past ${TEMPLATE_OUTPUT_LIMIT} bytes of template output in this spec: templates may print names ` +
            'and short values, not whole objects over and over',
        );
      out += printed;
    } else
      out += run(
        truthy(evaluate(node.cond, scope, node.source, where)) ? node.then : node.otherwise,
        scope,
        where,
        budget,
      );
  }
  return out;
}

/** Renders one string; strings without `{{` come back as they are. */
export function renderString(
  text: string,
  scope: TemplateScope,
  where: string,
  budget: Budget = { left: TEMPLATE_OUTPUT_LIMIT },
): string {
  if (!text.includes('{{')) return text;
  try {
    return run(parseTemplate(text, where), scope, where, budget);
  } catch (error) {
    if (error instanceof TemplateError) throw error;
    // Anything else is a gap in this subset: still the user's template, named, never a raw error.
    throw templateError(text, where, `cannot be rendered: ${(error as Error).message}`);
  }
}

/**
 * Renders every string inside a value (objects and lists, recursively) and returns the rendered copy; all of its
 * strings together print at most TEMPLATE_OUTPUT_LIMIT bytes. `path` names the value in error messages, for
 * example `spec`.
 */
export function renderTemplates<T>(
  value: T,
  scope: TemplateScope,
  path: string,
  budget: Budget = { left: TEMPLATE_OUTPUT_LIMIT },
): T {
  if (typeof value === 'string') return renderString(value, scope, path, budget) as T;
  if (Array.isArray(value))
    return value.map((item, i) => renderTemplates(item, scope, `${path}[${i}]`, budget)) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [
        key,
        renderTemplates(item, scope, `${path}.${key}`, budget),
      ]),
    ) as T;
  }
  return value;
}
