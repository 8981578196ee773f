/**
 * The change feed on Redis pub/sub (issue 15 item 2): one PUBLISH per change on channel `<prefix>changes`, one
 * subscriber connection per node. Pub/sub delivers at most once; when the subscriber reconnects (Redis restarted, a
 * network cut) this feed announces every topic with origin `'*'`, so the node refreshes what it may have missed.
 */
import type { Redis } from 'ioredis';
import { CHANGE_TOPICS, ChangeHandlers, decodeChange, encodeChange, type Change, type ChangeFeed, type ChangeTopic } from '../../core/index.ts';

export interface RedisChangeFeedOptions {
  /** Connection used to PUBLISH (shared with other work; not closed by the feed unless `ownsConnections`). */
  publisher: Redis;
  /** A connection of its own, put in subscriber mode by the feed. */
  subscriber: Redis;
  nodeId: string;
  /** Key prefix (default `tg:`): the channel is `<prefix>changes`. */
  prefix?: string;
  /** A handler threw, or a message was malformed. */
  onError?: (err: unknown) => void;
  /** close() also quits both connections (default false). */
  ownsConnections?: boolean;
}

export class RedisChangeFeed implements ChangeFeed {
  readonly nodeId: string;
  readonly channel: string;
  readonly #opts: RedisChangeFeedOptions;
  readonly #handlers: ChangeHandlers;
  #readyBefore = false;

  private constructor(opts: RedisChangeFeedOptions) {
    this.#opts = opts;
    this.nodeId = opts.nodeId;
    this.channel = `${opts.prefix ?? 'tg:'}changes`;
    this.#handlers = new ChangeHandlers(opts.onError);
  }

  /** Subscribes and resolves once the subscription is in place. */
  static async open(opts: RedisChangeFeedOptions): Promise<RedisChangeFeed> {
    const feed = new RedisChangeFeed(opts);
    const sub = opts.subscriber;
    sub.on('message', (channel: string, text: string) => {
      if (channel !== feed.channel) return;
      const change = decodeChange(text);
      if (change === undefined) opts.onError?.(new Error(`malformed change on ${channel}: ${text.slice(0, 100)}`));
      else feed.#handlers.emit(change);
    });
    // ioredis resubscribes by itself after a reconnect; what was published meanwhile is lost, so say "refresh all".
    sub.on('ready', () => {
      if (feed.#readyBefore) for (const topic of CHANGE_TOPICS) feed.#handlers.emit({ topic, origin: '*' });
    });
    await sub.subscribe(feed.channel);
    feed.#readyBefore = true;
    return feed;
  }

  async publish(topic: ChangeTopic, id?: string): Promise<void> {
    const change: Change = id === undefined ? { topic, origin: this.nodeId } : { topic, id, origin: this.nodeId };
    await this.#opts.publisher.publish(this.channel, encodeChange(change));
  }

  subscribe(handler: (change: Change) => void): () => void {
    return this.#handlers.add(handler);
  }

  async close(): Promise<void> {
    const sub = this.#opts.subscriber;
    sub.removeAllListeners('message');
    sub.removeAllListeners('ready');
    if (this.#opts.ownsConnections === true) {
      sub.disconnect();
      this.#opts.publisher.disconnect();
    } else {
      await sub.unsubscribe(this.channel).catch(() => {});
    }
  }
}
