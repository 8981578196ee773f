/**
 * Error bodies in each vendor's documented shape:
 * - OpenAI:    {"error":{"message","type","param","code"}}
 * - Anthropic: {"type":"error","error":{"type","message"},"request_id"}; streams carry `event: error`
 * - Gemini:    {"error":{"code","message","status"}} (google.rpc.Status)
 */

export type Dialect = 'openai' | 'anthropic' | 'gemini';

function openaiType(status: number): { type: string; code: string | null } {
  if (status === 401) return { type: 'invalid_request_error', code: 'invalid_api_key' };
  if (status === 403) return { type: 'permission_error', code: null };
  if (status === 404) return { type: 'invalid_request_error', code: 'model_not_found' };
  if (status === 429) return { type: 'requests', code: 'rate_limit_exceeded' };
  if (status >= 500) return { type: 'server_error', code: null };
  return { type: 'invalid_request_error', code: null };
}

const ANTHROPIC_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  504: 'timeout_error',
  529: 'overloaded_error',
};

function anthropicType(status: number): string {
  return ANTHROPIC_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
}

const GEMINI_STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ABORTED',
  429: 'RESOURCE_EXHAUSTED',
  499: 'CANCELLED',
  500: 'INTERNAL',
  501: 'UNIMPLEMENTED',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

function geminiStatus(status: number): string {
  return GEMINI_STATUS[status] ?? (status >= 500 ? 'INTERNAL' : 'FAILED_PRECONDITION');
}

let requestCounter = 0;

export function errorBody(dialect: Dialect, status: number, message: string): string {
  if (dialect === 'anthropic') {
    const requestId = `req_emu${(++requestCounter).toString(36).padStart(8, '0')}`;
    return JSON.stringify({ type: 'error', error: { type: anthropicType(status), message }, request_id: requestId });
  }
  if (dialect === 'gemini') return JSON.stringify({ error: { code: status, message, status: geminiStatus(status) } });
  const { type, code } = openaiType(status);
  return JSON.stringify({ error: { message, type, param: null, code } });
}

export function injectedFailureMessage(status: number): string {
  if (status === 429) return 'Rate limit reached (injected by the TokenGrid emulator).';
  if (status === 529) return 'Overloaded (injected by the TokenGrid emulator).';
  return `Injected failure with status ${status} (TokenGrid emulator).`;
}

/**
 * The error a vendor sends inside an already-started stream (errorAfter directive): Anthropic's
 * documented `event: error` (overloaded_error), and for OpenAI and Gemini a data line carrying
 * their error object, after which the stream ends without its terminal event.
 */
export function streamErrorFrame(dialect: Dialect): string {
  if (dialect === 'anthropic') {
    const body = JSON.stringify({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
    return `event: error\ndata: ${body}\n\n`;
  }
  if (dialect === 'gemini') {
    return `data: ${JSON.stringify({ error: { code: 503, message: 'The model is overloaded.', status: 'UNAVAILABLE' } })}\r\n\r\n`;
  }
  const body = { error: { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null } };
  return `data: ${JSON.stringify(body)}\n\n`;
}

export const MALFORMED_FRAME = 'data: {not json\n\n';
