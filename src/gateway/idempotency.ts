import { sha256Hex, TokenGridError } from '../core/index.ts';

/**
 * `Idempotency-Key` on inference requests (issue 12, finding 1): explicit, scoped per API key, never a
 * charging identity. Every HTTP request still gets its own server request id, reservation and usage record;
 * the key only decides whether a request runs at all:
 * - first use: the request runs; a non-streamed answer's body is kept for `ttlMs` and replayed, byte for
 *   byte, to a later request with the same key and the same body (no new reservation, nothing charged);
 * - a non-streamed duplicate while the first still runs waits for it (at most `waitMsMax`) and replays its answer,
 *   or runs itself if the first failed; a streamed duplicate (a stream is never replayed), or one that waited
 *   `waitMsMax` in vain, gets 409 `idempotency_in_progress`. Either way it never shares the first one's hold;
 * - the same key with another body: 409 `idempotency_key_reused`;
 * - a completed stream cannot be replayed: 409 `idempotency_key_reused` says so;
 * - a request that failed (an error answer, nothing charged) frees the key for a retry.
 * In memory, one process (like the holds); at most `maxEntries`, the oldest dropped first.
 */
export interface IdempotencyTicket {
  /** The stored answer to replay, when the key already completed with the same body. */
  replay?: { status: number; body: string; contentType: string };
  /** Record the answer of the first request (non-streamed; a stream passes undefined). */
  complete(answer: { status: number; body: string; contentType: string } | undefined): void;
  /** The request failed without an answer worth replaying: free the key. */
  abandon(): void;
}

interface Entry {
  fingerprint: string;
  running: boolean;
  streamed: boolean;
  /** Settled when the first request completes or is abandoned (duplicates wait on it). */
  done: Promise<void>;
  finish: () => void;
  answer: { status: number; body: string; contentType: string } | undefined;
  expiresAtMs: number;
}

const KEY_SHAPE = /^[\x21-\x7e]{1,255}$/;

export class IdempotencyBook {
  readonly #entries = new Map<string, Entry>();
  constructor(
    readonly nowMs: () => number,
    readonly ttlMs = 24 * 3_600_000,
    readonly maxEntries = 10_000,
    /** How long a non-streamed duplicate waits for the first request before it gets 409 (the body timeout's order). */
    readonly waitMsMax = 300_000,
    /** A timer for that bound (injected so the book stays pure; resolves after ms). */
    readonly sleep: (ms: number) => Promise<void> = () => new Promise<void>(() => {}),
  ) {}

  get size(): number {
    return this.#entries.size;
  }

  /**
   * Scoped by the API key id and the endpoint (a key's answer from /v1/chat/completions is never replayed on
   * /v1/messages, where it would be the wrong format).
   * undefined when the request carries no key (the common case: nothing allocated). Throws the 409s above.
   * The fingerprint is the request body's (its parsed JSON, so it covers `stream` too), read only when a key is sent.
   */
  async begin(keyId: string, endpoint: string, header: string | string[] | undefined, body: unknown): Promise<IdempotencyTicket | undefined> {
    if (header === undefined) return undefined;
    const fingerprint = sha256Hex(JSON.stringify(body) ?? '');
    if (typeof header !== 'string' || !KEY_SHAPE.test(header)) {
      throw new TokenGridError('invalid_request', 'The Idempotency-Key header must be 1 to 255 visible ASCII characters.', 'Idempotency-Key');
    }
    const now = this.nowMs();
    const id = `${keyId}\u0000${endpoint}\u0000${header}`;
    const prior = this.#entries.get(id);
    if (prior !== undefined && prior.expiresAtMs > now) {
      if (prior.fingerprint !== fingerprint) {
        throw new TokenGridError(
          'idempotency_key_reused',
          'This Idempotency-Key was already used with a different request body; use a new key for a new request.',
        );
      }
      if (prior.running && !prior.streamed) {
        // Wait for the first one, then take its outcome: replay its answer, or run if it failed (issue 12).
        let waited = false;
        await Promise.race([
          prior.done,
          this.sleep(this.waitMsMax).then(() => {
            waited = true;
          }),
        ]);
        if (!waited) return this.begin(keyId, endpoint, header, body);
      }
      if (prior.running) {
        throw new TokenGridError(
          'idempotency_in_progress',
          prior.streamed
            ? 'A streamed request with this Idempotency-Key is still running, and a stream is not replayed; use a new key for a new request.'
            : 'A request with this Idempotency-Key has been running for 5 minutes; retry later to get its answer.',
          null,
          { 'retry-after': '1' },
        );
      }
      if (prior.answer === undefined) {
        throw new TokenGridError(
          'idempotency_key_reused',
          'This Idempotency-Key belongs to a streamed request that already completed; a stream is not replayed. Use a new key for a new request.',
        );
      }
      const answer = prior.answer;
      return { replay: answer, complete() {}, abandon() {} };
    }
    if (prior !== undefined) this.#entries.delete(id);
    this.#sweep(now);
    let finish = (): void => {};
    const done = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const streamed = typeof body === 'object' && body !== null && (body as { stream?: unknown }).stream === true;
    const entry: Entry = { fingerprint, running: true, streamed, done, finish, answer: undefined, expiresAtMs: now + this.ttlMs };
    this.#entries.set(id, entry);
    const book = this.#entries;
    return {
      complete(answer) {
        entry.running = false;
        entry.answer = answer;
        entry.finish();
      },
      abandon() {
        if (book.get(id) === entry) book.delete(id);
        entry.running = false;
        entry.finish();
      },
    };
  }

  /**
   * Drop expired entries from the oldest end, and the oldest beyond maxEntries. A running request keeps its
   * key until it ends (skipped, not a stop: the scan passes at most the requests in flight).
   */
  #sweep(now: number): void {
    for (const [k, e] of this.#entries) {
      if (this.#entries.size < this.maxEntries && e.expiresAtMs > now) break;
      if (e.running) continue;
      this.#entries.delete(k);
    }
  }
}
