import { TextDecoder } from 'node:util';
import type { Dispatcher } from 'undici';
import type { SseParser, SseEvent, StreamEvent } from '../../wire/index.ts';
import { UpstreamError, type UpstreamCall } from '../types.ts';
import { abortedError, errorMessage, statusError as transportStatusError } from '../transport/index.ts';
import type { ChunkParser } from './stream-reader.ts';
import { isObj, str } from './upstream-fields.ts';

export { ERROR_BODY_BYTES_MAX, bodyError, requestError } from '../transport/index.ts';

/** What every request to one provider shares: origin, paths and headers (built once, not per request). */
interface Target {
  baseUrl: string;
  apiKey: string | undefined;
  headers: Record<string, string> | undefined;
  /** Endpoint path (e.g. /chat/completions) → origin and request path, as undici would parse the joined URL. */
  urls: Map<string, { origin: string; path: string }>;
  /** Header name/value pairs by accept value. */
  byAccept: Map<string, string[]>;
}

const targets = new WeakMap<UpstreamCall['provider'], Target>();

/**
 * The provider's request target, cached on the provider object. A provider whose base URL, key or
 * headers were replaced (config reload, tests) gets a fresh one.
 */
function targetOf(provider: UpstreamCall['provider']): Target {
  const cached = targets.get(provider);
  if (cached !== undefined && cached.baseUrl === provider.baseUrl && cached.apiKey === provider.apiKey && cached.headers === provider.headers) return cached;
  const t: Target = { baseUrl: provider.baseUrl, apiKey: provider.apiKey, headers: provider.headers, urls: new Map(), byAccept: new Map() };
  targets.set(provider, t);
  return t;
}

function urlOf(t: Target, path: string): { origin: string; path: string } {
  let u = t.urls.get(path);
  if (u === undefined) {
    const url = new URL(joinUrl(t.baseUrl, path));
    u = { origin: url.origin, path: url.pathname + url.search };
    t.urls.set(path, u);
  }
  return u;
}

function headersOf(t: Target, provider: UpstreamCall['provider'], accept: string): string[] {
  let pairs = t.byAccept.get(accept);
  if (pairs !== undefined) return pairs;
  const headers: Record<string, string> = { 'content-type': 'application/json', accept };
  if (provider.apiKey !== undefined && provider.apiKey !== '') headers['authorization'] = `Bearer ${provider.apiKey}`;
  // Lower-cased so a configured "Authorization" or "api-key" replaces ours instead of being sent twice.
  if (provider.headers !== undefined) for (const [k, v] of Object.entries(provider.headers)) headers[k.toLowerCase()] = v;
  pairs = Object.entries(headers).flat();
  t.byAccept.set(accept, pairs);
  return pairs;
}

function joinUrl(baseUrl: string, path: string): string {
  return baseUrl.endsWith('/') ? baseUrl.slice(0, -1) + path : baseUrl + path;
}

/**
 * What undici needs to send one POST to the provider: a pre-built origin, path and header list (undici's
 * top-level request() parses the URL and we would build the headers again on every call), and the body's JSON text.
 */
export function dispatchOptions(call: UpstreamCall, path: string, bodyJson: string, accept: string): Dispatcher.DispatchOptions {
  const { provider } = call;
  const t = targetOf(provider);
  const url = urlOf(t, path);
  return {
    origin: url.origin,
    path: url.path,
    method: 'POST',
    headers: headersOf(t, provider, accept),
    body: bodyJson,
    headersTimeout: call.timeoutMsHeaders,
    bodyTimeout: call.timeoutMsBody,
  };
}

/** The caller's signal was already aborted: nothing is sent. */
export const abortedBeforeSend = abortedError;

/** A non-2xx answer, with its (bounded) body for the logs (../transport/errors.ts). */
export function statusError(call: UpstreamCall, statusCode: number, text: string): UpstreamError {
  return transportStatusError(call, statusCode, text, upstreamErrorMessage);
}

/** The upstream's own error message, for our logs (OpenAI shape; undefined: not found). */
function upstreamErrorMessage(text: string): string | undefined {
  const json: unknown = JSON.parse(text);
  if (!isObj(json)) return undefined;
  const e = json['error'];
  return isObj(e) ? str(e['message']) : (str(e) ?? str(json['message']));
}

/** One body chunk's text (undefined: end of body) → the SSE frames it completed; an oversized event is 'malformed'. */
export function parseFrames(sse: SseParser, text: string | undefined, call: UpstreamCall): SseEvent[] {
  try {
    return text === undefined ? sse.end() : sse.push(text);
  } catch (e) {
    throw new UpstreamError('malformed', `${call.provider.name} sent an oversized stream event: ${errorMessage(e)}`);
  }
}

/** Feed the frames of one body chunk to the parser; true once [DONE] was seen. `fast`: try the plainDelta fast path first. */
export function handleFrames(frames: SseEvent[], parser: ChunkParser, out: StreamEvent[], call: UpstreamCall, fast = true): boolean {
  for (const frame of frames) {
    if (frame.data === '[DONE]') return true;
    if (frame.event === 'error') parser.chunk({ error: tryParse(frame.data) ?? frame.data }, out);
    else if (!fast || parser.plainDelta === undefined || !parser.plainDelta(frame.data, out)) parser.chunk(parseData(frame.data, call), out);
  }
  return false;
}

const STREAM = { stream: true } as const;

/**
 * Body chunks → text, as a streaming TextDecoder would give it (leading BOM dropped, invalid bytes as
 * U+FFFD), but with Buffer#toString while every chunk ends on a character boundary (nearly always: upstreams
 * write whole frames), which costs less than TextDecoder's per-call option handling. The first chunk that
 * ends inside a character switches to a TextDecoder for the rest of the stream.
 */
export class Utf8Chunks {
  #decoder: TextDecoder | undefined;
  #first = true;

  decode(buf: Buffer): string {
    let start = 0;
    if (this.#first) {
      if (buf.length === 0) return '';
      this.#first = false;
      if (buf[0] === 0xef) {
        if (buf.length < 3) {
          // A BOM (or a character) cut short in the very first chunk: let a TextDecoder handle the stream.
          this.#decoder = new TextDecoder();
          return this.#decoder.decode(buf, STREAM);
        }
        if (buf[1] === 0xbb && buf[2] === 0xbf) start = 3;
      }
    }
    if (this.#decoder !== undefined) return this.#decoder.decode(start === 0 ? buf : buf.subarray(start), STREAM);
    if (endsOnCharBoundary(buf)) return buf.toString('utf8', start);
    this.#decoder = new TextDecoder('utf-8', { ignoreBOM: true });
    return this.#decoder.decode(start === 0 ? buf : buf.subarray(start), STREAM);
  }
}

/** False when the last bytes are the start of a multi-byte UTF-8 sequence still missing its continuation bytes. */
function endsOnCharBoundary(b: Buffer): boolean {
  const n = b.length;
  let i = n - 1;
  let cont = 0;
  while (i >= 0 && cont < 3 && (b[i]! & 0xc0) === 0x80) {
    i--;
    cont++;
  }
  if (i < 0) return true;
  const lead = b[i]!;
  const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return n - i >= need;
}

function tryParse(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    return undefined;
  }
}

function parseData(data: string, call: UpstreamCall): unknown {
  try {
    return JSON.parse(data);
  } catch {
    throw new UpstreamError('malformed', `${call.provider.name} sent a stream event that is not JSON`, undefined, data.slice(0, 2048));
  }
}
