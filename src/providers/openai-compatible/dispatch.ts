import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import { UpstreamError, type UpstreamCall } from '../types.ts';
import { ERROR_BODY_BYTES_MAX, abortedBeforeSend, bodyError, dispatchOptions, requestError, statusError } from './http.ts';

/**
 * Upstream calls through undici's dispatch() with our own handler, instead of dispatcher.request(): no
 * Readable body, no AsyncResource, no promise or listener per body chunk.
 *
 * The handlers are written against undici's supported handler API (onRequestStart / onResponseStart /
 * onResponseData / onResponseEnd / onResponseError, with a DispatchController to abort, pause and resume).
 * undici 7's HTTP/1 client still calls the older interface (onConnect / onHeaders / onData / onComplete /
 * onError) and wraps a handler of the new API in its UnwrapHandler, which parses every response header into
 * an object. The fast path (`fastPaths`, on unless TOKENGRID_FAST_PATHS=off) hands undici a LegacyBridge
 * instead: the same handler behind the older interface, only content-type read from the raw header list.
 * With fast paths off, or if a future undici drops the older interface, the handler goes to undici as is.
 */

/** A whole upstream answer, read into memory (bounded). */
export interface UpstreamAnswer {
  statusCode: number;
  /** The content-type header, if the upstream sent exactly one. */
  contentType: string | undefined;
  text: string;
}

const CONTENT_TYPE = 'content-type';

/** A raw header name equal to content-type in any case (compared byte by byte: no string per header). */
function isContentType(name: Buffer | string): boolean {
  if (name.length !== 12) return false;
  if (typeof name === 'string') return name.toLowerCase() === CONTENT_TYPE;
  // | 0x20 lower-cases ASCII letters and leaves '-' as it is; header names hold no other bytes it would map onto these.
  for (let i = 0; i < 12; i++) if ((name[i]! | 0x20) !== CONTENT_TYPE.charCodeAt(i)) return false;
  return true;
}

/** The raw header list's content-type value (undici gives names and values as Buffers, names in any case). */
export function contentTypeOf(raw: readonly (Buffer | string)[]): string | undefined {
  let found: string | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (!isContentType(raw[i]!)) continue;
    // Sent twice: undici's header object would hold an array, which never read as JSON before either.
    if (found !== undefined) return undefined;
    const v = raw[i + 1]!;
    found = typeof v === 'string' ? v : v.toString('latin1');
  }
  return found;
}

/**
 * What every upstream handler shares: the abort wiring (the caller's signal aborts the dispatch through
 * the controller undici hands to onRequestStart; aborted before that, the request is dropped as soon as
 * undici connects it, before a byte is written) and the error mapping of a failure before or after headers.
 */
export abstract class UpstreamHandler implements Dispatcher.DispatchHandler {
  /** undici's controller for this request, once it was given a connection. */
  #controller: Dispatcher.DispatchController | undefined;
  /** Our listener on the caller's signal, while one is registered. */
  #onSignal: (() => void) | undefined;
  /** 0 until response headers (final, not 1xx) arrived. */
  statusCode = 0;
  /** True once the outcome was handed out: later callbacks from undici are ignored. */
  settled = false;

  constructor(readonly call: UpstreamCall) {
    // Not a named local function: tsx wraps those in __name() on every call.
    this.#onSignal = () => this.onSignalAbort();
    call.signal.addEventListener('abort', this.#onSignal);
  }

  /** Stop listening to the caller's signal (once the outcome is known or the request was torn down). */
  unlisten(): void {
    const l = this.#onSignal;
    if (l === undefined) return;
    this.#onSignal = undefined;
    this.call.signal.removeEventListener('abort', l);
  }

  /** Abort the upstream request (connection closed). Before onRequestStart, it is aborted as soon as undici connects it. */
  abortRequest(): void {
    // No reason: undici reports its RequestAbortedError, as an abort() without argument always did.
    this.#controller?.abort(undefined as unknown as Error);
  }

  /** Let undici read the socket again after a pause. */
  resumeRequest(): void {
    this.#controller?.resume();
  }

  /** The caller's signal fired. */
  onSignalAbort(): void {
    this.unlisten();
    // With a connection, undici's abort reports back through onResponseError (mapped to 'aborted'). Without
    // one yet, fail now; onRequestStart aborts the request when undici gets to it.
    if (this.#controller !== undefined) this.abortRequest();
    else this.fail(this.mapError(undefined));
  }

  // ---- undici's supported handler API ----

  onRequestStart(controller: Dispatcher.DispatchController, _context: unknown): void {
    if (this.settled || this.call.signal.aborted) {
      controller.abort(undefined as unknown as Error);
      return;
    }
    this.#controller = controller;
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200) return; // 1xx informational: the real answer follows
    this.statusCode = statusCode;
    const type = headers['content-type'];
    // Sent twice: an array, which never read as JSON before either.
    if (!this.responseStart(statusCode, typeof type === 'string' ? type : undefined)) controller.pause();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.bodyChunk(chunk)) controller.pause();
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, _trailers: IncomingHttpHeaders): void {
    this.bodyEnd();
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    if (this.settled) return;
    this.fail(this.mapError(err));
  }

  /** undici's error (or our abort) → UpstreamError, by how far the response got. */
  mapError(err: unknown): UpstreamError {
    if (this.statusCode === 0) return requestError(err, this.call);
    if (this.statusCode >= 200 && this.statusCode < 300) return bodyError(err, this.call);
    // A non-2xx whose error body broke off: still the status error, without the body (as before).
    return statusError(this.call, this.statusCode, '');
  }

  /** Final response headers; false: pause reading (resumeRequest() resumes). */
  abstract responseStart(statusCode: number, contentType: string | undefined): boolean;
  /** One body chunk; false: pause reading. */
  abstract bodyChunk(chunk: Buffer): boolean;
  abstract bodyEnd(): void;
  /** Hand out a failure (called at most once, with settled still false). */
  abstract fail(e: UpstreamError): void;
}

/**
 * Fast path (ARCHITECTURE.md, fast paths): an UpstreamHandler behind undici's older handler interface, which
 * undici 7's HTTP/1 client calls directly. It is its own DispatchController (abort, pause, resume with the
 * semantics of undici's UnwrapController) and passes only content-type, read from the raw header list,
 * instead of a parsed object of every header. General twin: the handler given to undici as it is.
 */
export class LegacyBridge implements Dispatcher.DispatchHandler, Dispatcher.DispatchController {
  #abort: ((err?: Error) => void) | undefined;
  #resume: (() => void) | undefined;
  #paused = false;
  #aborted = false;
  #reason: Error | null = null;

  constructor(readonly handler: UpstreamHandler) {}

  get aborted(): boolean {
    return this.#aborted;
  }
  get paused(): boolean {
    return this.#paused;
  }
  get reason(): Error | null {
    return this.#reason;
  }

  abort(reason: Error): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason ?? null;
    this.#abort?.(reason);
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#resume?.();
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
    this.#aborted = false;
    this.handler.onRequestStart(this, undefined);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    this.#resume = resume;
    this.handler.onResponseStart(this, statusCode, { 'content-type': contentTypeOf(rawHeaders) });
    return !this.#paused;
  }

  onData(chunk: Buffer): boolean {
    this.handler.onResponseData(this, chunk);
    return !this.#paused;
  }

  onComplete(): void {
    this.handler.onResponseEnd(this, {});
  }

  onError(err: Error): void {
    this.handler.onResponseError(this, err);
  }
}

/** Send one request with `handler`: behind the LegacyBridge on the fast path, else through undici's supported API. */
export function dispatchTo(call: UpstreamCall, opts: Dispatcher.DispatchOptions, handler: UpstreamHandler, fast: boolean): void {
  try {
    call.dispatcher.dispatch(opts, fast ? new LegacyBridge(handler) : handler);
  } catch (e) {
    // undici reports its own failures through the handler; this is a throw before it got that far.
    handler.onResponseError(undefined, e as Error);
  }
}

/**
 * Collects a whole answer: 2xx bodies up to bytesMax (beyond: 'malformed', connection closed), non-2xx
 * bodies up to ERROR_BODY_BYTES_MAX (beyond: cut, connection closed) and thrown as UpstreamError('status').
 */
export class TextHandler extends UpstreamHandler {
  #chunks: Buffer[] = [];
  #bytes = 0;
  #limit = 0;
  #contentType: string | undefined;

  constructor(
    call: UpstreamCall,
    readonly bytesMax: number,
    readonly resolve: (a: UpstreamAnswer) => void,
    readonly reject: (e: UpstreamError) => void,
  ) {
    super(call);
  }

  responseStart(statusCode: number, contentType: string | undefined): boolean {
    this.#contentType = contentType;
    this.#limit = statusCode < 300 ? this.bytesMax : ERROR_BODY_BYTES_MAX;
    return true;
  }

  bodyChunk(chunk: Buffer): boolean {
    if (this.settled) return true;
    const bytes = (this.#bytes += chunk.length);
    if (bytes <= this.#limit) {
      this.#chunks.push(chunk);
      return true;
    }
    this.settled = true;
    this.unlisten();
    if (this.statusCode < 300) {
      this.reject(new UpstreamError('malformed', `${this.call.provider.name} answered more than ${this.bytesMax} bytes`));
    } else {
      this.#chunks.push(chunk.subarray(0, chunk.length - (bytes - this.#limit)));
      this.reject(statusError(this.call, this.statusCode, this.#text()));
    }
    // Not worth reading the rest: close the connection (undici's onError that follows is ignored).
    this.abortRequest();
    return false;
  }

  bodyEnd(): void {
    if (this.settled) return;
    this.settled = true;
    this.unlisten();
    const { statusCode } = this;
    if (statusCode < 300) this.resolve({ statusCode, contentType: this.#contentType, text: this.#text() });
    else this.reject(statusError(this.call, statusCode, this.#text()));
  }

  fail(e: UpstreamError): void {
    if (this.settled) return;
    this.settled = true;
    this.unlisten();
    this.reject(e);
  }

  #text(): string {
    const c = this.#chunks;
    if (c.length === 0) return '';
    return c.length === 1 ? c[0]!.toString('utf8') : Buffer.concat(c).toString('utf8');
  }
}

/**
 * POST a JSON body (its text) and read the whole answer: resolves for a 2xx (body up to bytesMax, else 'malformed');
 * rejects with UpstreamError('status') for any other status (error body bounded, for the logs), and with
 * 'aborted', 'timeout', 'connect', 'malformed' or 'disconnect' as the failure was.
 */
export function postText(call: UpstreamCall, path: string, bodyJson: string, accept: string, bytesMax: number, fast = true): Promise<UpstreamAnswer> {
  if (call.signal.aborted) return Promise.reject(abortedBeforeSend(call));
  return new Promise((resolve, reject) => {
    dispatchTo(call, dispatchOptions(call, path, bodyJson, accept), new TextHandler(call, bytesMax, resolve, reject), fast);
  });
}

/** The answer's body as JSON, or 'malformed'. */
export function answerJson(a: UpstreamAnswer, call: UpstreamCall): unknown {
  try {
    return JSON.parse(a.text);
  } catch {
    throw new UpstreamError('malformed', `${call.provider.name} answered 2xx with a body that is not JSON`, a.statusCode, a.text.slice(0, 2048));
  }
}
