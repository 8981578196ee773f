/**
 * ChangeFeed over PostgreSQL LISTEN/NOTIFY: `publish` is one `pg_notify` on the engine's channel (one per schema,
 * so test schemas never hear each other), delivered to every node's listening connection after the publisher's
 * commit, typically within milliseconds. The listener holds one dedicated connection (not from the pool). If it
 * drops, it reconnects (every second) and then tells every subscriber that everything changed, because notices sent
 * while it was away are lost.
 */
import pg from 'pg';
import { CHANGE_TOPICS, ChangeSubscribers, isChangeTopic, type ChangeFeed, type ChangeTopic } from '../../core/index.ts';
import type { PgDb } from './db.ts';

export function channelOf(schema: string): string {
  return `tgc_${schema}`.slice(0, 63);
}

export class PgChangeFeed implements ChangeFeed {
  readonly #db: PgDb;
  readonly #url: string;
  readonly #channel: string;
  readonly #subs = new ChangeSubscribers();
  #client: pg.Client | null = null;
  #closed = false;
  #retry: NodeJS.Timeout | null = null;

  constructor(db: PgDb, url: string) {
    this.#db = db;
    this.#url = url;
    this.#channel = channelOf(db.schema);
  }

  /** Opens the listening connection (resolves once LISTEN is in place). */
  async start(): Promise<void> {
    const c = new pg.Client({ connectionString: this.#url, application_name: 'tokengrid-changes' });
    c.on('notification', (n) => {
      if (n.channel === this.#channel && n.payload !== undefined && isChangeTopic(n.payload)) this.#subs.notify(n.payload);
    });
    c.on('error', () => this.#lost(c));
    c.on('end', () => this.#lost(c));
    await c.connect();
    await c.query(`LISTEN ${pg.escapeIdentifier(this.#channel)}`);
    this.#client = c;
  }

  #lost(c: pg.Client): void {
    if (this.#client !== c || this.#closed) return;
    this.#client = null;
    c.end().catch(() => {});
    const again = (): void => {
      this.#retry = null;
      if (this.#closed) return;
      this.start().then(
        () => {
          for (const t of CHANGE_TOPICS) this.#subs.notify(t); // what was published meanwhile is unknown
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

  async publish(topic: ChangeTopic): Promise<void> {
    await this.#db.query('SELECT pg_notify($1, $2)', [this.#channel, topic]);
  }

  subscribe(topic: ChangeTopic, onChange: () => void): () => void {
    return this.#subs.add(topic, onChange);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#retry !== null) clearTimeout(this.#retry);
    const c = this.#client;
    this.#client = null;
    if (c !== null) await c.end().catch(() => {});
  }
}

export async function openPgChangeFeed(db: PgDb, url: string): Promise<PgChangeFeed> {
  const feed = new PgChangeFeed(db, url);
  await feed.start();
  return feed;
}
