import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenGridError } from '../../core/index.ts';
import { IdempotencyBook, type IdempotencyStore, MAX_STORED_ANSWER_BYTES } from '../../gateway/index.ts';

const code = async (f: () => unknown): Promise<string | undefined> => {
  try {
    await f();
    return undefined;
  } catch (e) {
    return e instanceof TokenGridError ? e.code : 'other';
  }
};

const body = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };
const answer = { status: 200, body: '{"id":"x"}', contentType: 'application/json' };
const C = '/v1/chat/completions';

/**
 * The behaviour of inference Idempotency-Keys whatever store holds them: run on the memory store (gateway/idempotency.test.ts) and on
 * PostgreSQL's (store/postgres/idempotency-store.test.ts). `store()` gives an empty store for each test.
 */
export function idempotencyContract(name: string, store: () => IdempotencyStore): void {
  describe(`IdempotencyBook on ${name}`, () => {
    const open = (now: () => number = () => 0, ttlMs?: number, waitMsMax?: number, sleep?: (ms: number) => Promise<void>): IdempotencyBook =>
      new IdempotencyBook(now, ttlMs, undefined, waitMsMax, sleep, store());

    test('no header: nothing is tracked', async () => {
      assert.equal(await open().begin('key_1', C, undefined, body), undefined);
    });

    test('a running duplicate waits and replays the answer; another body -> 409 reused; another API key -> runs', async () => {
      const book = open();
      const first = (await book.begin('key_1', C, 'k', body))!;
      assert.equal(first.replay, undefined);
      const waiting = book.begin('key_1', C, 'k', body);
      let settled = false;
      void waiting.then(() => {
        settled = true;
      });
      await new Promise((r) => setImmediate(r));
      assert.equal(settled, false, 'the duplicate waits while the first runs');
      await first.complete(answer);
      assert.deepEqual((await waiting)!.replay, answer, 'then replays its answer');
      assert.deepEqual((await book.begin('key_1', C, 'k', body))!.replay, answer);
      assert.equal(await code(() => book.begin('key_1', C, 'k', { ...body, model: 'other' })), 'idempotency_key_reused');
      assert.equal((await book.begin('key_2', C, 'k', body))!.replay, undefined, 'scoped per API key');
    });

    test('a waiting duplicate runs itself when the first fails, and gets 409 when the wait bound passes', async () => {
      const book = open();
      const first = (await book.begin('key_1', C, 'f', body))!;
      const waiting = book.begin('key_1', C, 'f', body);
      await first.abandon();
      const second = (await waiting)!;
      assert.equal(second.replay, undefined, 'the first failed: the duplicate runs');
      let wake = (): void => {};
      const bounded = open(undefined, undefined, 10, () => new Promise<void>((r) => (wake = r)));
      await bounded.begin('key_1', C, 'b', body);
      const late = code(() => bounded.begin('key_1', C, 'b', body));
      await new Promise((r) => setTimeout(r, 50));
      wake();
      assert.equal(await late, 'idempotency_in_progress');
    });

    test('a streamed duplicate is not held back (a stream is never replayed): 409 in progress, then 409 reused', async () => {
      const book = open();
      const streamed = { ...body, stream: true };
      const first = (await book.begin('key_1', C, 's', streamed))!;
      assert.equal(await code(() => book.begin('key_1', C, 's', streamed)), 'idempotency_in_progress');
      await first.complete(undefined);
      assert.equal(await code(() => book.begin('key_1', C, 's', streamed)), 'idempotency_key_reused');
      await (await book.begin('key_1', C, 'g', body))!.abandon();
      assert.equal((await book.begin('key_1', C, 'g', body))!.replay, undefined, 'a failed request frees its key');
    });

    test('an answer over 1 MiB is not kept: the retry gets 409 reused instead of running (and being charged) again', async () => {
      const book = open();
      const big = { ...answer, body: `"${'x'.repeat(MAX_STORED_ANSWER_BYTES)}"` };
      await (await book.begin('key_1', C, 'big', body))!.complete(big);
      assert.equal(await code(() => book.begin('key_1', C, 'big', body)), 'idempotency_key_reused');
    });

    test('entries expire after the time limit', async () => {
      let now = 0;
      const book = open(() => now, 1_000);
      await (await book.begin('key_1', C, 'a', body))!.complete(answer);
      now = 999;
      assert.deepEqual((await book.begin('key_1', C, 'a', body))!.replay, answer);
      now = 1_001;
      assert.equal((await book.begin('key_1', C, 'a', body))!.replay, undefined, 'expired: runs again');
    });

    test('an answer is replayed only on the endpoint that produced it (never an OpenAI body on /v1/messages)', async () => {
      const book = open();
      await (await book.begin('key_1', C, 'e', body))!.complete(answer);
      assert.equal((await book.begin('key_1', '/v1/messages', 'e', body))!.replay, undefined, 'runs on its own endpoint');
      assert.deepEqual((await book.begin('key_1', C, 'e', body))!.replay, answer);
    });

    test('a malformed key is a 400', async () => {
      const book = open();
      assert.equal(await code(() => book.begin('key_1', C, 'has space', body)), 'invalid_request');
      assert.equal(await code(() => book.begin('key_1', C, ['a', 'b'], body)), 'invalid_request');
    });
  });
}
