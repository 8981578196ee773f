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
 * The SSE sink: each canonical event is encoded once and written straight to the socket (no buffering
 * of the response); backpressure is honoured through drain().
 */
export function sseSink(res: ServerResponse, encoder: StreamEncoder, errorFrame: (code: ErrorCode, message: string) => string, extraHeaders: Record<string, string>): StreamSink {
  // Events parsed from one upstream read arrive in one run of microtasks: cork the socket for that run and
  // uncork on the next tick, so they leave in one write instead of one syscall per event. A lone event (a
  // paced stream) is flushed within the same tick, so no latency is added.
  let corked = false;
  const uncork = (): void => {
    corked = false;
    res.uncork();
  };
  return {
    open() {
      res.writeHead(200, { ...SSE_HEADERS, ...extraHeaders });
      res.flushHeaders();
    },
    write(ev) {
      const text = encoder.encode(ev);
      if (text.length === 0) return true;
      if (!corked) {
        corked = true;
        res.cork();
        process.nextTick(uncork);
      }
      return res.write(text);
    },
    drain() {
      return new Promise((resolve) => {
        const done = (): void => { res.off('drain', done); res.off('close', done); resolve(); };
        res.once('drain', done);
        res.once('close', done);
      });
    },
    fail(code, message) {
      if (!res.writableEnded) res.end(errorFrame(code, message));
    },
    close() {
      if (!res.writableEnded) res.end(encoder.finish());
    },
  };
}
