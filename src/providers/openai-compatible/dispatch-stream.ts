import { SseParser, type StreamEvent } from '../../wire/index.ts';
import { UpstreamError, type UpstreamCall, type UpstreamStream } from '../types.ts';
import type { ChunkParser } from './stream-reader.ts';
import { TextHandler, dispatchTo, type UpstreamAnswer } from './dispatch.ts';
import { abortedBeforeSend, dispatchOptions, handleFrames, parseFrames, Utf8Chunks } from './http.ts';

/** Body bytes held for a consumer that is not reading; past this undici stops reading the socket (as a Readable's highWaterMark). */
const QUEUE_BYTES_HIGH = 64 * 1024;

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * A streamed answer through undici's dispatch(): the handler is also the stream its consumer reads.
 *
 * Before headers it behaves as a TextHandler: a non-2xx answer rejects the start with UpstreamError('status'),
 * and a 2xx JSON answer (a vendor that ignored `stream: true`) is read whole and handed out as an
 * UpstreamAnswer. A 2xx SSE answer resolves the start with the handler itself; then each body chunk is
 * parsed into canonical events when the consumer pulls (`batches`: one array per body chunk that completed
 * events, never empty; `events`: the same, one by one), exactly as the former async generator over the
 * Readable body did:
 *
 * - a chunk that arrives while the consumer waits is parsed at once and resolves its pull; otherwise it is
 *   queued, and past QUEUE_BYTES_HIGH queued bytes undici is paused (no socket reads, no body timeout)
 *   until the consumer has read the queue;
 * - ends normally on [DONE] (the rest of the body is read and dropped in the background, so the
 *   connection can be pooled) or at the end of the body after a finish_reason; an end of body without
 *   either is UpstreamError('disconnect'), after the events that did arrive;
 * - a broken body throws its mapped error after the chunks that did arrive; the caller's abort throws
 *   'aborted' at the next pull, dropping what was queued;
 * - a consumer that stops early (return()) or gets an error aborts the upstream request.
 */
export class SseHandler extends TextHandler implements UpstreamStream, AsyncIterator<StreamEvent[]> {
  /** A 2xx SSE body: chunks go to the consumer. */
  #sse = false;
  #paused = false;
  #queue: Buffer[] = [];
  #qi = 0;
  #queued = 0;
  /** undici delivered the whole body. */
  #ended = false;
  /** The body broke, or the caller aborted: thrown once the queue was read. */
  #failure: UpstreamError | undefined;
  /** Nothing more to hand out (after the value just returned): the next pull ends or throws #tail. */
  #over = false;
  #tail: UpstreamError | undefined;
  /** After [DONE]: the rest of the body is read and dropped. */
  #draining = false;
  #waiter: { resolve: (r: IteratorResult<StreamEvent[]>) => void; reject: (e: unknown) => void } | undefined;
  readonly #sseParser = new SseParser();
  /** Body bytes → text: Utf8Chunks on the fast path, a streaming TextDecoder (its general twin) otherwise. */
  readonly #utf8: { decode(buf: Buffer): string };
  #events: AsyncIterable<StreamEvent> | undefined;
  #batchesTaken = false;

  constructor(
    call: UpstreamCall,
    bytesMax: number,
    readonly parser: ChunkParser,
    readonly resolveStart: (r: UpstreamAnswer | SseHandler) => void,
    reject: (e: UpstreamError) => void,
    readonly fast = true,
  ) {
    super(call, bytesMax, resolveStart, reject);
    this.#utf8 = fast ? new Utf8Chunks() : new StreamingText();
  }

  // ---- undici's side ----

  override responseStart(statusCode: number, contentType: string | undefined): boolean {
    if (statusCode >= 300) return super.responseStart(statusCode, contentType);
    // Some vendors ignore `stream: true` for some models and answer one JSON document.
    if (contentType !== undefined && contentType.includes('application/json')) return super.responseStart(statusCode, contentType);
    this.#sse = true;
    this.resolveStart(this);
    return true;
  }

  override bodyChunk(chunk: Buffer): boolean {
    if (!this.#sse) return super.bodyChunk(chunk);
    if (this.#over) return true; // draining after [DONE], or nobody reads any more
    this.#queue.push(chunk);
    this.#queued += chunk.length;
    if (this.#waiter !== undefined) {
      this.#answerWaiter();
      // An error found while parsing aborts the request; stop feeding chunks.
      if (this.#over && !this.#draining) return false;
      return true;
    }
    if (this.#queued < QUEUE_BYTES_HIGH) return true;
    this.#paused = true;
    return false;
  }

  override bodyEnd(): void {
    if (!this.#sse) {
      super.bodyEnd();
      return;
    }
    this.#ended = true;
    if (this.#over) {
      this.#finish();
      return;
    }
    if (this.#waiter !== undefined) this.#answerWaiter();
  }

  override fail(e: UpstreamError): void {
    if (!this.#sse) {
      super.fail(e);
      return;
    }
    if (this.#over || this.#failure !== undefined) return;
    this.#failure = e;
    // The caller gave up: what is queued is not wanted any more.
    if (e.kind === 'aborted') this.#dropQueue();
    if (this.#waiter !== undefined) this.#answerWaiter();
  }

  // ---- the consumer's side ----

  get batches(): AsyncIterable<StreamEvent[]> {
    if (this.#events !== undefined) throw new Error('an upstream stream is read either per event or per batch, not both');
    this.#batchesTaken = true;
    return this;
  }

  get events(): AsyncIterable<StreamEvent> {
    if (this.#batchesTaken) throw new Error('an upstream stream is read either per event or per batch, not both');
    return (this.#events ??= flatten(this));
  }

  [Symbol.asyncIterator](): AsyncIterator<StreamEvent[]> {
    return this;
  }

  next(): Promise<IteratorResult<StreamEvent[]>> {
    if (this.#waiter !== undefined) return Promise.reject(new Error('an upstream stream is pulled one read at a time'));
    try {
      let r = this.#step();
      if (r === undefined && this.#paused) {
        // The consumer read the queue: let undici read the socket again (it may deliver chunks right away).
        this.#paused = false;
        this.resumeRequest();
        r = this.#step();
      }
      if (r !== undefined) return Promise.resolve(r);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<StreamEvent[]>> {
    if (!this.#over) {
      this.#over = true;
      this.#dropQueue();
      this.#finish();
    }
    this.#tail = undefined;
    const w = this.#waiter;
    if (w !== undefined) {
      this.#waiter = undefined;
      w.resolve(DONE);
    }
    return Promise.resolve(DONE);
  }

  // ---- inside ----

  #answerWaiter(): void {
    const w = this.#waiter!;
    let r: IteratorResult<StreamEvent[]> | undefined;
    try {
      r = this.#step();
    } catch (e) {
      this.#waiter = undefined;
      w.reject(e);
      return;
    }
    if (r === undefined) return;
    this.#waiter = undefined;
    w.resolve(r);
  }

  /**
   * The next result from what arrived so far; undefined: wait for undici. Throws the stream's error (once;
   * the request is aborted by then, and later pulls end).
   */
  #step(): IteratorResult<StreamEvent[]> | undefined {
    for (;;) {
      if (this.#over) {
        const tail = this.#tail;
        if (tail === undefined) return DONE;
        this.#tail = undefined;
        throw tail;
      }
      const { call, parser } = this;
      const out: StreamEvent[] = [];
      let last: boolean;
      try {
        if (this.#qi < this.#queue.length) {
          const chunk = this.#queue[this.#qi++]!;
          this.#queued -= chunk.length;
          if (this.#qi === this.#queue.length) {
            this.#queue.length = 0;
            this.#qi = 0;
          }
          last = handleFrames(parseFrames(this.#sseParser, this.#utf8.decode(chunk), call), parser, out, call, this.fast);
          if (last) {
            // [DONE] is the last thing an upstream sends; bytes after it are ignored.
            parser.end(out);
            if (!this.#ended) this.#draining = true;
          }
        } else if (this.#failure !== undefined) {
          throw this.#failure;
        } else if (this.#ended) {
          last = true;
          const done = handleFrames(parseFrames(this.#sseParser, undefined, call), parser, out, call, this.fast);
          if (done || parser.finished) parser.end(out);
          else this.#tail = new UpstreamError('disconnect', `${call.provider.name} ended the stream before finish_reason or [DONE]`);
        } else {
          return undefined;
        }
      } catch (e) {
        this.#over = true;
        this.#dropQueue();
        this.#finish();
        throw e;
      }
      if (last) {
        this.#over = true;
        this.#dropQueue();
        this.#finish();
      }
      if (out.length > 0) return { done: false, value: out };
    }
  }

  #dropQueue(): void {
    this.#queue.length = 0;
    this.#qi = 0;
    this.#queued = 0;
  }

  /**
   * No more reading for the consumer: stop listening to the caller's signal; abort the request unless its
   * body ended or is being drained after [DONE] (then let undici read on, so it can pool the connection).
   */
  #finish(): void {
    this.settled = true;
    this.unlisten();
    if (this.#ended) return;
    if (this.#draining) {
      if (this.#paused) {
        this.#paused = false;
        this.resumeRequest();
      }
      return;
    }
    this.abortRequest();
  }
}

/** The general twin of Utf8Chunks: a streaming TextDecoder (leading BOM dropped, invalid bytes as U+FFFD). */
class StreamingText {
  readonly #decoder = new TextDecoder();

  decode(buf: Buffer): string {
    return this.#decoder.decode(buf, { stream: true });
  }
}

async function* flatten(batches: AsyncIterable<StreamEvent[]>): AsyncGenerator<StreamEvent, void, undefined> {
  for await (const batch of batches) yield* batch;
}

/**
 * POST a streaming request. Resolves once a 2xx answered: with the stream (the handler) for an SSE body,
 * or with the whole answer when the upstream answered JSON instead. Rejects like postText otherwise.
 */
export function postStream(
  call: UpstreamCall,
  path: string,
  bodyJson: string,
  parser: ChunkParser,
  bytesMax: number,
  fast = true,
): Promise<UpstreamAnswer | SseHandler> {
  if (call.signal.aborted) return Promise.reject(abortedBeforeSend(call));
  return new Promise((resolve, reject) => {
    dispatchTo(call, dispatchOptions(call, path, bodyJson, 'text/event-stream'), new SseHandler(call, bytesMax, parser, resolve, reject, fast), fast);
  });
}
