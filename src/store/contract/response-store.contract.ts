/**
 * The ResponseStore contract (stored Responses-API responses): every implementation runs this suite.
 * A response is found only by its own account and only until it expires; delete and sweep remove it.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ResponseStore, StoredResponse } from '../../wire/openai/index.ts';

const T = Date.UTC(2026, 0, 1);

function stored(over: Partial<StoredResponse> = {}): StoredResponse {
  return {
    id: 'resp_1',
    accountId: 'acct_a',
    createdAtMs: T,
    expiresAtMs: T + 1000,
    response: { id: 'resp_1', object: 'response', output: [{ id: 'msg_1', type: 'message' }] },
    items: [
      { type: 'message', role: 'user', content: 'hi' },
      { id: 'msg_1', type: 'message' },
    ],
    ...over,
  };
}

export function responseStoreContract(name: string, open: () => ResponseStore): void {
  describe(`ResponseStore contract (${name})`, () => {
    test('a stored response comes back whole for its own account before it expires', async () => {
      const s = open();
      await s.put(stored());
      assert.deepEqual(await s.get('acct_a', 'resp_1', T + 999), stored());
      assert.equal(await s.get('acct_b', 'resp_1', T), undefined, 'another account does not find it');
      assert.equal(await s.get('acct_a', 'resp_1', T + 1000), undefined, 'expired at expiresAtMs');
      assert.equal(await s.get('acct_a', 'resp_2', T), undefined);
    });

    test('what the caller changes after put or get does not change the stored copy', async () => {
      const s = open();
      const r = stored();
      await s.put(r);
      r.items.push({ type: 'extra' });
      const got = (await s.get('acct_a', 'resp_1', T))!;
      assert.equal(got.items.length, 2);
      got.items.push({ type: 'extra' });
      assert.equal((await s.get('acct_a', 'resp_1', T))!.items.length, 2);
    });

    test("delete removes only the own account's response; sweep removes the expired ones", async () => {
      const s = open();
      await s.put(stored());
      await s.put(stored({ id: 'resp_2', expiresAtMs: T + 5000 }));
      assert.equal(await s.delete('acct_b', 'resp_1'), false);
      assert.equal(await s.delete('acct_a', 'resp_1'), true);
      assert.equal(await s.delete('acct_a', 'resp_1'), false);
      await s.put(stored({ id: 'resp_3' }));
      assert.equal(await s.sweep(T + 1000), 1);
      assert.equal(await s.get('acct_a', 'resp_3', T), undefined);
      assert.ok(await s.get('acct_a', 'resp_2', T + 1000));
    });
  });
}
