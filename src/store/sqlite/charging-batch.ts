/**
 * Group commit. Operations submitted during one event-loop turn (concurrent requests) run one after another
 * inside ONE SQLite transaction, and all of them are answered only after that transaction committed. Commit cost
 * (WAL append; the fsyncs of checkpoints) is then paid once per batch instead of once per operation; each
 * operation still sees every earlier one, so decisions are the same as one transaction per operation. A failing
 * operation fails alone (the store re-runs the batch with a savepoint per operation); a failing COMMIT fails the
 * whole batch (nothing of it is durable, nothing was answered).
 *
 * At concurrency 1 (the previous batch held one operation and nothing else arrived this turn) an operation
 * commits at once instead of waiting a loop turn for company that is not coming; a second operation in the same
 * turn goes back to batching, so under load batches form again.
 */
export type Outcome<O> = { ok: true; value: O } | { ok: false; error: unknown };

interface Pending<I, O> {
  item: I;
  resolve: (v: O) => void;
  reject: (e: unknown) => void;
}

export class GroupCommitter<I, O> {
  readonly #runBatch: (items: I[]) => Outcome<O>[];
  readonly #onBatchFailure: (error: unknown) => void;
  readonly #batchMax: number;
  #queue: Pending<I, O>[] = [];
  #scheduled = false;
  #lastBatchSize = 0;
  #ranInline = false;
  // Made once, not per operation (every request submits one): the promise executor, which hands its resolve and
  // reject over through the two fields, and the setImmediate callbacks.
  #nextResolve: ((v: O) => void) | undefined;
  #nextReject: ((e: unknown) => void) | undefined;
  readonly #capture = (resolve: (v: O) => void, reject: (e: unknown) => void): void => {
    this.#nextResolve = resolve;
    this.#nextReject = reject;
  };
  readonly #flushLater = (): void => this.flushNow();
  readonly #endTurn = (): void => {
    this.#ranInline = false;
  };

  /** runBatch executes the items in one transaction and returns one outcome per item, in order. */
  constructor(runBatch: (items: I[]) => Outcome<O>[], onBatchFailure: (error: unknown) => void, batchMax = 256) {
    this.#runBatch = runBatch;
    this.#onBatchFailure = onBatchFailure;
    this.#batchMax = batchMax;
  }

  submit(item: I): Promise<O> {
    const promise = new Promise<O>(this.#capture);
    const resolve = this.#nextResolve!;
    const reject = this.#nextReject!;
    this.#queue.push({ item, resolve, reject });
    try {
      if (!this.#scheduled && !this.#ranInline && this.#lastBatchSize === 1 && this.#queue.length === 1) {
        // Concurrency 1 (the last batch ran alone, nothing is queued, nothing ran inline this turn): commit now and
        // skip the loop-turn hop. A second operation in the same turn takes the batched path, so under load
        // batches grow again and lastBatchSize leaves 1.
        this.#ranInline = true;
        setImmediate(this.#endTurn);
        this.flushNow();
      } else if (!this.#scheduled) {
        this.#scheduled = true;
        // setImmediate, not a microtask: it runs after this turn's I/O callbacks, so requests that arrived
        // together share a batch, at the cost of one loop turn of latency for a lone request.
        setImmediate(this.#flushLater);
      }
    } catch (error) {
      reject(error); // as a throw inside a promise executor would (ignored once the operation was answered)
    }
    return promise;
  }

  /** Operations queued and not yet run. */
  get pending(): number {
    return this.#queue.length;
  }

  /** Run everything queued now (also used before a management write, to keep submission order). */
  flushNow(): void {
    this.#scheduled = false;
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#batchMax);
      this.#lastBatchSize = batch.length;
      const items: I[] = [];
      for (const p of batch) items.push(p.item);
      let outcomes: Outcome<O>[];
      try {
        outcomes = this.#runBatch(items);
      } catch (error) {
        this.#onBatchFailure(error);
        for (const p of batch) p.reject(error);
        continue;
      }
      for (let i = 0; i < batch.length; i++) {
        const p = batch[i]!;
        const o = outcomes[i]!;
        if (o.ok) p.resolve(o.value);
        else p.reject(o.error);
      }
    }
  }
}
