import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenGridError } from '../core/index.ts';
import { idempotencyContract } from '../store/contract/idempotency-store.contract.ts';
import { IdempotencyBook, MemoryIdempotencyStore } from './idempotency.ts';

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

idempotencyContract('memory', () => new MemoryIdempotencyStore());

describe('MemoryIdempotencyStore', () => {
  test('no header: the store is not touched', async () => {
    const book = new IdempotencyBook(() => 0);
    assert.equal(await book.begin('key_1', C, undefined, body), undefined);
    assert.equal(book.size, 0);
  });

  test('the book stays bounded, and a running request keeps its entry', async () => {
    const book = new IdempotencyBook(() => 0, 1_000, 3);
    const running = (await book.begin('key_1', C, 'run', body))!;
    for (const k of ['b', 'c', 'd', 'e']) await (await book.begin('key_1', C, k, body))!.complete(answer);
    assert.ok(book.size <= 3, `bounded: ${book.size}`);
    assert.equal(await code(() => book.begin('key_1', C, 'run', { ...body, stream: true })), 'idempotency_key_reused', 'still there');
    await running.abandon();
  });

  test('one tenant flooding keys evicts its own entries, never those of a tenant holding fewer', async () => {
    const store = new MemoryIdempotencyStore(100);
    const book = new IdempotencyBook(() => 0, undefined, undefined, undefined, undefined, store);
    for (const k of ['q1', 'q2', 'q3']) await (await book.begin('key_quiet', C, k, body))!.complete(answer);
    for (let i = 0; i < 1_000; i++) await (await book.begin('key_flood', C, `f${i}`, body))!.complete(answer);
    assert.equal(store.size, 100);
    assert.equal(store.sizeOf('key_quiet'), 3, 'the quiet tenant keeps every entry');
    for (const k of ['q1', 'q2', 'q3']) assert.deepEqual((await book.begin('key_quiet', C, k, body))!.replay, answer, `${k} replays`);
    assert.deepEqual((await book.begin('key_flood', C, 'f999', body))!.replay, answer, 'the flooder keeps its newest');
    assert.equal((await book.begin('key_flood', C, 'f0', body))!.replay, undefined, 'and lost its oldest');
  });
});
