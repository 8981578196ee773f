import { request, type Dispatcher } from 'undici';
import { UpstreamError, type UpstreamCall } from '../types.ts';
import type { GeminiErrorBody } from './wire-types.ts';

/** Error bodies are read for the log line only; a misbehaving upstream cannot make us buffer more. */
export const BYTES_MAX_ERROR_BODY = 64 * 1024;

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

function errorCode(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Maps a transport failure. `phase` says whether a response had started: a broken socket before the
 * headers is a connect failure (safe to retry elsewhere), after it a disconnect.
 */
export function toUpstreamError(e: unknown, call: UpstreamCall, phase: 'connect' | 'body'): UpstreamError {
  if (e instanceof UpstreamError) return e;
  if (call.signal.aborted) return new UpstreamError('aborted', 'request aborted by the gateway');
  const code = errorCode(e);
  if (code !== undefined && TIMEOUT_CODES.has(code)) return new UpstreamError('timeout', `gemini: ${errorMessage(e)}`);
  return new UpstreamError(phase === 'connect' ? 'connect' : 'disconnect', `gemini: ${errorMessage(e)}`);
}

/** `{baseUrl}/v1beta/models/{model}:{method}`; a baseUrl that already names the API version keeps it. */
export function methodUrl(baseUrl: string, model: string, method: string, query = ''): string {
  const base = baseUrl.replace(/\/+$/, '');
  const versioned = /\/v1(alpha|beta)?\d*$/.test(base) ? base : `${base}/v1beta`;
  const name = model.startsWith('models/') ? model.slice('models/'.length) : model;
  return `${versioned}/models/${encodeURIComponent(name)}:${method}${query}`;
}

export async function postJson(call: UpstreamCall, url: string, body: unknown, accept: string): Promise<Dispatcher.ResponseData> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept };
  for (const [k, v] of Object.entries(call.provider.headers ?? {})) headers[k.toLowerCase()] = v;
  if (call.provider.apiKey !== undefined) headers['x-goog-api-key'] = call.provider.apiKey;
  try {
    return await request(url, {
      method: 'POST',
      dispatcher: call.dispatcher,
      headers,
      body: JSON.stringify(body),
      signal: call.signal as AbortSignal, // a CallSignal: what undici uses of an AbortSignal
      headersTimeout: call.timeoutMsHeaders,
      bodyTimeout: call.timeoutMsBody,
    });
  } catch (e) {
    throw toUpstreamError(e, call, 'connect');
  }
}

/** Reads the body up to `bytesMax` bytes; the rest is discarded and the socket given up. */
export async function readText(res: Dispatcher.ResponseData, call: UpstreamCall, bytesMax: number): Promise<{ text: string; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body) {
      const buf = chunk as Buffer;
      if (size + buf.length > bytesMax) {
        chunks.push(buf.subarray(0, bytesMax - size));
        res.body.destroy();
        return { text: Buffer.concat(chunks).toString('utf8'), truncated: true };
      }
      chunks.push(buf);
      size += buf.length;
    }
  } catch (e) {
    throw toUpstreamError(e, call, 'body');
  }
  return { text: Buffer.concat(chunks).toString('utf8'), truncated: false };
}

/** A non-2xx answer: the body is consumed (so the connection can be reused) and kept for logs. */
export async function statusError(res: Dispatcher.ResponseData, call: UpstreamCall): Promise<UpstreamError> {
  let text = '';
  try {
    text = (await readText(res, call, BYTES_MAX_ERROR_BODY)).text;
  } catch (e) {
    if (e instanceof UpstreamError && e.kind === 'aborted') return e;
    // The status is what matters; a body that breaks off does not change it.
  }
  let detail = '';
  try {
    const parsed = JSON.parse(text) as GeminiErrorBody;
    const err = parsed.error;
    if (err !== undefined && err !== null) detail = `${err.status ?? ''} ${err.message ?? ''}`.trim();
  } catch { /* not JSON: keep the status alone */ }
  const message = detail === '' ? `gemini answered ${res.statusCode}` : `gemini answered ${res.statusCode}: ${detail}`;
  return new UpstreamError('status', message, res.statusCode, text);
}

/** A 2xx body that must be a JSON object; anything else is the upstream's fault ('malformed'). */
export function parseJsonObject(text: string, what: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UpstreamError('malformed', `gemini ${what} is not JSON`, undefined, text.slice(0, 1024));
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UpstreamError('malformed', `gemini ${what} is not a JSON object`, undefined, text.slice(0, 1024));
  }
  return parsed as Record<string, unknown>;
}
