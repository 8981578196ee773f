import { TextDecoder } from 'node:util';
import type { Dispatcher } from 'undici';
import { SseParser, type SseEvent, type StreamEvent } from '../../wire/index.ts';
import { UpstreamError, type UpstreamCall } from '../types.ts';
import type { ChunkParser } from './chunk-parser.ts';
import { isObj, str } from './upstream-fields.ts';

export type UpstreamBody = Dispatcher.ResponseData['body'];

/** Error bodies are kept for logs only; past this size the rest is not worth reading. */
const ERROR_BODY_BYTES_MAX = 64 * 1024;

function errorCode(e: unknown): string | undefined {
  return isObj(e) ? str(e['code']) : undefined;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A failure before response headers: the caller's abort, a timeout, a broken HTTP answer, or no connection. */
function requestError(e: unknown, call: UpstreamCall): UpstreamError {
  const name = call.provider.name;
  if (call.signal.aborted) return new UpstreamError('aborted', `request to ${name} aborted by the caller`);
  const code = errorCode(e);
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return new UpstreamError('timeout', `${name} sent no response headers within ${call.timeoutMsHeaders} ms`);
  if (code === 'UND_ERR_BODY_TIMEOUT') return new UpstreamError('timeout', `${name} sent no body bytes within ${call.timeoutMsBody} ms`);
  if (code?.startsWith('HPE_') === true) return new UpstreamError('malformed', `${name} sent an unparseable HTTP response: ${errorMessage(e)}`);
  return new UpstreamError('connect', `could not reach ${name}: ${code ?? ''} ${errorMessage(e)}`.replace('  ', ' '));
}

/** A failure while reading a 2xx body: the response was cut short. */
export function bodyError(e: unknown, call: UpstreamCall): UpstreamError {
  if (e instanceof UpstreamError) return e;
  const name = call.provider.name;
  if (call.signal.aborted) return new UpstreamError('aborted', `response from ${name} aborted by the caller`);
  const code = errorCode(e);
  if (code === 'UND_ERR_BODY_TIMEOUT') return new UpstreamError('timeout', `${name} sent no body bytes within ${call.timeoutMsBody} ms`);
  if (code?.startsWith('HPE_') === true) return new UpstreamError('malformed', `${name} sent an unparseable HTTP response: ${errorMessage(e)}`);
  return new UpstreamError('disconnect', `connection to ${name} broke mid-response: ${code ?? ''} ${errorMessage(e)}`.replace('  ', ' '));
}

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
 * POST a JSON body to the upstream and wait for a 2xx. Non-2xx answers are read (bounded), so the
 * pooled connection can be reused, and thrown as UpstreamError('status').
 * Goes straight to the dispatcher with a pre-built origin, path and header list (undici's top-level
 * request() parses the URL and we would build the headers again on every call).
 */
export async function postJson(call: UpstreamCall, path: string, body: unknown, accept: string): Promise<Dispatcher.ResponseData> {
  const { provider } = call;
  if (call.signal.aborted) throw new UpstreamError('aborted', `request to ${provider.name} aborted by the caller`);
  const t = targetOf(provider);
  let res: Dispatcher.ResponseData;
  try {
    const url = urlOf(t, path);
    res = await call.dispatcher.request({
      origin: url.origin,
      path: url.path,
      method: 'POST',
      headers: headersOf(t, provider, accept),
      body: JSON.stringify(body),
      // A CallSignal is what undici uses of an AbortSignal (aborted, reason, add/removeEventListener).
      signal: call.signal as AbortSignal,
      headersTimeout: call.timeoutMsHeaders,
      bodyTimeout: call.timeoutMsBody,
    });
  } catch (e) {
    throw requestError(e, call);
  }
  if (res.statusCode >= 200 && res.statusCode < 300) return res;
  const text = await readText(res.body, call, ERROR_BODY_BYTES_MAX, 'truncate').catch(() => '');
  throw new UpstreamError('status', `${provider.name} answered ${res.statusCode}: ${upstreamErrorMessage(text)}`, res.statusCode, text);
}

/** The upstream's own error message, for our logs (OpenAI shape, or the raw text cut short). */
function upstreamErrorMessage(text: string): string {
  try {
    const json: unknown = JSON.parse(text);
    if (isObj(json)) {
      const e = json['error'];
      const m = isObj(e) ? str(e['message']) : str(e) ?? str(json['message']);
      if (m !== undefined) return m.slice(0, 500);
    }
  } catch {
    // not JSON: fall through to the raw text
  }
  return text.slice(0, 500) || '(empty body)';
}

/**
 * Read a body as text up to `bytesMax`; beyond it either cut (error bodies) or fail (answers).
 * Event listeners rather than for-await: no async iterator and no promise per chunk. (The listeners are
 * inline arrows on purpose: tsx wraps every named local function in a __name() call, per request.)
 */
export function readText(body: UpstreamBody, call: UpstreamCall, bytesMax: number, overflow: 'truncate' | 'fail'): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let settled = false;
    body.on('data', (buf: Buffer) => {
      if (settled) return;
      bytes += buf.length;
      if (bytes <= bytesMax) {
        chunks.push(buf);
        return;
      }
      settled = true;
      body.destroy();
      if (overflow === 'fail') {
        reject(new UpstreamError('malformed', `${call.provider.name} answered more than ${bytesMax} bytes`));
        return;
      }
      chunks.push(buf.subarray(0, buf.length - (bytes - bytesMax)));
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    body.on('end', () => {
      if (settled) return;
      settled = true;
      resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8'));
    });
    body.on('error', (e: unknown) => {
      if (settled) return;
      settled = true;
      reject(bodyError(e, call));
    });
    // Destroyed without an error (our abort): a cut body, as the async iterator reported it.
    body.on('close', () => {
      if (settled) return;
      settled = true;
      reject(bodyError(Object.assign(new Error('premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }), call));
    });
  });
}

export async function readJson(res: Dispatcher.ResponseData, call: UpstreamCall, bytesMax: number): Promise<unknown> {
  const text = await readText(res.body, call, bytesMax, 'fail');
  try {
    return JSON.parse(text);
  } catch {
    throw new UpstreamError('malformed', `${call.provider.name} answered 2xx with a body that is not JSON`, res.statusCode, text.slice(0, 2048));
  }
}

export function isJsonResponse(res: Dispatcher.ResponseData): boolean {
  const type = res.headers['content-type'];
  return typeof type === 'string' && type.includes('application/json');
}

/**
 * Upstream SSE body → canonical events, as bytes arrive (never buffered whole). Ends normally on
 * [DONE], or on end of body after a finish_reason; otherwise throws UpstreamError('disconnect').
 * If the consumer stops early (return()/throw()), the body is destroyed, which aborts the upstream request.
 */
export async function* sseEvents(body: UpstreamBody, call: UpstreamCall, parser: ChunkParser): AsyncGenerator<StreamEvent, void, undefined> {
  for await (const batch of sseBatches(body, call, parser)) yield* batch;
}

/** sseEvents grouped by upstream read: one array (never empty) per body chunk that completed events. */
export async function* sseBatches(body: UpstreamBody, call: UpstreamCall, parser: ChunkParser): AsyncGenerator<StreamEvent[], void, undefined> {
  const sse = new SseParser();
  const utf8 = new Utf8Chunks();
  const it = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let ended = false;
  try {
    for (;;) {
      let r: IteratorResult<Buffer>;
      // Only reading is guarded: an error the consumer throws into us at a yield must not be re-labelled.
      try {
        r = await it.next();
      } catch (e) {
        throw bodyError(e, call);
      }
      ended = r.done === true;
      const out: StreamEvent[] = [];
      const frames = parseFrames(sse, r.done === true ? undefined : utf8.decode(r.value), call);
      const done = handleFrames(frames, parser, out, call);
      if (done || (ended && parser.finished)) parser.end(out);
      if (out.length > 0) yield out;
      if (done) {
        // [DONE] is the last thing an upstream sends. The rest of the body (normally just the chunked
        // terminator) is read in the background so undici can pool the connection without the
        // consumer waiting; bytes after [DONE] are ignored, a failure too, and bodyTimeout bounds it.
        if (!ended) {
          ended = true;
          void drain(it);
        }
        return;
      }
      if (ended) break;
    }
    if (!parser.finished) throw new UpstreamError('disconnect', `${call.provider.name} ended the stream before finish_reason or [DONE]`);
  } finally {
    if (!ended) body.destroy();
  }
}

function parseFrames(sse: SseParser, text: string | undefined, call: UpstreamCall): SseEvent[] {
  try {
    return text === undefined ? sse.end() : sse.push(text);
  } catch (e) {
    throw new UpstreamError('malformed', `${call.provider.name} sent an oversized stream event: ${errorMessage(e)}`);
  }
}

/** Feed the frames of one body chunk to the parser; true once [DONE] was seen. */
function handleFrames(frames: SseEvent[], parser: ChunkParser, out: StreamEvent[], call: UpstreamCall): boolean {
  for (const frame of frames) {
    if (frame.data === '[DONE]') return true;
    if (frame.event === 'error') parser.chunk({ error: tryParse(frame.data) ?? frame.data }, out);
    else if (parser.plainDelta === undefined || !parser.plainDelta(frame.data, out)) parser.chunk(parseData(frame.data, call), out);
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

async function drain(it: AsyncIterator<Buffer>): Promise<void> {
  try {
    while ((await it.next()).done !== true);
  } catch {
    // the answer was complete; a broken tail changes nothing
  }
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
