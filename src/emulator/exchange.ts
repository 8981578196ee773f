import type { IncomingMessage, ServerResponse } from 'node:http';
import { failsAt } from './directives.ts';
import type { CapturedRequest, Directives, EmulatorStats, Pacing, RequestSettings } from './types.ts';
import { MALFORMED_FRAME, errorBody, injectedFailureMessage, streamErrorFrame, type Dialect } from './vendor-errors.ts';

/** Mutable state shared by all requests of one emulator instance. */
export interface ServerState {
  pacing: Pacing;
  stats: EmulatorStats;
  active: Set<Exchange>;
  failRateCounter: number;
  idCounter: number;
  /** The last JSON request per path (a reference, no copy; at most LAST_PATHS_MAX paths). */
  last: Map<string, CapturedRequest>;
  /** The emulated vendor prompt cache: (deployment identity, prefix) -> tokens (answer.ts promptCacheHit). */
  promptCache: Map<string, number>;
  log: (msg: string) => void;
}

/**
 * One request/response pair. Owns at most one pending timer, cleared when the client goes away,
 * so an aborted stream leaves nothing behind; `done` tells a client abort from our own ending.
 */
export class Exchange {
  timer: NodeJS.Timeout | undefined = undefined;
  done = false;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly state: ServerState,
  ) {
    state.active.add(this);
    res.once('close', () => this.#onClose());
  }

  #onClose(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.state.active.delete(this);
    if (!this.done) this.state.stats.aborted++;
  }

  /** Who calls (the API key as sent): with the dialect and model, the identity of an emulated deployment. */
  caller(): string {
    const h = this.req.headers;
    return String(h['authorization'] ?? h['x-api-key'] ?? h['x-goog-api-key'] ?? '');
  }

  later(ms: number, fn: () => void): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.res.destroyed) fn();
    }, ms);
  }

  /** Ends the exchange by killing the connection (emulator shutdown or injected disconnect). */
  destroy(): void {
    this.done = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.res.destroy();
    this.req.socket.destroy();
  }

  send(status: number, contentType: string, body: string, extra?: Record<string, string>): void {
    this.done = true;
    const headers: Record<string, string | number> = {
      'content-type': contentType,
      'content-length': Buffer.byteLength(body),
    };
    if (extra !== undefined) Object.assign(headers, extra);
    this.res.writeHead(status, headers);
    this.res.end(body);
  }

  json(status: number, body: string, extra?: Record<string, string>): void {
    this.send(status, 'application/json', body, extra);
  }

  error(dialect: Dialect, status: number, message: string): void {
    const extra = status === 429 ? { 'retry-after': '1' } : undefined;
    this.json(status, errorBody(dialect, status, message), extra);
  }

  nextId(): string {
    return (++this.state.idCounter).toString(36).padStart(10, '0');
  }
}

export function resolveSettings(p: Pacing, d: Directives): RequestSettings {
  const faults = { disconnectAfter: d.disconnectAfter, malformedAfter: d.malformedAfter, errorAfter: d.errorAfter };
  return {
    ttftMs: d.ttft ?? p.ttftMs,
    chunkIntervalMs: d.interval ?? p.chunkIntervalMs,
    tokensPerChunk: Math.max(1, d.chunk ?? p.tokensPerChunk),
    faults,
    hasFaults: d.disconnectAfter !== undefined || d.malformedAfter !== undefined || d.errorAfter !== undefined,
    noUsage: d.noUsage === true,
  };
}

/**
 * Applies fail / failRate / hang / hangMs before any generation. Calls `proceed` (now or after
 * hangMs) when the request should be answered normally.
 */
export function gate(ex: Exchange, d: Directives, dialect: Dialect, proceed: () => void): void {
  if (d.hang === true) return; // never answer; the 'close' listener counts the abort
  const run = (): void => {
    let failStatus: number | undefined;
    if (d.failRate !== undefined) {
      ex.state.failRateCounter++;
      if (failsAt(ex.state.failRateCounter, d.failRate)) failStatus = d.fail ?? 500;
    } else if (d.fail !== undefined) {
      failStatus = d.fail;
    }
    if (failStatus !== undefined && failStatus >= 400 && failStatus <= 599) {
      ex.error(dialect, failStatus, injectedFailureMessage(failStatus));
      return;
    }
    proceed();
  };
  if (d.hangMs !== undefined && d.hangMs > 0) ex.later(d.hangMs, run);
  else run();
}

/** Time a non-stream answer takes: until its last chunk would have been streamed. */
export function nonStreamDelayMs(s: RequestSettings, chunkCount: number): number {
  return s.ttftMs + Math.max(0, chunkCount - 1) * s.chunkIntervalMs;
}

/** Sends a non-stream JSON answer after the pacing delay, honouring disconnect/malformed faults. */
export function sendAnswerJson(ex: Exchange, s: RequestSettings, chunkCount: number, body: string): void {
  const delay = nonStreamDelayMs(s, chunkCount);
  const fire = (): void => {
    if (s.faults.disconnectAfter !== undefined) return ex.destroy();
    if (s.faults.malformedAfter !== undefined) return ex.json(200, body.slice(0, Math.floor(body.length / 2)));
    ex.json(200, body);
  };
  if (delay > 0) ex.later(delay, fire);
  else fire();
}

export interface StreamBody {
  dialect: Dialect;
  /** Written right after the headers (Anthropic message_start, content_block_start, ping). */
  head: string;
  /** Content chunks: the first at ttftMs, then one every chunkIntervalMs. */
  chunks: string[];
  /** Written right after the last chunk (finish, usage, terminal event). */
  tail: string;
}

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
};

export function sendStream(ex: Exchange, b: StreamBody, s: RequestSettings): void {
  const res = ex.res;
  res.writeHead(200, SSE_HEADERS);
  if (!s.hasFaults && s.ttftMs === 0 && s.chunkIntervalMs === 0) {
    // The zero-think-time path the benchmark runs: one write, no timers.
    ex.done = true;
    res.end(b.head + b.chunks.join('') + b.tail);
    return;
  }
  if (b.head !== '') res.write(b.head);
  else res.flushHeaders();
  if (s.ttftMs > 0) ex.later(s.ttftMs, () => pump(ex, b, s, 0));
  else pump(ex, b, s, 0);
}

/** Writes every chunk due from index i on; faults fire at their chunk index (clamped to the end). */
function pump(ex: Exchange, b: StreamBody, s: RequestSettings, start: number): void {
  const n = b.chunks.length;
  const f = s.faults;
  const at = (v: number | undefined): number => (v === undefined ? -1 : Math.min(v, n));
  let out = '';
  for (let i = start; ; ) {
    if (at(f.malformedAfter) === i) out += MALFORMED_FRAME;
    if (at(f.errorAfter) === i) {
      ex.done = true;
      ex.res.end(out + streamErrorFrame(b.dialect));
      return;
    }
    if (at(f.disconnectAfter) === i) {
      ex.done = true;
      // Let what was already produced reach the socket, then cut it: no terminal event.
      if (out === '') ex.destroy();
      else ex.res.write(out, () => ex.destroy());
      return;
    }
    if (i === n) {
      ex.done = true;
      ex.res.end(out + b.tail);
      return;
    }
    out += b.chunks[i];
    i++;
    if (s.chunkIntervalMs > 0 && i < n) {
      ex.res.write(out);
      const next = i;
      ex.later(s.chunkIntervalMs, () => pump(ex, b, s, next));
      return;
    }
  }
}
