import { request, type Dispatcher } from 'undici';
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

function joinUrl(baseUrl: string, path: string): string {
  return baseUrl.endsWith('/') ? baseUrl.slice(0, -1) + path : baseUrl + path;
}

/**
 * POST a JSON body to the upstream and wait for a 2xx. Non-2xx answers are read (bounded), so the
 * pooled connection can be reused, and thrown as UpstreamError('status').
 */
export async function postJson(call: UpstreamCall, path: string, body: unknown, accept: string): Promise<Dispatcher.ResponseData> {
  const { provider } = call;
  if (call.signal.aborted) throw new UpstreamError('aborted', `request to ${provider.name} aborted by the caller`);
  const headers: Record<string, string> = { 'content-type': 'application/json', accept };
  if (provider.apiKey !== undefined && provider.apiKey !== '') headers['authorization'] = `Bearer ${provider.apiKey}`;
  // Lower-cased so a configured "Authorization" or "api-key" replaces ours instead of being sent twice.
  if (provider.headers !== undefined) for (const [k, v] of Object.entries(provider.headers)) headers[k.toLowerCase()] = v;
  let res: Dispatcher.ResponseData;
  try {
    res = await request(joinUrl(provider.baseUrl, path), {
      method: 'POST',
      headers,
      body: JSON.stringify(body),
      dispatcher: call.dispatcher,
      signal: call.signal,
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

/** Read a body as text up to `bytesMax`; beyond it either cut (error bodies) or fail (answers). */
export async function readText(body: UpstreamBody, call: UpstreamCall, bytesMax: number, overflow: 'truncate' | 'fail'): Promise<string> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  try {
    for await (const chunk of body) {
      const buf = chunk as Buffer;
      bytes += buf.length;
      if (bytes > bytesMax) {
        body.destroy();
        if (overflow === 'fail') throw new UpstreamError('malformed', `${call.provider.name} answered more than ${bytesMax} bytes`);
        chunks.push(buf.subarray(0, buf.length - (bytes - bytesMax)));
        break;
      }
      chunks.push(buf);
    }
  } catch (e) {
    throw bodyError(e, call);
  }
  return Buffer.concat(chunks).toString('utf8');
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
  const sse = new SseParser();
  const out: StreamEvent[] = [];
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
      const frames = parseFrames(sse, r, call);
      const done = handleFrames(frames, parser, out, call);
      if (done || (ended && parser.finished)) parser.end(out);
      for (const ev of out) yield ev;
      out.length = 0;
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

function parseFrames(sse: SseParser, r: IteratorResult<Buffer>, call: UpstreamCall): SseEvent[] {
  try {
    return r.done === true ? sse.end() : sse.push(r.value);
  } catch (e) {
    throw new UpstreamError('malformed', `${call.provider.name} sent an oversized stream event: ${errorMessage(e)}`);
  }
}

/** Feed the frames of one body chunk to the parser; true once [DONE] was seen. */
function handleFrames(frames: SseEvent[], parser: ChunkParser, out: StreamEvent[], call: UpstreamCall): boolean {
  for (const frame of frames) {
    if (frame.data === '[DONE]') return true;
    if (frame.event === 'error') parser.chunk({ error: tryParse(frame.data) ?? frame.data }, out);
    else parser.chunk(parseData(frame.data, call), out);
  }
  return false;
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
