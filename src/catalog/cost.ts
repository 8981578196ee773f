import type { ModelSpec } from './types.ts';

/** What the vendor charges for this usage, in micro-units of its currency, rounded up once. */
export function vendorCostMicros(model: ModelSpec, usage: { tokensInput: number; tokensOutput: number; tokensCachedInput: number }): number {
  const uncached = Math.max(0, usage.tokensInput - usage.tokensCachedInput);
  const total =
    BigInt(uncached) * BigInt(model.cost.inputMicrosPerMillion) +
    BigInt(usage.tokensCachedInput) * BigInt(model.cost.cachedInputMicrosPerMillion) +
    BigInt(usage.tokensOutput) * BigInt(model.cost.outputMicrosPerMillion);
  const q = total / 1_000_000n;
  return Number(total % 1_000_000n === 0n ? q : q + 1n);
}
