import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenGridError } from '../core/index.ts';
import { IdempotencyBook } from './idempotency.ts';

const code = (f: () => unknown): string | undefined => {
  try {
    f();
    return undefined;
  } catch (e) {
    return e instanceof TokenGridError ? e.code : 'other';
  }
};

describe('IdempotencyBook', () => {
  const body = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };
  const answer = { status: 200, body: '{"id":"x"}', contentType: 'application/json' };

  test('no header: nothing is tracked', () => {
    const book = new IdempotencyBook(() => 0);
    assert.equal(book.begin('key_1', undefined, body), undefined);
    assert.equal(book.size, 0);
  });

  test('running -> 409 in progress; completed -> replay; another body -> 409 reused; another API key -> runs', () => {
    const book = new IdempotencyBook(() => 0);
    const first = book.begin('key_1', 'k', body)!;
    assert.equal(first.replay, undefined);
    assert.equal(
      code(() => book.begin('key_1', 'k', body)),
      'idempotency_in_progress',
    );
    first.complete(answer);
    assert.deepEqual(book.begin('key_1', 'k', body)!.replay, answer);
    assert.equal(
      code(() => book.begin('key_1', 'k', { ...body, model: 'other' })),
      'idempotency_key_reused',
    );
    assert.equal(book.begin('key_2', 'k', body)!.replay, undefined, 'scoped per API key');
  });

  test('a completed stream is not replayed; a failed request frees its key', () => {
    const book = new IdempotencyBook(() => 0);
    book.begin('key_1', 's', body)!.complete(undefined);
    assert.equal(
      code(() => book.begin('key_1', 's', body)),
      'idempotency_key_reused',
    );
    book.begin('key_1', 'f', body)!.abandon();
    assert.equal(book.begin('key_1', 'f', body)!.replay, undefined, 'runs again');
  });

  test('entries expire after the time limit and the book stays bounded', () => {
    let now = 0;
    const book = new IdempotencyBook(() => now, 1_000, 3);
    book.begin('key_1', 'a', body)!.complete(answer);
    now = 1_001;
    assert.equal(book.begin('key_1', 'a', body)!.replay, undefined, 'expired: runs again');
    for (const k of ['b', 'c', 'd', 'e']) book.begin('key_1', k, body)!.complete(answer);
    assert.ok(book.size <= 3, `bounded: ${book.size}`);
  });

  test('a malformed key is a 400', () => {
    const book = new IdempotencyBook(() => 0);
    assert.equal(
      code(() => book.begin('key_1', 'has space', body)),
      'invalid_request',
    );
    assert.equal(
      code(() => book.begin('key_1', ['a', 'b'], body)),
      'invalid_request',
    );
  });
});
