/**
 * One POST to an Anthropic-speaking upstream through the shared undici dispatcher, with every failure
 * turned into an UpstreamError (adapters never retry; the gateway decides from `kind` and `status`).
 */
import { request, type Dispatcher } from 'undici';
import { UpstreamError, type UpstreamCall } from '../types.ts';

/** Pinned API version: the wire format this adapter is written against. */
export const ANTHROPIC_VERSION = '2023-06-01';
/** A non-streamed answer larger than this is treated as malformed (a limit on everything). */
export const RESPONSE_BYTES_MAX = 32 * 1024 * 1024;
/** How much of an error body is kept for logs. */
export const ERROR_BODY_CHARS_MAX = 4096;

export function messagesUrl(baseUrl: string): string {
  const trimmed = baseUrl.replace(/\/+$/, '');
  // Accept both https://api.anthropic.com and https://proxy.example/v1 as configured base URLs.
  return trimmed.endsWith('/v1') ? `${trimmed}/messages` : `${trimmed}/v1/messages`;
}

/**
 * `clientHeaders`: the Anthropic client's own anthropic-version and anthropic-beta (only those), so the
 * betas it relies on (prompt caching scope, interleaved thinking, context management, ...) reach the
 * upstream; the provider's configured headers still win.
 */
export async function postMessages(call: UpstreamCall, body: Record<string, unknown>, isStream: boolean, clientHeaders: Record<string, string> = {}): Promise<Dispatcher.ResponseData> {
  const headers: Record<string, string> = {
    'anthropic-version': clientHeaders['anthropic-version'] ?? ANTHROPIC_VERSION,
    'content-type': 'application/json',
    accept: isStream ? 'text/event-stream' : 'application/json',
  };
  if (clientHeaders['anthropic-beta'] !== undefined && clientHeaders['anthropic-beta'] !== '') headers['anthropic-beta'] = clientHeaders['anthropic-beta'];
  if (call.provider.apiKey !== undefined) headers['x-api-key'] = call.provider.apiKey;
  Object.assign(headers, call.provider.headers);
  let res: Dispatcher.ResponseData;
  try {
    res = await request(messagesUrl(call.provider.baseUrl), {
      method: 'POST',
      dispatcher: call.dispatcher,
      headers,
      body: JSON.stringify(body),
      signal: call.signal as AbortSignal, // a CallSignal: what undici uses of an AbortSignal
      headersTimeout: call.timeoutMsHeaders,
      bodyTimeout: call.timeoutMsBody,
    });
  } catch (e) {
    throw requestError(call, e);
  }
  if (res.statusCode < 200 || res.statusCode > 299) throw await statusError(call, res);
  return res;
}

function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Failure before response headers: abort, timeout, or could not connect. */
export function requestError(call: UpstreamCall, e: unknown): UpstreamError {
  if (e instanceof UpstreamError) return e;
  if (call.signal.aborted) return new UpstreamError('aborted', 'upstream request aborted');
  const code = errorCode(e);
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new UpstreamError('timeout', `anthropic upstream timed out: ${describe(e)}`);
  }
  return new UpstreamError('connect', `anthropic upstream unreachable: ${code ?? describe(e)}`);
}

/** Failure while reading a 2xx body: abort, timeout, or the connection dropped mid-body. */
export function bodyError(call: UpstreamCall, e: unknown): UpstreamError {
  if (e instanceof UpstreamError) return e;
  if (call.signal.aborted) return new UpstreamError('aborted', 'upstream request aborted');
  if (errorCode(e) === 'UND_ERR_BODY_TIMEOUT') return new UpstreamError('timeout', `anthropic upstream body timed out: ${describe(e)}`);
  return new UpstreamError('disconnect', `anthropic upstream connection lost: ${errorCode(e) ?? describe(e)}`);
}

/** Read a whole body as text, bounded by RESPONSE_BYTES_MAX. */
export async function readText(call: UpstreamCall, body: Dispatcher.ResponseData['body'], bytesMax = RESPONSE_BYTES_MAX): Promise<string> {
  const decoder = new TextDecoder();
  let text = '';
  let bytes = 0;
  try {
    for await (const chunk of body as AsyncIterable<Uint8Array>) {
      bytes += chunk.byteLength;
      if (bytes > bytesMax) {
        body.destroy();
        throw new UpstreamError('malformed', `anthropic upstream answer exceeds ${bytesMax} bytes`);
      }
      text += decoder.decode(chunk, { stream: true });
    }
  } catch (e) {
    throw bodyError(call, e);
  }
  return text + decoder.decode();
}

/** A non-2xx answer: consume the body (keeps the connection reusable) and keep its start for logs. */
async function statusError(call: UpstreamCall, res: Dispatcher.ResponseData): Promise<UpstreamError> {
  let text = '';
  try {
    text = await readText(call, res.body, 1024 * 1024);
  } catch {
    if (call.signal.aborted) return new UpstreamError('aborted', 'upstream request aborted');
    // The status is what matters; a broken error body still is that status.
  }
  const kept = text.slice(0, ERROR_BODY_CHARS_MAX);
  return new UpstreamError('status', `anthropic upstream answered ${res.statusCode}: ${errorMessageOf(kept)}`, res.statusCode, kept);
}

/** The message inside {"type":"error","error":{"type":..,"message":..}}, or the raw text start. */
export function errorMessageOf(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: { type?: unknown; message?: unknown } };
    const type = typeof parsed.error?.type === 'string' ? parsed.error.type : undefined;
    const message = typeof parsed.error?.message === 'string' ? parsed.error.message : undefined;
    if (message !== undefined) return type === undefined ? message : `${type}: ${message}`;
  } catch {
    // not JSON: fall through to the raw text
  }
  return text.slice(0, 200) || '(empty body)';
}
