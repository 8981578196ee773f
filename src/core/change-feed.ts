/**
 * The ChangeFeed port: tells every node of a deployment that cached state changed, so each refreshes it from the
 * store within a second. Topics are coarse on purpose: a subscriber reloads what it caches for the topic.
 * 'keys': API keys, accounts or members changed (refreshKeys); 'plans': subscriptions, entitlements or offers
 * changed (refreshPlanLimits); 'catalog': the catalog or configuration changed.
 * Implementations: LocalChangeFeed (one process: SQLite, memory), PostgreSQL LISTEN/NOTIFY, Redis pub/sub.
 * A burst of publishes may reach a subscriber as fewer calls; subscribers must be idempotent.
 */
export type ChangeTopic = 'keys' | 'plans' | 'catalog';

export const CHANGE_TOPICS: readonly ChangeTopic[] = ['keys', 'plans', 'catalog'];

export interface ChangeFeed {
  /** Tell every node (this one included) that `topic` changed. */
  publish(topic: ChangeTopic): Promise<void>;
  /** Call `onChange` whenever any node publishes `topic`. Returns the unsubscribe function. */
  subscribe(topic: ChangeTopic, onChange: () => void): () => void;
  /** Stop listening and release connections. */
  close(): Promise<void>;
}

export function isChangeTopic(s: string): s is ChangeTopic {
  return (CHANGE_TOPICS as readonly string[]).includes(s);
}

/** Subscriber bookkeeping shared by the implementations. */
export class ChangeSubscribers {
  readonly #byTopic = new Map<ChangeTopic, Set<() => void>>();

  add(topic: ChangeTopic, onChange: () => void): () => void {
    let set = this.#byTopic.get(topic);
    if (!set) {
      set = new Set();
      this.#byTopic.set(topic, set);
    }
    set.add(onChange);
    return () => {
      set.delete(onChange);
    };
  }

  /** Calls every subscriber of `topic`; one that throws does not stop the others. */
  notify(topic: ChangeTopic): void {
    const set = this.#byTopic.get(topic);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn();
      } catch {
        // A subscriber's failure is its own; the feed keeps delivering.
      }
    }
  }
}

/** One process: publish reaches this process's subscribers (SQLite and memory engines). */
export class LocalChangeFeed implements ChangeFeed {
  readonly #subs = new ChangeSubscribers();

  async publish(topic: ChangeTopic): Promise<void> {
    this.#subs.notify(topic);
  }

  subscribe(topic: ChangeTopic, onChange: () => void): () => void {
    return this.#subs.add(topic, onChange);
  }

  async close(): Promise<void> {}
}
