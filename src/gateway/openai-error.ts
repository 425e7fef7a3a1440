/**
 * @module gateway/openai-error
 * The JSON error body the gateways answer with themselves (no route, body refused, no backend), in OpenAI's shape
 * so clients of the OpenAI API read it as they read the model server's own errors.
 */

/** `{"error": {message, type, param: null, code}}` */
export function openAiErrorJson(status: number, message: string, type: string): string {
  return JSON.stringify({ error: { message, type, param: null, code: status } });
}
