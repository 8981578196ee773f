/**
 * Anthropic error shapes: {"type":"error","error":{"type":"<anthropicType>","message":"..."}}, both as
 * an HTTP body and, once streaming has started (status 200 already sent), as an SSE `error` event.
 */
import { ERROR_CODES, type ErrorCode } from '../../core/index.ts';
import { sseFrame } from '../sse.ts';

export interface AnthropicErrorBody {
  type: 'error';
  error: { type: string; message: string };
}

export function anthropicErrorBody(code: ErrorCode, message: string): AnthropicErrorBody {
  return { type: 'error', error: { type: ERROR_CODES[code].anthropicType, message } };
}

export function anthropicStreamErrorFrame(code: ErrorCode, message: string): string {
  return sseFrame(JSON.stringify(anthropicErrorBody(code, message)), 'error');
}
