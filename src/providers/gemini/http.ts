import type { Dispatcher } from 'undici';
import { UpstreamError, type UpstreamCall } from '../types.ts';
import { bodyError, postJson as transportPost, readBody, requestError } from '../transport/index.ts';
import type { GeminiErrorBody } from './wire-types.ts';

/**
 * Maps a transport failure (../transport/errors.ts). `phase` says whether a response had started: a broken
 * socket before the headers is a connect failure (safe to retry elsewhere), after it a disconnect.
 */
export function toUpstreamError(e: unknown, call: UpstreamCall, phase: 'connect' | 'body'): UpstreamError {
  return phase === 'connect' ? requestError(e, call) : bodyError(e, call);
}

/** `{baseUrl}/v1beta/models/{model}:{method}`; a baseUrl that already names the API version keeps it. */
export function methodUrl(baseUrl: string, model: string, method: string, query = ''): string {
  const base = baseUrl.replace(/\/+$/, '');
  const versioned = /\/v1(alpha|beta)?\d*$/.test(base) ? base : `${base}/v1beta`;
  const name = model.startsWith('models/') ? model.slice('models/'.length) : model;
  return `${versioned}/models/${encodeURIComponent(name)}:${method}${query}`;
}

/** POST to a Gemini method; resolves with a 2xx response, rejects with UpstreamError (a non-2xx is 'status'). */
export function postJson(call: UpstreamCall, url: string, body: unknown, accept: string): Promise<Dispatcher.ResponseData> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept };
  for (const [k, v] of Object.entries(call.provider.headers ?? {})) headers[k.toLowerCase()] = v;
  if (call.provider.apiKey !== undefined) headers['x-goog-api-key'] = call.provider.apiKey;
  return transportPost(call, { url, headers, body: JSON.stringify(body), errorDetail: geminiErrorDetail });
}

/** A whole 2xx body, at most bytesMax bytes ('malformed' beyond). */
export function readText(res: Dispatcher.ResponseData, call: UpstreamCall, bytesMax: number): Promise<string> {
  return readBody(call, res.body, bytesMax);
}

/** `{"error":{"status":..,"message":..}}` → "STATUS message". */
function geminiErrorDetail(text: string): string | undefined {
  const err = (JSON.parse(text) as GeminiErrorBody).error;
  if (err === undefined || err === null) return undefined;
  const detail = `${err.status ?? ''} ${err.message ?? ''}`.trim();
  return detail === '' ? undefined : detail;
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
