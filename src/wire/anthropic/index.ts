/**
 * Anthropic Messages API codec, inbound side: what TokenGrid receives from Anthropic clients and
 * what it sends back. Pure: no I/O, no clock.
 *
 * Canonical mapping decisions:
 * - top-level `system` -> a leading role 'system' message (one text part per system block);
 * - tool_result blocks -> one role 'tool' message each, placed before the rest of that user turn
 *   (images inside a tool_result move to that user turn); tool_use -> tool_call parts with
 *   argumentsJson = JSON.stringify(input);
 * - tool_choice any -> 'required', tool -> {name}, disable_parallel_tool_use -> parallelToolCalls false;
 * - stop_sequences -> stop, metadata.user_id -> user, unmodelled fields (thinking, service_tier, ...) -> extra;
 * - thinking blocks in assistant history are dropped; server tools and document blocks are refused;
 * - responses never report stop_sequence (the canonical finish reason cannot tell it from end_turn).
 */
export { decodeMessagesRequest, decodeCountTokensRequest } from './decode-request.ts';
export {
  encodeMessagesResponse,
  encodeCountTokensResponse,
  anthropicStopReason,
  anthropicUsage,
  parseToolInput,
  type AnthropicStopReason,
  type AnthropicUsage,
} from './encode-response.ts';
export { AnthropicStreamEncoder, type AnthropicStreamEncoderOptions } from './stream-encoder.ts';
export { anthropicErrorBody, anthropicStreamErrorFrame, type AnthropicErrorBody } from './errors.ts';
