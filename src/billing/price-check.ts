/**
 * The catalog's below-cost check (issue 12, finding 12): does any price sell a model below the vendor cost the
 * model catalog configures for it? Pure and exact (bigint cross-multiplication, no floats in the comparison).
 *
 * A token of model m in direction d (input, cached input, output, reasoning) costs coins(m, d) token coins, so:
 * - a package (plan, pack, add-on) with a tokens allowance sells a coin at price / allowance (per seat both are per
 *   seat, so the ratio is the same): it sells d of m at price x coins(m, d) / allowance per token;
 * - a pay-as-you-go offer or the engine's wallet price sells C coins per major unit: 1 / C x coins(m, d) per token.
 * Either is below cost when less than the model's vendor cost in that direction (reasoning at the output cost).
 * Only the models the price pays for count: a package's `models` (ids, aliases, group names; none = every model);
 * money (wallets, pay-as-you-go, recharge cards) pays for every model. Free offers (trials) are promotions and
 * request-count allowances have no per-token price: neither is checked.
 */
import type { ModelCatalog, ModelSpec, Ratio } from '../catalog/index.ts';
import type { Offer } from './types.ts';

/** Micros of the major unit per minor unit (CNY: 1 fen = 10,000 micro-CNY). */
const MICROS_PER_MAJOR = 1_000_000n;
const PER_MILLION = 1_000_000n;

type Direction = 'input' | 'cached input' | 'output' | 'reasoning';

function directions(m: ModelSpec): { d: Direction; coins: Ratio; costMicrosPerMillion: number }[] {
  return [
    { d: 'input', coins: m.coins.input, costMicrosPerMillion: m.cost.inputMicrosPerMillion },
    { d: 'cached input', coins: m.coins.cachedInput, costMicrosPerMillion: m.cost.cachedInputMicrosPerMillion },
    { d: 'output', coins: m.coins.output, costMicrosPerMillion: m.cost.outputMicrosPerMillion },
    { d: 'reasoning', coins: m.coins.reasoning, costMicrosPerMillion: m.cost.outputMicrosPerMillion },
  ];
}

/** The models a `models` list pays for: ids, aliases and group names; null = every model. */
export function modelsPaidFor(catalog: ModelCatalog, models: readonly string[] | null): ModelSpec[] {
  if (models === null) return [...catalog.models.values()];
  const ids = new Set<string>();
  for (const entry of models) {
    if (catalog.models.has(entry)) ids.add(entry);
    const aliased = catalog.aliases.get(entry);
    if (aliased !== undefined) ids.add(aliased);
    for (const id of catalog.groups.get(entry) ?? []) ids.add(id);
  }
  return [...ids].map((id) => catalog.models.get(id)).filter((m): m is ModelSpec => m !== undefined);
}

/** A price per coin as an exact fraction of micros of the major unit: num / den micros per coin. */
interface CoinPrice {
  num: bigint;
  den: bigint;
}

const fmt = (microsPerMillion: number): string => (microsPerMillion / 1_000_000).toFixed(2);

/** One warning per model that `price` sells below cost in some direction, naming each such direction. */
function check(where: string, what: string, price: CoinPrice, models: ModelSpec[], currency: string): string[] {
  const out: string[] = [];
  for (const m of models) {
    if (m.cost.currency !== currency) continue; // a cost in another currency cannot be compared without a rate
    const below: string[] = [];
    for (const { d, coins, costMicrosPerMillion } of directions(m)) {
      // sell per 1M tokens = price x coins x 1e6 = (num x coins.num x 1e6) / (den x coins.den) micros
      const sellNum = price.num * BigInt(coins.num) * PER_MILLION;
      const sellDen = price.den * BigInt(coins.den);
      if (sellNum >= BigInt(costMicrosPerMillion) * sellDen) continue;
      const sell = Number((sellNum * 100n) / sellDen) / 100; // display only (rounded down to 0.01 micro)
      below.push(`${d} ${fmt(sell)} < ${fmt(costMicrosPerMillion)}`);
    }
    if (below.length > 0) {
      out.push(
        `${where}: ${what} sells ${m.id} below its vendor cost (${currency} per 1M tokens: ${below.join(', ')}); ` +
          `restrict the models it pays for, or raise models.${m.id}.coins`,
      );
    }
  }
  return out;
}

/** Below-cost warnings for the offers and the engine's wallet price (coins per major unit). */
export function belowCostWarnings(offers: Iterable<Offer>, catalog: ModelCatalog, currency: string, walletCoinsPerUnit?: number): string[] {
  const warnings: string[] = [];
  const everything = [...catalog.models.values()];
  const minorPerMajor = 100n;
  for (const o of offers) {
    if (o.status === 'retired') continue;
    if (o.paygTokensPerUnit !== null) {
      const price = { num: MICROS_PER_MAJOR, den: BigInt(o.paygTokensPerUnit) };
      warnings.push(...check(`offers.${o.id}.payg`, `${o.paygTokensPerUnit} tokens per ${currency}`, price, everything, currency));
      continue;
    }
    if (o.allowance === null || o.allowance.unit !== 'tokens' || o.priceMinor <= 0) continue;
    const price = { num: BigInt(o.priceMinor) * (MICROS_PER_MAJOR / minorPerMajor), den: BigInt(o.allowance.amount) };
    const what = `${(o.priceMinor / 100).toFixed(2)} ${currency} for ${o.allowance.amount} tokens`;
    warnings.push(...check(`offers.${o.id}`, what, price, modelsPaidFor(catalog, o.models), currency));
  }
  if (walletCoinsPerUnit !== undefined) {
    const price = { num: MICROS_PER_MAJOR, den: BigInt(walletCoinsPerUnit) };
    warnings.push(...check('charging.walletCoinsPerYuan', `the wallet price, ${walletCoinsPerUnit} tokens per ${currency},`, price, everything, currency));
  }
  return warnings;
}
