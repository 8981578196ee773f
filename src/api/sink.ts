import type { ServerResponse } from 'node:http';
import type { ErrorCode } from '../core/index.ts';
import type { StreamSink } from '../gateway/index.ts';
import type { StreamEvent } from '../wire/index.ts';
import { SSE_HEADERS } from './http.ts';

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
export function sseSink(res: ServerResponse, encoder: StreamEncoder, errorFrame: (code: ErrorCode, message: string) => string, extraHeaders: Record<string, string>): StreamSink {
  let pending = '';
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (pending.length === 0 || res.writableEnded) return;
    const text = pending;
    pending = '';
    res.write(text);
  };
  return {
    open() {
      res.writeHead(200, { ...SSE_HEADERS, ...extraHeaders });
    },
    write(ev) {
      const text = encoder.encode(ev);
      if (text.length > 0) {
        pending += text;
        if (!scheduled) {
          scheduled = true;
          process.nextTick(flush);
        }
      }
      return !res.writableNeedDrain;
    },
    drain() {
      if (!res.writableNeedDrain) return Promise.resolve();
      return new Promise((resolve) => {
        const done = (): void => { res.off('drain', done); res.off('close', done); resolve(); };
        res.once('drain', done);
        res.once('close', done);
      });
    },
    fail(code, message) {
      if (!res.writableEnded) res.end(pending + errorFrame(code, message));
      pending = '';
    },
    close() {
      if (!res.writableEnded) res.end(pending + encoder.finish());
      pending = '';
    },
  };
}
