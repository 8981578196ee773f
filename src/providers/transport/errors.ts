/**
 * The one mapping of transport failures to UpstreamError, shared by every adapter (openai-compatible,
 * anthropic, gemini). Which kind a failure is depends only on how far the response got:
 *
 * | when                          | caller's signal aborted | headers/body timeout | HTTP parser error | anything else |
 * |-------------------------------|-------------------------|----------------------|-------------------|---------------|
 * | before response headers       | aborted                 | timeout              | malformed         | connect       |
 * | reading a 2xx body            | aborted                 | timeout (body)       | malformed         | disconnect    |
 * | non-2xx status                | status (status code, bounded body, the upstream's message when the adapter can read it) |
 *
 * A connect timeout (UND_ERR_CONNECT_TIMEOUT) is 'connect': no connection was made.
 */
import { UpstreamError, type UpstreamCall } from '../types.ts';

/** Error bodies are kept for logs only; past this size the rest is not worth reading (the connection is closed). */
export const ERROR_BODY_BYTES_MAX = 64 * 1024;

/** The upstream's own message inside an error body, in the adapter's dialect (undefined: not found). */
export type ErrorDetail = (text: string) => string | undefined;

export function errorCode(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * undici's HTTPParserError. Its `code` should be HPE_*, but undici 7 looks the llhttp error up by number in
 * a table keyed by name, so the code is usually undefined: the name is what can be relied on.
 */
function isParserError(e: unknown, code: string | undefined): boolean {
  return code?.startsWith('HPE_') === true || (e instanceof Error && e.name === 'HTTPParserError');
}

/** The caller's signal was already aborted, or fired before the response started. */
export function abortedError(call: UpstreamCall): UpstreamError {
  return new UpstreamError('aborted', `request to ${call.provider.name} aborted by the caller`);
}

/** A failure before response headers: the caller's abort, a timeout, a broken HTTP answer, or no connection. */
export function requestError(e: unknown, call: UpstreamCall): UpstreamError {
  if (e instanceof UpstreamError) return e;
  const name = call.provider.name;
  if (call.signal.aborted) return abortedError(call);
  const code = errorCode(e);
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return new UpstreamError('timeout', `${name} sent no response headers within ${call.timeoutMsHeaders} ms`);
  if (code === 'UND_ERR_BODY_TIMEOUT') return new UpstreamError('timeout', `${name} sent no body bytes within ${call.timeoutMsBody} ms`);
  if (isParserError(e, code)) return new UpstreamError('malformed', `${name} sent an unparseable HTTP response: ${errorMessage(e)}`);
  return new UpstreamError('connect', `could not reach ${name}: ${code ?? ''} ${errorMessage(e)}`.replace('  ', ' '));
}

/** A failure while reading a 2xx body: the response was cut short. */
export function bodyError(e: unknown, call: UpstreamCall): UpstreamError {
  if (e instanceof UpstreamError) return e;
  const name = call.provider.name;
  if (call.signal.aborted) return new UpstreamError('aborted', `response from ${name} aborted by the caller`);
  const code = errorCode(e);
  if (code === 'UND_ERR_BODY_TIMEOUT') return new UpstreamError('timeout', `${name} sent no body bytes within ${call.timeoutMsBody} ms`);
  if (isParserError(e, code)) return new UpstreamError('malformed', `${name} sent an unparseable HTTP response: ${errorMessage(e)}`);
  return new UpstreamError('disconnect', `connection to ${name} broke mid-response: ${code ?? ''} ${errorMessage(e)}`.replace('  ', ' '));
}

/** A non-2xx answer, with its (bounded) body for the logs and the upstream's message when `detail` finds one. */
export function statusError(call: UpstreamCall, statusCode: number, text: string, detail?: ErrorDetail): UpstreamError {
  let message: string | undefined;
  try {
    message = detail?.(text);
  } catch {
    message = undefined;
  }
  const shown = (message ?? text.slice(0, 500)) || '(empty body)';
  return new UpstreamError('status', `${call.provider.name} answered ${statusCode}: ${shown.slice(0, 500)}`, statusCode, text);
}

/** A body over its limit: the upstream's fault, never buffered further. */
export function tooLargeError(call: UpstreamCall, bytesMax: number): UpstreamError {
  return new UpstreamError('malformed', `${call.provider.name} answered more than ${bytesMax} bytes`);
}
