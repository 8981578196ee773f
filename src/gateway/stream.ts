import type { ErrorCode } from '../core/index.ts';
import type { UpstreamStream } from '../providers/index.ts';
import type { StreamEvent } from '../wire/index.ts';

// The stream's side of the lifecycle: where events go (the sink), how the reservation grows (options) and
// how events are pulled from the adapter. The lifecycle itself is one path in gateway.ts.

/** Where a stream goes: implemented by the HTTP shell with the client's API family encoder. */
export interface StreamSink {
  /** Called once, right before the first event: the shell sends status 200 and the SSE headers. */
  open(): void;
  /** Write one event; false when the socket buffer is full (then await drain()). */
  write(ev: StreamEvent): boolean;
  drain(): Promise<void>;
  /** An error after the first byte: the shell writes an error frame in its family's format. */
  fail(code: ErrorCode, message: string): void;
  /** Final bytes ([DONE] / message_stop) and end of the response. Called after settlement. */
  close(): void;
}

export interface StreamOptions {
  /** Ask for another slice when this fraction of the granted output is used (Volume-Quota-Threshold). */
  extendAtFraction: number;
  /** Output tokens asked for by each extension. */
  sliceTokens: number;
  /**
   * Output tokens held at admission (a soft ask: at most a share of a small balance); the stream grows by
   * extensions as output flows, and each extension re-checks the key and the account (issue 12, findings 6, 10).
   */
  firstSliceTokens?: number;
}

export const defaultStreamOptions: StreamOptions = { extendAtFraction: 0.8, sliceTokens: 4096, firstSliceTokens: 512 };

/**
 * The adapter's events, pulled one upstream read at a time when it offers batches (one promise per read,
 * not one per event), otherwise one event at a time.
 */
export class EventPuller {
  #buf: StreamEvent[] = [];
  #i = 0;
  readonly #batches: AsyncIterator<StreamEvent[]> | undefined;
  readonly #events: AsyncIterator<StreamEvent> | undefined;

  constructor(s: UpstreamStream) {
    if (s.batches !== undefined) this.#batches = s.batches[Symbol.asyncIterator]();
    else this.#events = s.events[Symbol.asyncIterator]();
  }

  /** The next buffered event, or undefined when the buffer is used up (then await fill()). */
  shift(): StreamEvent | undefined {
    return this.#i < this.#buf.length ? this.#buf[this.#i++] : undefined;
  }

  /** Read the next upstream group of events; false at the end of the stream. */
  async fill(): Promise<boolean> {
    if (this.#batches !== undefined) {
      const r = await this.#batches.next();
      if (r.done === true) return false;
      this.#buf = r.value;
    } else {
      const r = await this.#events!.next();
      if (r.done === true) return false;
      this.#buf = [r.value];
    }
    this.#i = 0;
    return true;
  }

  /** Stop reading: the adapter destroys the upstream body. */
  async return(): Promise<void> {
    await (this.#batches ?? this.#events)?.return?.();
  }
}
