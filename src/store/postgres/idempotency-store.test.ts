import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { idempotencyContract } from '../contract/idempotency-store.contract.ts';
import { IdempotencyBook } from '../../gateway/index.ts';
import { openPostgresIdempotencyStore } from './idempotency-store.ts';
import { afterReady, testDbOrSkip, truncateAll } from './test-support.ts';

const t = await testDbOrSkip();
if (typeof t === 'string') test('IdempotencyStore contract (postgres)', { skip: t }, () => {});
else {
  after(() => t.drop());
  idempotencyContract('postgres', () => afterReady(truncateAll(t.db), openPostgresIdempotencyStore(t.db)));

  test('two nodes claiming one key at once: exactly one runs, the other waits and replays its answer', async () => {
    await truncateAll(t.db);
    const nodes = [0, 1].map(() => new IdempotencyBook(() => 0, undefined, undefined, undefined, undefined, openPostgresIdempotencyStore(t.db)));
    const body = { model: 'm', messages: [] };
    const answer = { status: 200, body: '{"id":"one"}', contentType: 'application/json' };
    const tickets = await Promise.all(
      nodes.map(async (n) => {
        const tk = (await n.begin('key_1', '/v1/chat/completions', 'race', body))!;
        if (tk.replay === undefined) await tk.complete(answer);
        return tk;
      }),
    );
    assert.equal(tickets.filter((x) => x.replay === undefined).length, 1, 'one ran');
    assert.deepEqual(tickets.find((x) => x.replay !== undefined)?.replay, answer, 'the other replayed');
  });

  test('a running claim whose node died is taken over after staleRunningMs, and the sweep deletes expired rows', async () => {
    await truncateAll(t.db);
    let now = 0;
    const store = openPostgresIdempotencyStore(t.db, { staleRunningMs: 600_000 });
    const book = new IdempotencyBook(() => now, 3_600_000, undefined, undefined, undefined, store);
    await book.begin('key_1', '/v1/chat/completions', 'dead', { stream: true }); // never completed: its node died
    now = 600_000;
    assert.equal((await book.begin('key_1', '/v1/chat/completions', 'dead', { stream: true }))!.replay, undefined, 'taken over');
    assert.equal(await store.sweep(now), 0);
    assert.equal(await store.sweep(now + 3_600_000), 1);
  });
}
