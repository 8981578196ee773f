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
 * - an answer larger than `MAX_STORED_ANSWER_BYTES` is not kept: a retry gets 409 `idempotency_key_reused`
 *   (it would run and be charged again otherwise);
 * - a request that failed (an error answer, nothing charged) frees the key for a retry.
 * Where the entries live is the `IdempotencyStore` port (issue 15): this process's memory (one node,
 * `MemoryIdempotencyStore`) or PostgreSQL, shared by every node (`store/postgres/idempotency-store.ts`).
 */
export interface IdempotencyTicket {
  /** The stored answer to replay, when the key already completed with the same body. */
  replay?: StoredAnswer;
  /** Record the answer of the first request (non-streamed; a stream passes undefined). Never throws. */
  complete(answer: StoredAnswer | undefined): Promise<void>;
  /** The request failed without an answer worth replaying: free the key. Never throws. */
  abandon(): Promise<void>;
}

export interface StoredAnswer {
  status: number;
  body: string;
  contentType: string;
}

/** Stored answers are capped (a bigger one is recorded as "not replayable"): 1 MiB of UTF-8. */
export const MAX_STORED_ANSWER_BYTES = 1_048_576;

export type IdempotencyClaim =
  /** The caller owns the key now (`token` identifies this claim to complete/release). */
  | { state: 'claimed'; token: string }
  | { state: 'running'; streamed: boolean }
  /** Completed: `response` undefined for a stream or an answer too big to keep (not replayable). */
  | { state: 'done'; response: StoredAnswer | undefined }
  | 'mismatch';

/**
 * Where Idempotency-Keys live (owned by the gateway). `scope` is the API key id (the tenant's bound: fairness),
 * `key` the endpoint and header. An entry expires `ttlMs` after its claim; an expired one is claimed anew.
 */
export interface IdempotencyStore {
  claim(scope: string, key: string, fingerprint: string, streamed: boolean, ttlMs: number, nowMs: number): Promise<IdempotencyClaim>;
  /** Records the outcome of the claim `token` (response undefined: done but not replayable). */
  complete(scope: string, key: string, token: string, response: StoredAnswer | undefined): Promise<void>;
  /** Frees the key of the claim `token` (the request failed: a retry may run). */
  release(scope: string, key: string, token: string): Promise<void>;
  /**
   * Resolves when the entry may have changed (completed or released), or after a poll interval that grows with
   * `attempt`; the caller claims again to see. Never rejects.
   */
  changed(scope: string, key: string, attempt: number): Promise<void>;
}

const KEY_SHAPE = /^[\x21-\x7e]{1,255}$/;

export class IdempotencyBook {
  readonly store: IdempotencyStore;
  constructor(
    readonly nowMs: () => number,
    readonly ttlMs = 24 * 3_600_000,
    /** The memory store's bound (unused with another store). */
    readonly maxEntries = 10_000,
    /** How long a non-streamed duplicate waits for the first request before it gets 409 (the body timeout's order). */
    readonly waitMsMax = 300_000,
    /** A timer for that bound (injected so the book stays pure; resolves after ms). */
    readonly sleep: (ms: number) => Promise<void> = () => new Promise<void>(() => {}),
    store?: IdempotencyStore,
    /** A store write failed after the request ran (the key stays claimed until it expires). */
    readonly onError: (err: unknown) => void = () => {},
  ) {
    this.store = store ?? new MemoryIdempotencyStore(maxEntries);
  }

  /** Entries held (memory store only; 0 otherwise). */
  get size(): number {
    return this.store instanceof MemoryIdempotencyStore ? this.store.size : 0;
  }

  /**
   * Scoped by the API key id and the endpoint (a key's answer from /v1/chat/completions is never replayed on
   * /v1/messages, where it would be the wrong format).
   * undefined when the request carries no key (the common case: the store is not touched). Throws the 409s above.
   * The fingerprint is the request body's (its parsed JSON, so it covers `stream` too), read only when a key is sent.
   */
  async begin(keyId: string, endpoint: string, header: string | string[] | undefined, body: unknown): Promise<IdempotencyTicket | undefined> {
    if (header === undefined) return undefined;
    const fingerprint = sha256Hex(JSON.stringify(body) ?? '');
    if (typeof header !== 'string' || !KEY_SHAPE.test(header)) {
      throw new TokenGridError('invalid_request', 'The Idempotency-Key header must be 1 to 255 visible ASCII characters.', 'Idempotency-Key');
    }
    // A space cannot occur in either part (PostgreSQL text takes no NUL).
    const key = `${endpoint} ${header}`;
    const streamed = typeof body === 'object' && body !== null && (body as { stream?: unknown }).stream === true;
    let claim = await this.store.claim(keyId, key, fingerprint, streamed, this.ttlMs, this.nowMs());
    if (claim !== 'mismatch' && claim.state === 'running' && !claim.streamed) {
      // Wait for the first one (on this node or another), then take its outcome: replay its answer, or run if it failed.
      let waited = false;
      const bound = this.sleep(this.waitMsMax).then(() => {
        waited = true;
      });
      for (let attempt = 0; claim !== 'mismatch' && claim.state === 'running' && !waited; attempt++) {
        await Promise.race([this.store.changed(keyId, key, attempt), bound]);
        if (waited) break;
        claim = await this.store.claim(keyId, key, fingerprint, streamed, this.ttlMs, this.nowMs());
      }
    }
    if (claim === 'mismatch') {
      throw new TokenGridError(
        'idempotency_key_reused',
        'This Idempotency-Key was already used with a different request body; use a new key for a new request.',
      );
    }
    if (claim.state === 'running') {
      throw new TokenGridError(
        'idempotency_in_progress',
        claim.streamed
          ? 'A streamed request with this Idempotency-Key is still running, and a stream is not replayed; use a new key for a new request.'
          : 'A request with this Idempotency-Key has been running for 5 minutes; retry later to get its answer.',
        null,
        { 'retry-after': '1' },
      );
    }
    if (claim.state === 'done') {
      if (claim.response === undefined) {
        throw new TokenGridError(
          'idempotency_key_reused',
          'This Idempotency-Key belongs to a request that already completed whose answer is not replayable (a stream, or an answer over 1 MiB). Use a new key for a new request.',
        );
      }
      return { replay: claim.response, complete: async () => {}, abandon: async () => {} };
    }
    const { token } = claim;
    const store = this.store;
    const onError = this.onError;
    return {
      async complete(answer) {
        const keep = answer !== undefined && Buffer.byteLength(answer.body, 'utf8') <= MAX_STORED_ANSWER_BYTES ? answer : undefined;
        await store.complete(keyId, key, token, keep).catch(onError);
      },
      async abandon() {
        await store.release(keyId, key, token).catch(onError);
      },
    };
  }
}

interface Entry {
  fingerprint: string;
  token: string;
  running: boolean;
  streamed: boolean;
  /** Settled when the first request completes or is released (duplicates wait on it). */
  done: Promise<void>;
  finish: () => void;
  answer: StoredAnswer | undefined;
  expiresAtMs: number;
}

/**
 * One process's book. Fairness (issue 15): entries are kept per scope (API key), each scope's in claim order; at
 * `maxEntries` in all, the entry dropped is the oldest finished one of the scope holding the MOST entries, so a
 * tenant flooding keys evicts its own entries, never those of a tenant holding fewer. A running request keeps
 * its entry until it ends.
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  readonly #scopes = new Map<string, Map<string, Entry>>();
  #size = 0;
  #claims = 0;
  constructor(readonly maxEntries = 10_000) {}

  get size(): number {
    return this.#size;
  }

  /** Entries held for one scope (tests). */
  sizeOf(scope: string): number {
    return this.#scopes.get(scope)?.size ?? 0;
  }

  async claim(scope: string, key: string, fingerprint: string, streamed: boolean, ttlMs: number, nowMs: number): Promise<IdempotencyClaim> {
    let entries = this.#scopes.get(scope);
    const prior = entries?.get(key);
    if (prior !== undefined && prior.expiresAtMs > nowMs) {
      if (prior.fingerprint !== fingerprint) return 'mismatch';
      if (prior.running) return { state: 'running', streamed: prior.streamed };
      return { state: 'done', response: prior.answer };
    }
    if (entries === undefined) {
      entries = new Map();
      this.#scopes.set(scope, entries);
    }
    if (prior !== undefined) this.#delete(scope, entries, key);
    this.#sweepExpired(entries, scope, nowMs);
    while (this.#size >= this.maxEntries && this.#evictFromLargest()) {}
    this.#scopes.set(scope, entries); // again, if sweeping or eviction emptied it
    let finish = (): void => {};
    const done = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const token = String(++this.#claims);
    entries.set(key, { fingerprint, token, running: true, streamed, done, finish, answer: undefined, expiresAtMs: nowMs + ttlMs });
    this.#size++;
    return { state: 'claimed', token };
  }

  async complete(scope: string, key: string, token: string, response: StoredAnswer | undefined): Promise<void> {
    const e = this.#scopes.get(scope)?.get(key);
    if (e === undefined || e.token !== token) return;
    e.running = false;
    e.answer = response;
    e.finish();
  }

  async release(scope: string, key: string, token: string): Promise<void> {
    const entries = this.#scopes.get(scope);
    const e = entries?.get(key);
    if (entries === undefined || e === undefined || e.token !== token || !e.running) return;
    this.#delete(scope, entries, key);
    e.running = false;
    e.finish();
  }

  changed(scope: string, key: string): Promise<void> {
    return this.#scopes.get(scope)?.get(key)?.done ?? Promise.resolve();
  }

  #delete(scope: string, entries: Map<string, Entry>, key: string): void {
    if (entries.delete(key)) this.#size--;
    if (entries.size === 0) this.#scopes.delete(scope);
  }

  /** Expired entries from this scope's oldest end (a running one is skipped, not a stop). */
  #sweepExpired(entries: Map<string, Entry>, scope: string, nowMs: number): void {
    for (const [k, e] of entries) {
      if (e.expiresAtMs > nowMs) break;
      if (e.running) continue;
      this.#delete(scope, entries, k);
    }
  }

  /**
   * Drops the oldest finished entry of the scope holding the most entries; false when none can go. One pass over
   * the scopes (only at the bound); a largest scope whose entries all still run (rare) falls back to a sorted pass.
   */
  #evictFromLargest(): boolean {
    let largest: [string, Map<string, Entry>] | undefined;
    for (const s of this.#scopes) if (largest === undefined || s[1].size > largest[1].size) largest = s;
    if (largest !== undefined && this.#evictOldestFinished(largest[0], largest[1])) return true;
    for (const [scope, entries] of [...this.#scopes].sort((x, y) => y[1].size - x[1].size)) {
      if (this.#evictOldestFinished(scope, entries)) return true;
    }
    return false;
  }

  #evictOldestFinished(scope: string, entries: Map<string, Entry>): boolean {
    for (const [k, e] of entries) {
      if (e.running) continue;
      this.#delete(scope, entries, k);
      return true;
    }
    return false;
  }
}
