/**
 * The change feed on PostgreSQL LISTEN/NOTIFY (issue 15 item 2), for deployments without Redis: `publish` is one
 * `pg_notify` on the engine's channel (`tokengrid_changes`, or `tgc_<schema>` for another schema, so test schemas
 * never hear each other), delivered to every node's listening connection, typically within milliseconds. The
 * payload is the shared wire form (`encodeChange`). The listener holds one dedicated connection, not a pooled one.
 * Delivery is at most once: when that connection drops, the feed reconnects (every second) and then announces
 * every topic with origin `'*'`, so each node refreshes what it may have missed.
 */
import pg from 'pg';
import { CHANGE_TOPICS, ChangeHandlers, decodeChange, encodeChange, type Change, type ChangeFeed, type ChangeTopic } from '../../core/index.ts';
import type { PgDb } from './db.ts';

export function channelOf(schema: string): string {
  return schema === 'public' ? 'tokengrid_changes' : `tgc_${schema}`.slice(0, 63);
}

export interface PgChangeFeedOptions {
  db: PgDb;
  /** The database URL (the listener opens its own connection). */
  url: string;
  nodeId: string;
  /** A handler threw, or a message was malformed. */
  onError?: (err: unknown) => void;
}

export class PgChangeFeed implements ChangeFeed {
  readonly nodeId: string;
  readonly channel: string;
  readonly #o: PgChangeFeedOptions;
  readonly #handlers: ChangeHandlers;
  #client: pg.Client | null = null;
  #closed = false;
  #retry: NodeJS.Timeout | null = null;

  private constructor(o: PgChangeFeedOptions) {
    this.#o = o;
    this.nodeId = o.nodeId;
    this.channel = channelOf(o.db.schema);
    this.#handlers = new ChangeHandlers(o.onError);
  }

  /** Listens, and resolves once LISTEN is in place. */
  static async open(o: PgChangeFeedOptions): Promise<PgChangeFeed> {
    const feed = new PgChangeFeed(o);
    await feed.#listen();
    return feed;
  }

  async #listen(): Promise<void> {
    const c = new pg.Client({ connectionString: this.#o.url, application_name: 'tokengrid-changes' });
    c.on('notification', (n) => {
      if (n.channel !== this.channel || n.payload === undefined) return;
      const change = decodeChange(n.payload);
      if (change === undefined) this.#o.onError?.(new Error(`malformed change on ${n.channel}: ${n.payload.slice(0, 100)}`));
      else this.#handlers.emit(change);
    });
    c.on('error', () => this.#lost(c));
    c.on('end', () => this.#lost(c));
    try {
      await c.connect();
      await c.query(`LISTEN ${pg.escapeIdentifier(this.channel)}`);
    } catch (error) {
      c.end().catch(() => {});
      throw error;
    }
    this.#client = c;
  }

  #lost(c: pg.Client): void {
    if (this.#client !== c || this.#closed) return;
    this.#client = null;
    c.end().catch(() => {});
    const again = (): void => {
      this.#retry = null;
      if (this.#closed) return;
      this.#listen().then(
        () => {
          for (const topic of CHANGE_TOPICS) this.#handlers.emit({ topic, origin: '*' });
        },
        () => {
          this.#retry = setTimeout(again, 1000);
          this.#retry.unref();
        },
      );
    };
    this.#retry = setTimeout(again, 1000);
    this.#retry.unref();
  }

  async publish(topic: ChangeTopic, id?: string): Promise<void> {
    const change: Change = id === undefined ? { topic, origin: this.nodeId } : { topic, id, origin: this.nodeId };
    await this.#o.db.query('SELECT pg_notify($1, $2)', [this.channel, encodeChange(change)]);
  }

  subscribe(handler: (change: Change) => void): () => void {
    return this.#handlers.add(handler);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#retry !== null) clearTimeout(this.#retry);
    const c = this.#client;
    this.#client = null;
    if (c !== null) await c.end().catch(() => {});
  }

  /** Tests: drop the listening connection as a network cut would. */
  dropConnectionForTest(): void {
    const c = this.#client;
    if (c !== null) this.#lost(c);
  }
}
