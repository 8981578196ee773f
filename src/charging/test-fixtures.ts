/** Shared fixtures for charging tests (no store import: each test passes the store it runs against). */
import { ManualClock, SeededRandom, createIdGenerator } from '../core/index.ts';
import type { Usage } from '../wire/index.ts';
import type { ChargingService } from './service.ts';
import type { ChargingConfig, RateTable, SettleInput } from './types.ts';
import type { ChargingStore } from './store.ts';
import { createChargingEngine } from './engine.ts';

export const T0 = Date.UTC(2026, 0, 1);
export const DAY_MS = 86_400_000;

/** ref: 1 coin per token both ways; pricey: input 2, output 8, cached 1/2; money: 2 CNY/M in, 8 CNY/M out. */
export function sampleRates(version = 'v1'): RateTable {
  return {
    version,
    currency: 'CNY',
    minorUnitsPerMajor: 100,
    models: {
      ref: {
        coinsPerTokenInput: { num: 1, den: 1 },
        coinsPerTokenOutput: { num: 1, den: 1 },
        coinsPerTokenCachedInput: { num: 1, den: 10 },
        priceMicrosPerMillionInput: 4_000_000,
        priceMicrosPerMillionOutput: 4_000_000,
        priceMicrosPerMillionCachedInput: 400_000,
        modelGroups: ['chat'],
      },
      pricey: {
        coinsPerTokenInput: { num: 2, den: 1 },
        coinsPerTokenOutput: { num: 8, den: 1 },
        coinsPerTokenCachedInput: { num: 1, den: 2 },
        coinsPerTokenReasoning: { num: 8, den: 1 },
        priceMicrosPerMillionInput: 2_000_000,
        priceMicrosPerMillionOutput: 8_000_000,
        priceMicrosPerMillionCachedInput: 500_000,
        modelGroups: ['chat', 'premium'],
      },
      coder: {
        coinsPerTokenInput: { num: 1, den: 1 },
        coinsPerTokenOutput: { num: 1, den: 1 },
        coinsPerTokenCachedInput: { num: 1, den: 1 },
        perRequestCharge: 1,
      },
      third: { coinsPerTokenInput: { num: 1, den: 3 }, coinsPerTokenOutput: { num: 2, den: 3 }, coinsPerTokenCachedInput: { num: 1, den: 3 } },
    },
  };
}

export interface Harness {
  clock: ManualClock;
  engine: ChargingService;
  store: ChargingStore;
  rates: { current: RateTable };
}

export function harness(store: ChargingStore, config: Partial<ChargingConfig> = {}, startMs = T0): Harness {
  const clock = new ManualClock(startMs);
  const ids = createIdGenerator(clock, new SeededRandom(7));
  const rates = { current: sampleRates() };
  const engine = createChargingEngine({ store, clock, ids, rates: () => rates.current, config });
  return { clock, engine, store, rates };
}

export function usage(tokensInput: number, tokensOutput: number, extra: Partial<Usage> = {}): Usage {
  return { tokensInput, tokensOutput, tokensCachedInput: 0, tokensCacheWrite: 0, tokensReasoning: 0, ...extra };
}

export function settleInput(reservationId: string, requestId: string, u: Usage, extra: Partial<SettleInput> = {}): SettleInput {
  return {
    reservationId,
    requestId,
    usage: u,
    usageEstimated: false,
    status: 'ok',
    provider: 'mock',
    upstreamModel: 'm',
    region: 'local',
    deploymentId: 'dep_1',
    latencyMs: 100,
    ttftMs: 10,
    ...extra,
  };
}

export function reserveInput(
  requestId: string,
  extra: Partial<{
    accountId: string;
    memberId: string | null;
    keyId: string;
    model: string;
    tokensInputEstimate: number;
    tokensOutputMax: number;
    stream: boolean;
    tokensOutputAsk: number;
  }> = {},
) {
  return {
    requestId,
    accountId: 'acct_1',
    memberId: null,
    keyId: 'key_1',
    model: 'ref',
    tokensInputEstimate: 100,
    tokensOutputMax: 100,
    stream: false,
    ...extra,
  };
}
