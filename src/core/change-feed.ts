/**
 * The change feed (issue 15 item 2): how a change made on one node (a key revoked, a plan or the catalog changed)
 * reaches every node within a second. Implementations: Redis pub/sub (`store/redis/change-feed.ts`), PostgreSQL
 * LISTEN/NOTIFY (`store/postgres`), and `MemoryChangeFeed` below (one process; tests). Delivery is at most once:
 * an implementation that lost its connection announces every topic once it is back (origin = its own node id), and
 * nodes keep their periodic refresh as the backstop.
 */

/** What changed; a node refreshes the matching snapshot on receipt. */
export type ChangeTopic = 'keys' | 'accounts' | 'plans' | 'catalog' | 'offers';

export const CHANGE_TOPICS: readonly ChangeTopic[] = ['keys', 'accounts', 'plans', 'catalog', 'offers'];

export interface Change {
  topic: ChangeTopic;
  /** The id of the changed thing (key id, account id, ...) when known; a node may refresh everything anyway. */
  id?: string;
  /** The publishing node's id (`ChangeFeed.nodeId`); a node may ignore its own changes. */
  origin: string;
}

export interface ChangeFeed {
  /** This node's id (random per process), stamped as `origin` on what it publishes. */
  readonly nodeId: string;
  /** Tell every node (this one included) that something changed. Resolves once the broker accepted it. */
  publish(topic: ChangeTopic, id?: string): Promise<void>;
  /** Call `handler` for every change published by any node, from now on. Returns the unsubscribe function. */
  subscribe(handler: (change: Change) => void): () => void;
  /** Stop listening and close the connections this feed opened. */
  close(): Promise<void>;
}

/** The wire form shared by the implementations: `{"t":topic,"i":id?,"o":origin}`. */
export function encodeChange(c: Change): string {
  return JSON.stringify(c.id === undefined ? { t: c.topic, o: c.origin } : { t: c.topic, i: c.id, o: c.origin });
}

/** Parses the wire form; anything malformed (another program on the channel) is `undefined`, never a throw. */
export function decodeChange(text: string): Change | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const { t, i, o } = v as { t?: unknown; i?: unknown; o?: unknown };
  if (typeof t !== 'string' || !(CHANGE_TOPICS as readonly string[]).includes(t) || typeof o !== 'string') return undefined;
  if (i !== undefined && typeof i !== 'string') return undefined;
  return i === undefined ? { topic: t as ChangeTopic, origin: o } : { topic: t as ChangeTopic, id: i, origin: o };
}

/** Calls every handler, isolating one handler's throw from the others. */
export class ChangeHandlers {
  readonly #handlers = new Set<(change: Change) => void>();
  constructor(private readonly onError: (err: unknown) => void = () => {}) {}
  add(handler: (change: Change) => void): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }
  emit(change: Change): void {
    for (const h of this.#handlers) {
      try {
        h(change);
      } catch (e) {
        this.onError(e);
      }
    }
  }
}

/** In one process: feeds created over the same hub see each other's changes (tests, single node). */
export class MemoryChangeFeed implements ChangeFeed {
  readonly #handlers = new ChangeHandlers();
  #closed = false;
  constructor(
    readonly nodeId: string,
    private readonly hub: Set<MemoryChangeFeed> = new Set(),
  ) {
    hub.add(this);
  }
  async publish(topic: ChangeTopic, id?: string): Promise<void> {
    const change: Change = id === undefined ? { topic, origin: this.nodeId } : { topic, id, origin: this.nodeId };
    for (const feed of this.hub) if (!feed.#closed) feed.#handlers.emit(change);
  }
  subscribe(handler: (change: Change) => void): () => void {
    return this.#handlers.add(handler);
  }
  async close(): Promise<void> {
    this.#closed = true;
    this.hub.delete(this);
  }
}

/**
 * Several feeds as one: publish on every one (resolves when at least one broker accepted it), hear every one. The
 * app uses it with Redis pub/sub and PostgreSQL LISTEN/NOTIFY together, so a node that runs without Redis (Redis
 * was unreachable when it started) still hears the nodes that have it, and a change still travels while one of
 * the two is down. A change heard twice is refreshed twice (refreshes are idempotent and folded).
 */
export class FanoutChangeFeed implements ChangeFeed {
  readonly nodeId: string;
  constructor(private readonly feeds: readonly ChangeFeed[]) {
    if (feeds.length === 0) throw new Error('FanoutChangeFeed needs at least one feed');
    this.nodeId = feeds[0]!.nodeId;
  }

  async publish(topic: ChangeTopic, id?: string): Promise<void> {
    const results = await Promise.allSettled(this.feeds.map((f) => f.publish(topic, id)));
    if (results.every((r) => r.status === 'rejected')) throw (results[0] as PromiseRejectedResult).reason;
  }

  subscribe(handler: (change: Change) => void): () => void {
    const offs = this.feeds.map((f) => f.subscribe(handler));
    return () => {
      for (const off of offs) off();
    };
  }

  /** The feeds are their owners' to close (the app closes each). */
  async close(): Promise<void> {}
}
