/**
 * Prices per offer (issue 12, finding 12): an account whose policy carries its own money price (a pay-as-you-go
 * offer's token coins per major unit) is rated exactly, with integers and rationals only, and its money bucket is
 * charged the exact price rounded up once: never below the price, less than one minor unit above it.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { openMemoryChargingStore } from '../store/memory/charging-store.ts';
import { auditAccount } from './audit.ts';
import { pricedRate, rateEstimate, rateUsage } from './rate.ts';
import { harness, reserveInput, settleInput, usage } from './test-fixtures.ts';
import type { ModelRate, Ratio } from './types.ts';

const ratio = fc.record({ num: fc.integer({ min: 0, max: 50 }), den: fc.integer({ min: 1, max: 12 }) });
// cached input is never dearer than input (what estimates rely on, see rate.ts)
const rateArb = fc.record({ i: ratio, o: ratio, c: ratio }).map(
  ({ i, o, c }): ModelRate => ({
    coinsPerTokenInput: i,
    coinsPerTokenOutput: o,
    coinsPerTokenCachedInput: c.num * i.den <= i.num * c.den ? c : i,
    // money prices that the account price must replace, not add to
    priceMicrosPerMillionInput: 7_000_000,
    priceMicrosPerMillionOutput: 9_000_000,
  }),
);
const usageArb = fc.record({
  tokensInput: fc.integer({ min: 0, max: 5_000_000 }),
  tokensOutput: fc.integer({ min: 0, max: 2_000_000 }),
  tokensCachedInput: fc.integer({ min: 0, max: 5_000_000 }),
  tokensCacheWrite: fc.constant(0),
  tokensReasoning: fc.integer({ min: 0, max: 2_000_000 }),
});
const priceArb = fc.integer({ min: 1, max: 10_000_000 }); // coins per major unit (250,000 and 400,000 are the shipped ones)

/** Exact coins of usage under `rate`, as num/den bigints, by the definition (independent of rate.ts). */
function exactCoins(
  rate: ModelRate,
  u: { tokensInput: number; tokensOutput: number; tokensCachedInput: number; tokensReasoning: number },
): { num: bigint; den: bigint } {
  const cached = Math.min(u.tokensCachedInput, u.tokensInput);
  const reasoning = Math.min(u.tokensReasoning, u.tokensOutput);
  const terms: [Ratio, number][] = [
    [rate.coinsPerTokenInput, u.tokensInput - cached],
    [rate.coinsPerTokenCachedInput, cached],
    [rate.coinsPerTokenOutput, u.tokensOutput - reasoning],
    [rate.coinsPerTokenReasoning ?? rate.coinsPerTokenOutput, reasoning],
  ];
  let num = 0n;
  let den = 1n;
  for (const [r, n] of terms) {
    num = num * BigInt(r.den) + BigInt(r.num) * BigInt(n) * den;
    den *= BigInt(r.den);
  }
  return { num, den };
}

describe('prices per offer', () => {
  test('money at an account price is exactly coins x minor units per major / coins per major (rationals, no float)', () => {
    fc.assert(
      fc.property(rateArb, usageArb, priceArb, (rate, u, price) => {
        const priced = pricedRate(rate, price);
        const cost = rateUsage(priced, u, 100);
        const coins = exactCoins(rate, u);
        assert.ok(cost.moneyMinor !== null);
        // moneyMinor == coins x 100 / price, compared by cross-multiplication
        assert.equal(cost.moneyMinor.num * coins.den * BigInt(price), coins.num * 100n * cost.moneyMinor.den);
        // the estimate uses the same price: an estimate of the same counts bounds the actual cost
        const est = rateEstimate(priced, u.tokensInput, u.tokensOutput, 100);
        assert.ok(est.moneyMinor!.num * cost.moneyMinor.den >= cost.moneyMinor.num * est.moneyMinor!.den);
      }),
      { numRuns: 300 },
    );
  });

  test('a wallet on an account price pays ceil(exact price) for every request: never below it, less than 1 fen above', async () => {
    await fc.assert(
      fc.asyncProperty(
        priceArb,
        fc.array(fc.record({ input: fc.integer({ min: 1, max: 200_000 }), output: fc.integer({ min: 0, max: 4_000 }) }), { minLength: 1, maxLength: 6 }),
        async (price, requests) => {
          const h = harness(openMemoryChargingStore());
          await h.engine.setAccountPolicy('acct_1', { overage: 'wallet', coinsPerMajor: price });
          await h.engine.topUpWallet({ accountId: 'acct_1', currency: 'CNY', amountMinor: 1_000_000_000, sourceRef: 'pay_1' });
          let n = 0;
          for (const { input, output } of requests) {
            const id = `req_${++n}`;
            // `pricey`: 2 coins per input token, 8 per output token, so the coins are whole and known
            const r = await h.engine.reserve(reserveInput(id, { model: 'pricey', tokensInputEstimate: input, tokensOutputMax: Math.max(output, 16) }));
            assert.ok(r.ok, r.ok ? '' : r.message);
            const rec = await h.engine.settle(settleInput(r.value.reservationId, id, usage(input, output)));
            const coins = BigInt(2 * input + 8 * output);
            const paid = rec.charges.filter((c) => c.kind === 'wallet').reduce((s, c) => s + c.amount, 0);
            assert.equal(rec.charges.length, 1);
            // paid >= coins x 100 / price  and  paid - 1 < coins x 100 / price
            assert.ok(BigInt(paid) * BigInt(price) >= coins * 100n, `paid ${paid} for ${coins} coins at ${price} per CNY`);
            assert.ok(BigInt(paid - 1) * BigInt(price) < coins * 100n, `rounded once: ${paid} for ${coins} coins at ${price} per CNY`);
            assert.equal(rec.costMinor, paid);
          }
          assert.deepEqual((await auditAccount(h.store, 'acct_1')).problems, []);
        },
      ),
      { numRuns: 60 },
    );
  });

  test("without an account price the rate table's money prices apply (the engine's wallet price)", async () => {
    const h = harness(openMemoryChargingStore());
    await h.engine.topUpWallet({ accountId: 'acct_1', currency: 'CNY', amountMinor: 10_000, sourceRef: 'pay_1' });
    const r = await h.engine.reserve(reserveInput('req_1', { model: 'pricey', tokensInputEstimate: 1_000_000, tokensOutputMax: 16 }));
    assert.ok(r.ok);
    const rec = await h.engine.settle(settleInput(r.value.reservationId, 'req_1', usage(1_000_000, 0)));
    assert.equal(rec.costMinor, 200, '1M input tokens at 2 CNY/M');
  });

  test("changing the overage keeps the account's price; null clears it", async () => {
    const h = harness(openMemoryChargingStore());
    await h.engine.setAccountPolicy('acct_1', { overage: 'wallet', coinsPerMajor: 250_000 });
    const kept = await h.engine.setAccountPolicy('acct_1', { overage: 'postpaid', creditLimitMinor: 1_000, currency: 'CNY' });
    assert.ok(kept.ok);
    assert.equal(kept.value.coinsPerMajor, 250_000);
    const cleared = await h.engine.setAccountPolicy('acct_1', { overage: 'wallet', coinsPerMajor: null });
    assert.ok(cleared.ok);
    assert.equal(cleared.value.coinsPerMajor, undefined);
    const bad = await h.engine.setAccountPolicy('acct_1', { overage: 'wallet', coinsPerMajor: 0 });
    assert.ok(!bad.ok);
  });
});
