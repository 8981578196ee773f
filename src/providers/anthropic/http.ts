/**
 * The Anthropic Messages endpoint: URL, headers, and the error body's message. The POST itself, timeouts,
 * bounded reads and the error mapping are the shared transport (../transport).
 */
import type { Dispatcher } from 'undici';
import type { UpstreamCall } from '../types.ts';
import { bodyError as transportBodyError, postJson, readBody } from '../transport/index.ts';
import type { UpstreamError } from '../types.ts';

/** Pinned API version: the wire format this adapter is written against. */
export const ANTHROPIC_VERSION = '2023-06-01';
/** A non-streamed answer larger than this is treated as malformed (a limit on everything). */
export const RESPONSE_BYTES_MAX = 32 * 1024 * 1024;

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
export async function postMessages(
  call: UpstreamCall,
  body: Record<string, unknown>,
  isStream: boolean,
  clientHeaders: Record<string, string> = {},
): Promise<Dispatcher.ResponseData> {
  const headers: Record<string, string> = {
    'anthropic-version': clientHeaders['anthropic-version'] ?? ANTHROPIC_VERSION,
    'content-type': 'application/json',
    accept: isStream ? 'text/event-stream' : 'application/json',
  };
  if (clientHeaders['anthropic-beta'] !== undefined && clientHeaders['anthropic-beta'] !== '') headers['anthropic-beta'] = clientHeaders['anthropic-beta'];
  if (call.provider.apiKey !== undefined) headers['x-api-key'] = call.provider.apiKey;
  Object.assign(headers, call.provider.headers);
  return postJson(call, { url: messagesUrl(call.provider.baseUrl), headers, body: JSON.stringify(body), errorDetail: errorMessageOf });
}

/** Failure while reading a 2xx body (../transport/errors.ts). */
export function bodyError(call: UpstreamCall, e: unknown): UpstreamError {
  return transportBodyError(e, call);
}

/** Read a whole 2xx body as text, bounded by RESPONSE_BYTES_MAX ('malformed' beyond). */
export function readText(call: UpstreamCall, body: Dispatcher.ResponseData['body'], bytesMax = RESPONSE_BYTES_MAX): Promise<string> {
  return readBody(call, body, bytesMax);
}

/** The message inside {"type":"error","error":{"type":..,"message":..}} (undefined: not that shape). */
export function errorMessageOf(text: string): string | undefined {
  try {
    const parsed = JSON.parse(text) as { error?: { type?: unknown; message?: unknown } };
    const type = typeof parsed.error?.type === 'string' ? parsed.error.type : undefined;
    const message = typeof parsed.error?.message === 'string' ? parsed.error.message : undefined;
    if (message !== undefined) return type === undefined ? message : `${type}: ${message}`;
  } catch {
    // not JSON: fall through to the raw text
  }
  return undefined;
}
