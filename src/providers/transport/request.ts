/**
 * One POST through the shared undici dispatcher with `dispatcher.request()` (the supported, general API):
 * headers and body timeouts from the call, the caller's signal aborts it, every failure is an UpstreamError
 * (errors.ts), a non-2xx answer is read (bounded) and thrown as 'status'. Used by the anthropic and gemini
 * adapters; openai-compatible uses dispatch() with its own handler (../openai-compatible/dispatch.ts).
 */
import { request, type Dispatcher } from 'undici';
import type { UpstreamCall } from '../types.ts';
import { ERROR_BODY_BYTES_MAX, abortedError, requestError, statusError, type ErrorDetail } from './errors.ts';
import { readBody } from './read.ts';

export interface PostJson {
  url: string;
  headers: Record<string, string>;
  /** The JSON text of the request body. */
  body: string;
  /** The upstream's message in a non-2xx body (the adapter's dialect). */
  errorDetail?: ErrorDetail;
}

/** Resolves with a 2xx response whose body the caller reads (readBody, or a stream reader); rejects with UpstreamError. */
export async function postJson(call: UpstreamCall, o: PostJson): Promise<Dispatcher.ResponseData> {
  if (call.signal.aborted) throw abortedError(call);
  let res: Dispatcher.ResponseData;
  try {
    res = await request(o.url, {
      method: 'POST',
      dispatcher: call.dispatcher,
      headers: o.headers,
      body: o.body,
      signal: call.signal as AbortSignal, // a CallSignal: what undici uses of an AbortSignal
      headersTimeout: call.timeoutMsHeaders,
      bodyTimeout: call.timeoutMsBody,
    });
  } catch (e) {
    throw requestError(e, call);
  }
  if (res.statusCode >= 200 && res.statusCode < 300) return res;
  let text = '';
  try {
    text = await readBody(call, res.body, ERROR_BODY_BYTES_MAX, 'truncate');
  } catch {
    if (call.signal.aborted) throw abortedError(call);
    // The status is what matters; an error body that breaks off does not change it.
  }
  throw statusError(call, res.statusCode, text, o.errorDetail);
}
