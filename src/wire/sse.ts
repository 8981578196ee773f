/**
 * Server-sent events, parsed incrementally from byte chunks (WHATWG EventSource rules: lines end in
 * \n, \r\n or \r; `data:` lines of one event are joined with \n; a blank line dispatches; `:` lines are
 * comments). One parser per upstream stream; it never buffers more than one unfinished event.
 */
export interface SseEvent {
  event?: string;
  data: string;
}

export class SseParser {
  #decoder = new TextDecoder();
  #buffer = '';
  #event: string | undefined;
  /** The data lines of the event being read, joined with \n (undefined: none yet). */
  #data: string | undefined;
  readonly #maxEventBytes: number;

  constructor(maxEventBytes = 8 * 1024 * 1024) {
    this.#maxEventBytes = maxEventBytes;
  }

  /** Feed a chunk; returns the events it completed. */
  push(chunk: Uint8Array | string): SseEvent[] {
    const text = typeof chunk === 'string' ? chunk : this.#decoder.decode(chunk, { stream: true });
    const buf = this.#buffer.length === 0 ? text : this.#buffer + text;
    const out: SseEvent[] = [];
    let start = 0;
    if (buf.indexOf('\r') < 0) {
      // Lines end in \n only (what every upstream we know sends): indexOf instead of a character loop.
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n', start)) {
        this.#line(buf, start, nl, out);
        start = nl + 1;
      }
    } else {
      for (;;) {
        let nl = -1;
        let skip = 1;
        for (let i = start; i < buf.length; i++) {
          const c = buf.charCodeAt(i);
          if (c === 10) {
            nl = i;
            break;
          }
          if (c === 13) {
            // \r\n counts as one line end; a lone \r at the end of the buffer waits for the next chunk.
            if (i + 1 === buf.length) break;
            nl = i;
            skip = buf.charCodeAt(i + 1) === 10 ? 2 : 1;
            break;
          }
        }
        if (nl < 0) break;
        this.#line(buf, start, nl, out);
        start = nl + skip;
      }
    }
    this.#buffer = start === 0 ? buf : buf.slice(start);
    if (this.#buffer.length > this.#maxEventBytes) throw new Error('SSE line exceeds the size limit');
    return out;
  }

  /** Flush at end of stream: an event without its final blank line is still dispatched. */
  end(): SseEvent[] {
    const out: SseEvent[] = [];
    const rest = this.#buffer;
    this.#buffer = '';
    if (rest.length > 0) this.#line(rest, 0, rest.length, out);
    this.#line('', 0, 0, out);
    return out;
  }

  /** One line: buf[start, end). */
  #line(buf: string, start: number, end: number, out: SseEvent[]): void {
    if (start === end) {
      if (this.#data !== undefined) {
        const ev: SseEvent = { data: this.#data };
        if (this.#event !== undefined) ev.event = this.#event;
        out.push(ev);
      }
      this.#data = undefined;
      this.#event = undefined;
      return;
    }
    const c0 = buf.charCodeAt(start);
    if (c0 === 58) return; // ':' comment
    // The usual line, 'data: {...}', without slicing the field name first.
    if (c0 === 100 && end - start >= 5 && buf.startsWith('data:', start)) {
      const v = buf.charCodeAt(start + 5) === 32 ? start + 6 : start + 5;
      this.#addData(buf.slice(v, end));
      return;
    }
    const colon = buf.indexOf(':', start);
    const hasColon = colon >= 0 && colon < end;
    const field = hasColon ? buf.slice(start, colon) : buf.slice(start, end);
    let value = hasColon ? buf.slice(colon + 1, end) : '';
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'data') this.#addData(value);
    else if (field === 'event') this.#event = value;
  }

  #addData(value: string): void {
    this.#data = this.#data === undefined ? value : `${this.#data}\n${value}`;
  }
}

/** Encode one SSE frame. */
export function sseFrame(data: string, event?: string): string {
  return event === undefined ? `data: ${data}\n\n` : `event: ${event}\ndata: ${data}\n\n`;
}
