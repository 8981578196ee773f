/**
 * Rating: usage -> exact cost per unit. Integer and exact: bigint rationals, no floats; rounding happens
 * later, once per request and bucket unit (always up: the operator's favour, bias < 1 unit per request).
 */
import type { Usage } from '../wire/index.ts';
import type { ModelRate, RateTable, RatedCost, Ratio } from './types.ts';
import { q, qAdd, qMulInt, Q0, type Q } from './rational.ts';

export const DEFAULT_CURRENCY = 'CNY';
export const DEFAULT_MINOR_UNITS_PER_MAJOR = 100;
/** Prices are micros of the major unit per 10^6 tokens: minor = tokens * price * minorPerMajor / 10^12. */
const PRICE_SCALE = 1_000_000_000_000n;

interface TokenParts {
  input: number; // uncached, not written to cache
  cachedInput: number;
  cacheWrite: number;
  output: number; // not reasoning
  reasoning: number;
}

/** Split usage into disjoint parts (cached/cache-write are subsets of input, reasoning of output; clamped). */
export function tokenParts(u: Usage): TokenParts {
  const input = Math.max(0, u.tokensInput);
  const cachedInput = Math.min(Math.max(0, u.tokensCachedInput), input);
  const cacheWrite = Math.min(Math.max(0, u.tokensCacheWrite), input - cachedInput);
  const output = Math.max(0, u.tokensOutput);
  const reasoning = Math.min(Math.max(0, u.tokensReasoning), output);
  return { input: input - cachedInput - cacheWrite, cachedInput, cacheWrite, output: output - reasoning, reasoning };
}

const ratioQ = (r: Ratio): Q => q(r.num, r.den);

function coinsOf(rate: ModelRate, p: TokenParts): Q {
  const cw = rate.coinsPerTokenCacheWrite ?? rate.coinsPerTokenInput;
  const rs = rate.coinsPerTokenReasoning ?? rate.coinsPerTokenOutput;
  let sum = Q0;
  sum = qAdd(sum, qMulInt(ratioQ(rate.coinsPerTokenInput), p.input));
  sum = qAdd(sum, qMulInt(ratioQ(rate.coinsPerTokenCachedInput), p.cachedInput));
  sum = qAdd(sum, qMulInt(ratioQ(cw), p.cacheWrite));
  sum = qAdd(sum, qMulInt(ratioQ(rate.coinsPerTokenOutput), p.output));
  sum = qAdd(sum, qMulInt(ratioQ(rs), p.reasoning));
  return sum;
}

function hasMoney(rate: ModelRate): boolean {
  return rate.priceMicrosPerMillionInput !== undefined && rate.priceMicrosPerMillionOutput !== undefined;
}

function moneyOf(rate: ModelRate, p: TokenParts, minorUnitsPerMajor: number): Q | null {
  if (!hasMoney(rate)) return null;
  const pin = rate.priceMicrosPerMillionInput ?? 0;
  const pout = rate.priceMicrosPerMillionOutput ?? 0;
  const pcached = rate.priceMicrosPerMillionCachedInput ?? pin;
  const pcw = rate.priceMicrosPerMillionCacheWrite ?? pin;
  const prs = rate.priceMicrosPerMillionReasoning ?? pout;
  const micros =
    BigInt(p.input) * BigInt(pin) + BigInt(p.cachedInput) * BigInt(pcached) + BigInt(p.cacheWrite) * BigInt(pcw) +
    BigInt(p.output) * BigInt(pout) + BigInt(p.reasoning) * BigInt(prs);
  return q(micros * BigInt(minorUnitsPerMajor), PRICE_SCALE);
}

/** Exact cost of actual usage (settle). `requests` is charged per request whatever the tokens. */
export function rateUsage(rate: ModelRate, usage: Usage, minorUnitsPerMajor: number): RatedCost {
  const p = tokenParts(usage);
  return { coins: coinsOf(rate, p), moneyMinor: moneyOf(rate, p, minorUnitsPerMajor), requests: rate.perRequestCharge ?? null };
}

/**
 * Upper-bound cost of a request before it runs: every input token at the dearer of input/cache-write rates,
 * every output token at the dearer of output/reasoning rates (cached input is never dearer than input).
 */
const maxRatio = (a: Ratio, b: Ratio | undefined): Ratio => (b !== undefined && b.num * a.den > a.num * b.den ? b : a);
const maxPrice = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined ? undefined : b === undefined ? a : Math.max(a, b);

/** The rate used for estimates: the dearer of input/cache-write and of output/reasoning (cached input is never dearer). */
export function estimateRate(rate: ModelRate): ModelRate {
  return {
    ...rate,
    coinsPerTokenInput: maxRatio(rate.coinsPerTokenInput, rate.coinsPerTokenCacheWrite),
    coinsPerTokenOutput: maxRatio(rate.coinsPerTokenOutput, rate.coinsPerTokenReasoning),
    priceMicrosPerMillionInput: maxPrice(rate.priceMicrosPerMillionInput, rate.priceMicrosPerMillionCacheWrite),
    priceMicrosPerMillionOutput: maxPrice(rate.priceMicrosPerMillionOutput, rate.priceMicrosPerMillionReasoning),
  };
}

/**
 * Upper-bound cost of a request before it runs (every input token at the estimate rate's input price, every
 * output token at its output price). Pass a rate already made by estimateRate to skip rebuilding it.
 */
export function rateEstimate(rate: ModelRate, tokensInput: number, tokensOutput: number, minorUnitsPerMajor: number, prepared = false): RatedCost {
  const est = prepared ? rate : estimateRate(rate);
  const parts: TokenParts = { input: tokensInput, cachedInput: 0, cacheWrite: 0, output: tokensOutput, reasoning: 0 };
  return { coins: coinsOf(est, parts), moneyMinor: moneyOf(est, parts, minorUnitsPerMajor), requests: rate.perRequestCharge ?? null };
}

/** Validation for whoever builds a RateTable (config): returns problems, empty when valid. */
export function validateRateTable(t: RateTable): string[] {
  const problems: string[] = [];
  if (t.version.length === 0) problems.push('version must not be empty');
  const mpm = t.minorUnitsPerMajor ?? DEFAULT_MINOR_UNITS_PER_MAJOR;
  if (!Number.isSafeInteger(mpm) || mpm <= 0) problems.push('minorUnitsPerMajor must be a positive integer');
  for (const [model, r] of Object.entries(t.models)) {
    const ratios: [string, Ratio | undefined][] = [
      ['coinsPerTokenInput', r.coinsPerTokenInput], ['coinsPerTokenOutput', r.coinsPerTokenOutput],
      ['coinsPerTokenCachedInput', r.coinsPerTokenCachedInput], ['coinsPerTokenCacheWrite', r.coinsPerTokenCacheWrite],
      ['coinsPerTokenReasoning', r.coinsPerTokenReasoning],
    ];
    for (const [name, ratio] of ratios) {
      if (ratio === undefined) continue;
      if (!Number.isSafeInteger(ratio.num) || ratio.num < 0 || !Number.isSafeInteger(ratio.den) || ratio.den <= 0) {
        problems.push(`${model}.${name} must be {num >= 0, den > 0} integers`);
      }
    }
    const prices = [r.priceMicrosPerMillionInput, r.priceMicrosPerMillionOutput, r.priceMicrosPerMillionCachedInput,
      r.priceMicrosPerMillionCacheWrite, r.priceMicrosPerMillionReasoning, r.perRequestCharge];
    if (prices.some((p) => p !== undefined && (!Number.isSafeInteger(p) || p < 0))) {
      problems.push(`${model}: prices and perRequestCharge must be non-negative integers`);
    }
    if ((r.priceMicrosPerMillionInput === undefined) !== (r.priceMicrosPerMillionOutput === undefined)) {
      problems.push(`${model}: give both priceMicrosPerMillionInput and priceMicrosPerMillionOutput, or neither`);
    }
  }
  return problems;
}
