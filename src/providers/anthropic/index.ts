/**
 * Anthropic upstream adapter (outbound). Canonical -> Anthropic mapping decisions are documented in
 * build-request.ts; usage mapping (tokensInput = input + cache reads + cache writes) in parse-response.ts.
 */
export { createAnthropicAdapter } from './adapter.ts';
export { buildMessagesBody, MAX_TOKENS_DEFAULT } from './build-request.ts';
export { ANTHROPIC_VERSION, messagesUrl } from './http.ts';
export { AnthropicEventMapper } from './stream-reader.ts';
export { finishReasonOf, usageOf } from './parse-response.ts';
