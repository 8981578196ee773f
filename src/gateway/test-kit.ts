/** Fixtures the gateway's own tests share: one chat model with one deployment on one provider. Tests only. */
import type { ModelSpec } from '../catalog/index.ts';
import type { ProviderConfig } from '../providers/index.ts';

/** Chat model `m`: one deployment `p/up@r` (upstream model `up`), 1 coin per token each way, no vendor cost. */
export const testModel: ModelSpec = {
  id: 'm',
  kind: 'chat',
  vendor: 'v',
  displayName: 'M',
  aliases: [],
  groups: [],
  contextWindow: 100_000,
  maxOutputTokens: 4096,
  capabilities: [],
  deployments: [{ id: 'p/up@r', provider: 'p', upstreamModel: 'up', region: 'r', weight: 1 }],
  fallback: [],
  attemptsMax: 1,
  cost: { currency: 'CNY', inputMicrosPerMillion: 0, outputMicrosPerMillion: 0, cachedInputMicrosPerMillion: 0 },
  coins: { input: { num: 1, den: 1 }, output: { num: 1, den: 1 }, cachedInput: { num: 1, den: 1 }, reasoning: { num: 1, den: 1 } },
  requestsPerCall: 1,
  createdS: 0,
};

/** Provider `p`, OpenAI-compatible, at an address nothing listens on (tests give the gateway their own adapter). */
export const testProvider: ProviderConfig = { name: 'p', adapter: 'openai-compatible', baseUrl: 'http://127.0.0.1:1/v1' };
