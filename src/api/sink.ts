import type { ServerResponse } from 'node:http';
import type { ErrorCode } from '../core/index.ts';
import type { StreamSink } from '../gateway/index.ts';
import type { StreamEvent } from '../wire/index.ts';
import { writeSseHead } from './http.ts';

export interface StreamEncoder {
  encode(ev: StreamEvent): string;
  finish(): string;
}

/**
 * The SSE sink: each canonical event is encoded once and sent as it arrives (no buffering of the response
 * beyond the current tick); backpressure is honoured through drain().
 *
 * Events parsed from one upstream read arrive in one run of microtasks. Their frames are joined and leave in
 * one res.write on the next tick (with the headers, for the first one), instead of one write and one syscall
 * per event; a lone event (a paced stream) still leaves within the same tick, so no latency is added.
 */
export function sseSink(
  res: ServerResponse,
  encoder: StreamEncoder,
  errorFrame: (code: ErrorCode, message: string) => string,
  extraHeaders?: Record<string, string>,
): StreamSink {
  return new SseSink(res, encoder, errorFrame, extraHeaders);
}

/** How long a stream waits for a client that reads nothing before it drops the connection (see SseSink.drain). */
export const DRAIN_TIMEOUT_MS = 60_000;

function flushSink(sink: SseSink): void {
  sink.flush();
}

/** A class, not closures: nothing is allocated per stream beyond the object itself. */
class SseSink implements StreamSink {
  #pending = '';
  #scheduled = false;
  constructor(
    readonly res: ServerResponse,
    readonly encoder: StreamEncoder,
    readonly errorFrame: (code: ErrorCode, message: string) => string,
    readonly extraHeaders: Record<string, string> | undefined,
  ) {}

  flush(): void {
    this.#scheduled = false;
    if (this.#pending.length === 0 || this.res.writableEnded) return;
    const text = this.#pending;
    this.#pending = '';
    this.res.write(text);
  }

  open(): void {
    writeSseHead(this.res, this.extraHeaders);
  }

  write(ev: StreamEvent): boolean {
    const text = this.encoder.encode(ev);
    if (text.length > 0) {
      this.#pending += text;
      if (!this.#scheduled) {
        this.#scheduled = true;
        process.nextTick(flushSink, this);
      }
    }
    return !this.res.writableNeedDrain;
  }

  /**
   * Waits until the client has read what is buffered. A client that keeps its connection open and reads nothing
   * for DRAIN_TIMEOUT_MS is gone: the response is destroyed ('close' aborts the request: the stream ends
   * client_aborted, its hold, upstream connection and QoS slot are freed). Without it such a client held them for
   * ever (the server has no socket idle timeout, and the upstream is not read while the stream waits here).
   */
  drain(): Promise<void> {
    const res = this.res;
    if (!res.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => res.destroy(), DRAIN_TIMEOUT_MS);
      timer.unref();
      const done = (): void => {
        clearTimeout(timer);
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.once('drain', done);
      res.once('close', done);
    });
  }

  fail(code: ErrorCode, message: string): void {
    if (!this.res.writableEnded) this.res.end(this.#pending + this.errorFrame(code, message));
    this.#pending = '';
  }

  close(): void {
    if (!this.res.writableEnded) this.res.end(this.#pending + this.encoder.finish());
    this.#pending = '';
  }
}
