/**
 * @module transport/json-shape
 * A linear pass over a JSON request body before `JSON.parse`, refusing shapes no OpenAI request has: nesting past
 * MAX_JSON_DEPTH or more than MAX_JSON_CONTAINERS arrays and objects. Every server that parses OpenAI bodies from
 * anyone who can reach it runs it first: the EPP, the builtin gateway's body router and the simulator. `JSON.parse`
 * itself copes with any depth, but what walks the result recursively (`Array.prototype.join`, `JSON.stringify`,
 * `structuredClone`) overflows the stack past a few thousand levels, and millions of tiny containers take seconds to
 * build — on the event loop that also relays every other request's tokens (a 15 MB body of `[[[…` held the builtin
 * gateway for 4.5 s, and 5 million `[]` in a prompt held the simulator for 1.4 s and 450 MB).
 */

/** Deepest nesting accepted: a tool's JSON schema inside a chat request is the deepest real case, a few dozen. */
export const MAX_JSON_DEPTH = 128;
/** Most arrays and objects: thousands of messages with content parts, or a batch of token-id prompts, fit easily. */
export const MAX_JSON_CONTAINERS = 200_000;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;

/**
 * Why the body's shape is refused, or undefined. Only structure outside strings counts; malformed JSON is left for
 * `JSON.parse` to report.
 * @example jsonShapeProblem(Buffer.from('{"a":[[1]]}')) // → undefined
 */
export function jsonShapeProblem(
  body: Uint8Array,
  limits: { maxDepth: number; maxContainers: number } = {
    maxDepth: MAX_JSON_DEPTH,
    maxContainers: MAX_JSON_CONTAINERS,
  },
): string | undefined {
  let depth = 0;
  let containers = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const byte = body[i]!;
    if (inString) {
      if (byte === BACKSLASH) i++;
      else if (byte === QUOTE) inString = false;
      continue;
    }
    if (byte === QUOTE) inString = true;
    else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      if (++depth > limits.maxDepth)
        return `request body nests arrays and objects deeper than ${limits.maxDepth} levels`;
      if (++containers > limits.maxContainers)
        return `request body has more than ${limits.maxContainers} arrays and objects`;
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) depth--;
  }
  return undefined;
}
