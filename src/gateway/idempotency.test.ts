import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenGridError } from '../core/index.ts';
import { IdempotencyBook } from './idempotency.ts';

const code = async (f: () => unknown): Promise<string | undefined> => {
  try {
    await f();
    return undefined;
  } catch (e) {
    return e instanceof TokenGridError ? e.code : 'other';
  }
};

describe('IdempotencyBook', () => {
  const body = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };
  const answer = { status: 200, body: '{"id":"x"}', contentType: 'application/json' };

  test('no header: nothing is tracked', async () => {
    const book = new IdempotencyBook(() => 0);
    assert.equal(await book.begin('key_1', '/v1/chat/completions', undefined, body), undefined);
    assert.equal(book.size, 0);
  });

  test('a running duplicate waits and replays the answer; another body -> 409 reused; another API key -> runs', async () => {
    const book = new IdempotencyBook(() => 0);
    const first = (await book.begin('key_1', '/v1/chat/completions', 'k', body))!;
    assert.equal(first.replay, undefined);
    const waiting = book.begin('key_1', '/v1/chat/completions', 'k', body);
    let settled = false;
    void waiting.then(() => {
      settled = true;
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(settled, false, 'the duplicate waits while the first runs');
    first.complete(answer);
    assert.deepEqual((await waiting)!.replay, answer, 'then replays its answer');
    assert.deepEqual((await book.begin('key_1', '/v1/chat/completions', 'k', body))!.replay, answer);
    assert.equal(await code(() => book.begin('key_1', '/v1/chat/completions', 'k', { ...body, model: 'other' })), 'idempotency_key_reused');
    assert.equal((await book.begin('key_2', '/v1/chat/completions', 'k', body))!.replay, undefined, 'scoped per API key');
  });

  test('a waiting duplicate runs itself when the first fails, and gets 409 when the wait bound passes', async () => {
    const book = new IdempotencyBook(() => 0);
    const first = (await book.begin('key_1', '/v1/chat/completions', 'f', body))!;
    const waiting = book.begin('key_1', '/v1/chat/completions', 'f', body);
    first.abandon();
    const second = (await waiting)!;
    assert.equal(second.replay, undefined, 'the first failed: the duplicate runs');
    let wake = (): void => {};
    const bounded = new IdempotencyBook(
      () => 0,
      undefined,
      undefined,
      10,
      () =>
        new Promise<void>((r) => {
          wake = r;
        }),
    );
    await bounded.begin('key_1', '/v1/chat/completions', 'b', body);
    const late = code(() => bounded.begin('key_1', '/v1/chat/completions', 'b', body));
    await new Promise((r) => setImmediate(r));
    wake();
    assert.equal(await late, 'idempotency_in_progress');
  });

  test('a streamed duplicate is not held back (a stream is never replayed): 409 in progress, then 409 reused', async () => {
    const book = new IdempotencyBook(() => 0);
    const streamed = { ...body, stream: true };
    const first = (await book.begin('key_1', '/v1/chat/completions', 's', streamed))!;
    assert.equal(await code(() => book.begin('key_1', '/v1/chat/completions', 's', streamed)), 'idempotency_in_progress');
    first.complete(undefined);
    assert.equal(await code(() => book.begin('key_1', '/v1/chat/completions', 's', streamed)), 'idempotency_key_reused');
    (await book.begin('key_1', '/v1/chat/completions', 'g', body))!.abandon();
    assert.equal((await book.begin('key_1', '/v1/chat/completions', 'g', body))!.replay, undefined, 'a failed request frees its key');
  });

  test('entries expire after the time limit and the book stays bounded', async () => {
    let now = 0;
    const book = new IdempotencyBook(() => now, 1_000, 3);
    (await book.begin('key_1', '/v1/chat/completions', 'a', body))!.complete(answer);
    now = 1_001;
    assert.equal((await book.begin('key_1', '/v1/chat/completions', 'a', body))!.replay, undefined, 'expired: runs again');
    for (const k of ['b', 'c', 'd', 'e']) (await book.begin('key_1', '/v1/chat/completions', k, body))!.complete(answer);
    assert.ok(book.size <= 3, `bounded: ${book.size}`);
  });

  test('an answer is replayed only on the endpoint that produced it (never an OpenAI body on /v1/messages)', async () => {
    const book = new IdempotencyBook(() => 0);
    (await book.begin('key_1', '/v1/chat/completions', 'e', body))!.complete(answer);
    assert.equal((await book.begin('key_1', '/v1/messages', 'e', body))!.replay, undefined, 'runs on its own endpoint');
    assert.deepEqual((await book.begin('key_1', '/v1/chat/completions', 'e', body))!.replay, answer);
  });

  test('a malformed key is a 400', async () => {
    const book = new IdempotencyBook(() => 0);
    assert.equal(await code(() => book.begin('key_1', '/v1/chat/completions', 'has space', body)), 'invalid_request');
    assert.equal(await code(() => book.begin('key_1', '/v1/chat/completions', ['a', 'b'], body)), 'invalid_request');
  });
});
