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
  return {
    open() {
      res.writeHead(200, { ...SSE_HEADERS, ...extraHeaders });
      res.flushHeaders();
    },
    write(ev) {
      const text = encoder.encode(ev);
      return text.length === 0 || res.write(text);
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
