/**
 * Rating: usage -> exact cost per unit. Integer and exact: bigint rationals, no floats; rounding happens
 * later, once per request and bucket unit (always up: the operator's favour, bias < 1 unit per request).
 */
import type { Usage } from '../wire/index.ts';
import type { ModelRate, RateTable, RatedCost, Ratio } from './types.ts';
import { assert } from '../core/index.ts';
import { q, qMul, type Q } from './rational.ts';

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

/**
 * Two ways to the same exact value. The usual rate table (small ratios, thousands of tokens) fits in doubles
 * without rounding, so it is first summed there, checking that every intermediate value is a safe integer (a
 * double holds those exactly, and an exact result past 2^53 cannot round back below it), and only the reduced
 * result is made a bigint. Anything larger or unusual (a non-integer, a huge count) takes the bigint path, which
 * also raises the errors q() would. A rational's reduced form is unique, so both give the same num and den.
 */
interface SmallSum {
  num: number;
  den: number;
}

/** sum += r x tokens in doubles; false when a value is not a safe integer (or den <= 0): then use the bigint path. */
function addSmall(sum: SmallSum, r: Ratio, tokens: number): boolean {
  const rn = r.num;
  const rd = r.den;
  if (!Number.isSafeInteger(rn) || !Number.isSafeInteger(rd) || rd <= 0 || !Number.isSafeInteger(tokens)) return false;
  const n = rn * tokens;
  if (!Number.isSafeInteger(n)) return false;
  if (rd === sum.den) {
    const next = sum.num + n;
    if (!Number.isSafeInteger(next)) return false;
    sum.num = next;
    return true;
  }
  const a = sum.num * rd;
  const b = n * sum.den;
  const next = a + b;
  const den = sum.den * rd;
  if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || !Number.isSafeInteger(next) || !Number.isSafeInteger(den)) return false;
  sum.num = next;
  sum.den = den;
  return true;
}

function gcdSmall(a: number, b: number): number {
  let x = Math.abs(a);
  let y = b;
  while (y !== 0) {
    const t = x % y;
    x = y;
    y = t;
  }
  return x;
}

/** num/den (safe integers, den > 0) in lowest terms, as a Q. */
function reducedSmall(num: number, den: number): Q {
  if (num === 0) return { num: 0n, den: 1n };
  const g = gcdSmall(num, den);
  return { num: BigInt(num / g), den: den === g ? 1n : BigInt(den / g) };
}

/** A running sum of ratio x tokens terms in bigints, reduced once at the end. */
interface Sum {
  num: bigint;
  den: bigint;
}

/** sum += r x tokens, checking r as q(r.num, r.den) would (a non-integer throws, den must be positive). */
function addTerm(sum: Sum, r: Ratio, tokens: number): void {
  const rn = BigInt(r.num);
  const rd = BigInt(r.den);
  assert(rd > 0n, 'rational: den must be positive');
  const n = rn * BigInt(tokens);
  if (rd === sum.den) sum.num += n;
  else {
    sum.num = sum.num * rd + n * sum.den;
    sum.den *= rd;
  }
}

function coinsOf(rate: ModelRate, p: TokenParts): Q {
  const cw = rate.coinsPerTokenCacheWrite ?? rate.coinsPerTokenInput;
  const rs = rate.coinsPerTokenReasoning ?? rate.coinsPerTokenOutput;
  const small: SmallSum = { num: 0, den: 1 };
  if (
    addSmall(small, rate.coinsPerTokenInput, p.input) &&
    addSmall(small, rate.coinsPerTokenCachedInput, p.cachedInput) &&
    addSmall(small, cw, p.cacheWrite) &&
    addSmall(small, rate.coinsPerTokenOutput, p.output) &&
    addSmall(small, rs, p.reasoning)
  ) {
    return reducedSmall(small.num, small.den);
  }
  const sum: Sum = { num: 0n, den: 1n };
  addTerm(sum, rate.coinsPerTokenInput, p.input);
  addTerm(sum, rate.coinsPerTokenCachedInput, p.cachedInput);
  addTerm(sum, cw, p.cacheWrite);
  addTerm(sum, rate.coinsPerTokenOutput, p.output);
  addTerm(sum, rs, p.reasoning);
  return q(sum.num, sum.den);
}

function hasMoney(rate: ModelRate): boolean {
  return rate.priceMicrosPerMillionInput !== undefined && rate.priceMicrosPerMillionOutput !== undefined;
}

/** safe(a x b), or NaN when a, b or the product is not a safe integer. */
function mulSafe(a: number, b: number): number {
  const x = a * b;
  return Number.isSafeInteger(a) && Number.isSafeInteger(b) && Number.isSafeInteger(x) ? x : NaN;
}

const PRICE_SCALE_SMALL = 1_000_000_000_000;

/** moneyOf in doubles (see SmallSum), or null when a value leaves the safe integers. */
function moneySmall(p: TokenParts, pin: number, pcached: number, pcw: number, pout: number, prs: number, minorUnitsPerMajor: number): Q | null {
  const a = mulSafe(p.input, pin);
  const b = mulSafe(p.cachedInput, pcached);
  const c = mulSafe(p.cacheWrite, pcw);
  const d = mulSafe(p.output, pout);
  const e = mulSafe(p.reasoning, prs);
  const ab = a + b;
  const abc = ab + c;
  const abcd = abc + d;
  const micros = abcd + e;
  // NaN anywhere makes every later sum NaN, which is not a safe integer
  if (!Number.isSafeInteger(ab) || !Number.isSafeInteger(abc) || !Number.isSafeInteger(abcd) || !Number.isSafeInteger(micros)) return null;
  const minor = mulSafe(micros, minorUnitsPerMajor);
  if (Number.isNaN(minor)) return null;
  if (minor === 0) return { num: 0n, den: 1n };
  // gcd(minor, 10^12) = gcd(minor, 2^12) x gcd(minor, 5^12): two remainders, then Euclid on small integers only
  // (a remainder of doubles past 2^31 is a slow library call, and Euclid from 10^12 takes a dozen of them).
  const g = gcdSmall(minor % 4096, 4096) * gcdSmall(minor % 244_140_625, 244_140_625);
  return { num: BigInt(minor / g), den: g === PRICE_SCALE_SMALL ? 1n : BigInt(PRICE_SCALE_SMALL / g) };
}

/** Money at the account's own price: coins x minorUnitsPerMajor / coinsPerMajor, exact (rounded later, once, up). */
function moneyAtCoinPrice(coins: Q, coinsPerMajor: number, minorUnitsPerMajor: number): Q {
  assert(Number.isSafeInteger(coinsPerMajor) && coinsPerMajor > 0, 'coinsPerMajor must be a positive integer');
  return qMul(coins, q(minorUnitsPerMajor, coinsPerMajor));
}

function moneyOf(rate: ModelRate, p: TokenParts, minorUnitsPerMajor: number, coins?: Q): Q | null {
  if (rate.coinsPerMajor !== undefined) return moneyAtCoinPrice(coins ?? coinsOf(rate, p), rate.coinsPerMajor, minorUnitsPerMajor);
  if (!hasMoney(rate)) return null;
  const pin = rate.priceMicrosPerMillionInput ?? 0;
  const pout = rate.priceMicrosPerMillionOutput ?? 0;
  const pcached = rate.priceMicrosPerMillionCachedInput ?? pin;
  const pcw = rate.priceMicrosPerMillionCacheWrite ?? pin;
  const prs = rate.priceMicrosPerMillionReasoning ?? pout;
  const small = moneySmall(p, pin, pcached, pcw, pout, prs, minorUnitsPerMajor);
  if (small !== null) return small;
  const micros =
    BigInt(p.input) * BigInt(pin) +
    BigInt(p.cachedInput) * BigInt(pcached) +
    BigInt(p.cacheWrite) * BigInt(pcw) +
    BigInt(p.output) * BigInt(pout) +
    BigInt(p.reasoning) * BigInt(prs);
  return q(micros * BigInt(minorUnitsPerMajor), PRICE_SCALE);
}

/** Exact cost of actual usage (settle). `requests` is charged per request whatever the tokens. */
export function rateUsage(rate: ModelRate, usage: Usage, minorUnitsPerMajor: number): RatedCost {
  const p = tokenParts(usage);
  const coins = coinsOf(rate, p);
  return { coins, moneyMinor: moneyOf(rate, p, minorUnitsPerMajor, coins), requests: rate.perRequestCharge ?? null };
}

/**
 * Upper-bound cost of a request before it runs: every input token at the dearer of input/cache-write rates,
 * every output token at the dearer of output/reasoning rates (cached input is never dearer than input).
 */
const maxRatio = (a: Ratio, b: Ratio | undefined): Ratio => (b !== undefined && b.num * a.den > a.num * b.den ? b : a);
const maxPrice = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined ? undefined : b === undefined ? a : Math.max(a, b));

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
  const coins = coinsOf(est, parts);
  return { coins, moneyMinor: moneyOf(est, parts, minorUnitsPerMajor, coins), requests: rate.perRequestCharge ?? null };
}

/**
 * The model's rate as an account pays it: with the account's own money price (its pay-as-you-go offer's coins
 * per major unit) when its policy has one. Returns the same object when nothing changes (the hot path).
 */
export function pricedRate(rate: ModelRate, coinsPerMajor: number | null | undefined): ModelRate {
  if (coinsPerMajor === undefined || coinsPerMajor === null || rate.coinsPerMajor === coinsPerMajor) return rate;
  return { ...rate, coinsPerMajor };
}

/** Validation for whoever builds a RateTable (config): returns problems, empty when valid. */
export function validateRateTable(t: RateTable): string[] {
  const problems: string[] = [];
  if (t.version.length === 0) problems.push('version must not be empty');
  const mpm = t.minorUnitsPerMajor ?? DEFAULT_MINOR_UNITS_PER_MAJOR;
  if (!Number.isSafeInteger(mpm) || mpm <= 0) problems.push('minorUnitsPerMajor must be a positive integer');
  for (const [model, r] of Object.entries(t.models)) {
    const ratios: [string, Ratio | undefined][] = [
      ['coinsPerTokenInput', r.coinsPerTokenInput],
      ['coinsPerTokenOutput', r.coinsPerTokenOutput],
      ['coinsPerTokenCachedInput', r.coinsPerTokenCachedInput],
      ['coinsPerTokenCacheWrite', r.coinsPerTokenCacheWrite],
      ['coinsPerTokenReasoning', r.coinsPerTokenReasoning],
    ];
    for (const [name, ratio] of ratios) {
      if (ratio === undefined) continue;
      if (!Number.isSafeInteger(ratio.num) || ratio.num < 0 || !Number.isSafeInteger(ratio.den) || ratio.den <= 0) {
        problems.push(`${model}.${name} must be {num >= 0, den > 0} integers`);
      }
    }
    const prices = [
      r.priceMicrosPerMillionInput,
      r.priceMicrosPerMillionOutput,
      r.priceMicrosPerMillionCachedInput,
      r.priceMicrosPerMillionCacheWrite,
      r.priceMicrosPerMillionReasoning,
      r.perRequestCharge,
    ];
    if (prices.some((p) => p !== undefined && (!Number.isSafeInteger(p) || p < 0))) {
      problems.push(`${model}: prices and perRequestCharge must be non-negative integers`);
    }
    if (r.coinsPerMajor !== undefined && (!Number.isSafeInteger(r.coinsPerMajor) || r.coinsPerMajor <= 0))
      problems.push(`${model}: coinsPerMajor must be a positive integer`);
    if ((r.priceMicrosPerMillionInput === undefined) !== (r.priceMicrosPerMillionOutput === undefined)) {
      problems.push(`${model}: give both priceMicrosPerMillionInput and priceMicrosPerMillionOutput, or neither`);
    }
  }
  return problems;
}
