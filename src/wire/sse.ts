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
  #data: string[] = [];
  readonly #maxEventBytes: number;

  constructor(maxEventBytes = 8 * 1024 * 1024) {
    this.#maxEventBytes = maxEventBytes;
  }

  /** Feed a chunk; returns the events it completed. */
  push(chunk: Uint8Array | string): SseEvent[] {
    this.#buffer += typeof chunk === 'string' ? chunk : this.#decoder.decode(chunk, { stream: true });
    const out: SseEvent[] = [];
    let start = 0;
    for (;;) {
      let nl = -1;
      let skip = 1;
      for (let i = start; i < this.#buffer.length; i++) {
        const c = this.#buffer.charCodeAt(i);
        if (c === 10) { nl = i; break; }
        if (c === 13) {
          // \r\n counts as one line end; a lone \r at the end of the buffer waits for the next chunk.
          if (i + 1 === this.#buffer.length) break;
          nl = i;
          skip = this.#buffer.charCodeAt(i + 1) === 10 ? 2 : 1;
          break;
        }
      }
      if (nl < 0) break;
      this.#line(this.#buffer.slice(start, nl), out);
      start = nl + skip;
    }
    this.#buffer = this.#buffer.slice(start);
    if (this.#buffer.length > this.#maxEventBytes) throw new Error('SSE line exceeds the size limit');
    return out;
  }

  /** Flush at end of stream: an event without its final blank line is still dispatched. */
  end(): SseEvent[] {
    const out: SseEvent[] = [];
    if (this.#buffer.length > 0) this.#line(this.#buffer, out);
    this.#buffer = '';
    this.#line('', out);
    return out;
  }

  #line(line: string, out: SseEvent[]): void {
    if (line === '') {
      if (this.#data.length > 0) {
        const ev: SseEvent = { data: this.#data.join('\n') };
        if (this.#event !== undefined) ev.event = this.#event;
        out.push(ev);
      }
      this.#data = [];
      this.#event = undefined;
      return;
    }
    if (line.charCodeAt(0) === 58) return; // ':' comment
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'data') this.#data.push(value);
    else if (field === 'event') this.#event = value;
  }
}

/** Encode one SSE frame. */
export function sseFrame(data: string, event?: string): string {
  return event === undefined ? `data: ${data}\n\n` : `event: ${event}\ndata: ${data}\n\n`;
}
