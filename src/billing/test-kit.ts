/** Test harness for billing: an injected clock, seeded ids, the charging engine, over stores the test passes in. */
import { ManualClock, SeededRandom, createIdGenerator } from '../core/index.ts';
import { createAccount, type AccountDeps, type AccountStore } from '../accounts/index.ts';
import { createChargingEngine, isChargingTxHost, type ChargingService, type ChargingStore, type RateTable, type UsageRecord } from '../charging/index.ts';
import { OfferCatalogHolder, parseOfferCatalog } from './offers.ts';
import { createBillingService, type BillingService } from './service.ts';
import type { BillingStore } from './store.ts';
import type { CarrierChannel } from './carrier.ts';
import type { PlannerRules } from './context.ts';

const r = (num: number, den = 1) => ({ num, den });

/** 1 coin per token; wallet price 400,000 coins per CNY = 2.5 CNY per 1M tokens = 2,500,000 micros per M. */
export const TEST_RATES: RateTable = {
  version: 'test-1',
  currency: 'CNY',
  minorUnitsPerMajor: 100,
  models: {
    'deepseek-v3.2': {
      coinsPerTokenInput: r(1),
      coinsPerTokenOutput: r(1),
      coinsPerTokenCachedInput: r(1, 4),
      priceMicrosPerMillionInput: 2_500_000,
      priceMicrosPerMillionOutput: 2_500_000,
      priceMicrosPerMillionCachedInput: 625_000,
      perRequestCharge: 1,
      modelGroups: ['package-basic', 'package-developer'],
    },
    'glm-5': {
      coinsPerTokenInput: r(2),
      coinsPerTokenOutput: r(4),
      coinsPerTokenCachedInput: r(1, 2),
      priceMicrosPerMillionInput: 5_000_000,
      priceMicrosPerMillionOutput: 10_000_000,
      priceMicrosPerMillionCachedInput: 1_250_000,
      perRequestCharge: 1,
      modelGroups: ['package-developer'],
    },
  },
};

export interface TestStores {
  accounts: AccountStore;
  charging: ChargingStore;
  billing: BillingStore;
}

export interface BillingHarness {
  clock: ManualClock;
  charging: ChargingService;
  billing: BillingService;
  accounts: AccountDeps;
  offers: OfferCatalogHolder;
  newAccount(name?: string, kind?: 'individual' | 'family' | 'team'): Promise<string>;
  /** One request through reserve + settle; the usage record, or the refusal code. */
  use(
    accountId: string,
    tokensInput: number,
    tokensOutput: number,
    model?: string,
  ): Promise<{ ok: true; record: UsageRecord } | { ok: false; code: string; message: string }>;
}

export function billingHarness(
  stores: TestStores,
  opts: { startMs: number | string; catalogText: string; carrier?: CarrierChannel; rules?: Partial<PlannerRules>; seed?: number },
): BillingHarness {
  const clock = new ManualClock(opts.startMs);
  const random = new SeededRandom(opts.seed ?? 42);
  const ids = createIdGenerator(clock, random);
  const charging = createChargingEngine({ store: stores.charging, clock, ids, rates: () => TEST_RATES });
  // Billing plans apply their charging operations in the billing store's transaction (plan.ts).
  if (isChargingTxHost(stores.charging)) stores.billing.connectCharging(stores.charging);
  const parsed = parseOfferCatalog(opts.catalogText, { walletCoinsPerUnit: 400_000 });
  if (!parsed.ok) throw new Error(parsed.message);
  const offers = new OfferCatalogHolder(parsed.value);
  const billing = createBillingService({
    store: stores.billing,
    charging,
    accounts: stores.accounts,
    clock,
    ids,
    random,
    offers: () => offers.current,
    walletCoinsPerUnit: 400_000,
    carrier: opts.carrier,
    rules: opts.rules,
  });
  const accounts: AccountDeps = { store: stores.accounts, clock, ids, random };
  let n = 0;
  return {
    clock,
    charging,
    billing,
    accounts,
    offers,
    async newAccount(name = 'Test account', kind = 'individual') {
      const a = await createAccount(accounts, { name, kind });
      if (!a.ok) throw new Error(a.message);
      return a.value.id;
    },
    async use(accountId, tokensInput, tokensOutput, model = 'deepseek-v3.2') {
      const requestId = `req_${++n}`;
      const res = await charging.reserve({
        requestId,
        accountId,
        memberId: null,
        keyId: 'key_test',
        model,
        tokensInputEstimate: tokensInput,
        tokensOutputMax: Math.max(tokensOutput, 16),
        stream: false,
      });
      if (!res.ok) return { ok: false, code: res.code, message: res.message };
      const record = await charging.settle({
        reservationId: res.value.reservationId,
        requestId,
        usage: { tokensInput, tokensOutput, tokensCachedInput: 0, tokensCacheWrite: 0, tokensReasoning: 0 },
        usageEstimated: false,
        status: 'ok',
        provider: 'mock',
        upstreamModel: model,
        region: 'local',
        deploymentId: `mock/${model}@local`,
        latencyMs: 100,
        ttftMs: 10,
        vendorCostMicros: tokensInput * 2 + tokensOutput * 3, // 2 and 3 CNY per 1M tokens
      });
      return { ok: true, record };
    },
  };
}
