import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openMemoryChargingStore } from '../store/memory/charging-store.ts';
import { auditAccount } from './audit.ts';
import { harness, reserveInput, settleInput, usage, T0, type Harness } from './test-fixtures.ts';

async function setup(amount: number, sliceTokens = 100): Promise<Harness> {
  const h = harness(openMemoryChargingStore(), { sliceTokens, tokensOutputMinGrant: 16 });
  await h.engine.grantBucket({ accountId: 'acct_1', unit: 'tokens', amount, effectiveAtMs: T0, expiresAtMs: null, kind: 'addon', sourceRef: 'pack' });
  return h;
}

describe('stream slices and extension', () => {
  test('a stream reserves input + one slice, and each extension grants up to one more slice', async () => {
    const h = await setup(10_000);
    const r = await h.engine.reserve(reserveInput('req_1', { stream: true, tokensInputEstimate: 50, tokensOutputMax: 1000 }));
    assert.ok(r.ok);
    assert.deepEqual([r.value.tokensOutputGranted, r.value.final], [100, false]);
    assert.equal((await h.engine.listBuckets('acct_1'))[0]!.reserved, 150);
    const e1 = await h.engine.extend({ reservationId: r.value.reservationId, tokensOutputMore: 500 });
    assert.ok(e1.ok);
    assert.deepEqual([e1.value.tokensOutputGranted, e1.value.final], [200, false], 'capped at one slice');
    assert.equal((await h.engine.listBuckets('acct_1'))[0]!.reserved, 250);
    await clean(h);
  });

  test('when nothing more can be granted the extension is final and only what was delivered is charged', async () => {
    const h = await setup(180);
    const r = await h.engine.reserve(reserveInput('req_1', { stream: true, tokensInputEstimate: 50, tokensOutputMax: 1000 }));
    assert.ok(r.ok);
    const e1 = await h.engine.extend({ reservationId: r.value.reservationId, tokensOutputMore: 100 });
    assert.ok(e1.ok);
    assert.deepEqual([e1.value.tokensOutputGranted, e1.value.final], [130, true], 'the 30 coins left are granted, then final');
    const e2 = await h.engine.extend({ reservationId: r.value.reservationId, tokensOutputMore: 100 });
    assert.ok(e2.ok);
    assert.deepEqual([e2.value.tokensOutputGranted, e2.value.final], [130, true]);
    // The gateway ended the stream at the grant (finish_reason length) after 130 output tokens; the prompt was 45.
    const cdr = await h.engine.settle(settleInput(r.value.reservationId, 'req_1', usage(45, 130), { status: 'truncated' }));
    assert.equal(cdr.costCoins, 175);
    assert.deepEqual(
      cdr.charges.map((c) => c.amount),
      [175],
    );
    assert.equal(cdr.leakCoins, 0);
    const [b] = await h.engine.listBuckets('acct_1');
    assert.deepEqual([b!.used, b!.reserved, b!.remaining], [175, 0, 5]);
    await clean(h);
  });

  test('a stream whose max is within one slice is final from the start', async () => {
    const h = await setup(10_000);
    const r = await h.engine.reserve(reserveInput('req_1', { stream: true, tokensInputEstimate: 10, tokensOutputMax: 60 }));
    assert.ok(r.ok);
    assert.deepEqual([r.value.tokensOutputGranted, r.value.final], [60, true]);
    const e = await h.engine.extend({ reservationId: r.value.reservationId, tokensOutputMore: 100 });
    assert.ok(e.ok);
    assert.deepEqual([e.value.tokensOutputGranted, e.value.final], [60, true]);
  });

  test('a client that aborts mid-stream is charged prompt + delivered tokens; the rest of the slices go back', async () => {
    const h = await setup(10_000);
    const r = await h.engine.reserve(reserveInput('req_1', { stream: true, tokensInputEstimate: 50, tokensOutputMax: 1000 }));
    assert.ok(r.ok);
    await h.engine.extend({ reservationId: r.value.reservationId, tokensOutputMore: 100 });
    const cdr = await h.engine.settle(settleInput(r.value.reservationId, 'req_1', usage(50, 120), { status: 'client_aborted' }));
    assert.equal(cdr.charges[0]!.amount, 170);
    assert.equal((await h.engine.listBuckets('acct_1'))[0]!.reserved, 0);
    await clean(h);
  });

  test('extension renews the time limit; an unknown or closed reservation is refused', async () => {
    const h = await setup(10_000);
    const r = await h.engine.reserve(reserveInput('req_1', { stream: true }));
    assert.ok(r.ok);
    h.clock.advance(60_000);
    const e = await h.engine.extend({ reservationId: r.value.reservationId, tokensOutputMore: 10 });
    assert.ok(e.ok);
    assert.equal(e.value.validUntilMs, T0 + 60_000 + 600_000);
    const missing = await h.engine.extend({ reservationId: 'rsv_nope', tokensOutputMore: 10 });
    assert.equal(!missing.ok && missing.code, 'reservation_not_found');
    await h.engine.settle(settleInput(r.value.reservationId, 'req_1', usage(10, 10)));
    const closed = await h.engine.extend({ reservationId: r.value.reservationId, tokensOutputMore: 10 });
    assert.equal(!closed.ok && closed.code, 'reservation_not_open');
  });

  test('concurrent streams share a small balance without overspending it', async () => {
    const h = await setup(500);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await h.engine.reserve(reserveInput(`req_${i}`, { stream: true, tokensInputEstimate: 20, tokensOutputMax: 10_000 }));
      if (r.ok) ids.push(r.value.reservationId);
    }
    for (let round = 0; round < 5; round++) for (const id of ids) await h.engine.extend({ reservationId: id, tokensOutputMore: 100 });
    const [b] = await h.engine.listBuckets('acct_1');
    assert.ok(b!.reserved <= 500);
    assert.equal(b!.remaining, 500 - b!.reserved);
    await clean(h);
  });
});

async function clean(h: Harness): Promise<void> {
  assert.deepEqual((await auditAccount(h.store, 'acct_1')).problems, []);
}
