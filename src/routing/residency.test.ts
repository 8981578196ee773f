import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../core/index.ts';
import type { ModelSpec } from '../catalog/index.ts';
import { chooseAutoModel, planAttempts, planAutoAttempts, servedInRegions } from './index.ts';

/** A model with deployments `provider@region`. */
const model = (id: string, deps: string[], extra: Partial<ModelSpec> = {}): ModelSpec => ({
  id,
  kind: 'chat',
  vendor: 'v',
  displayName: id,
  aliases: [],
  groups: [],
  contextWindow: 1000,
  maxOutputTokens: 100,
  capabilities: [],
  fallback: [],
  attemptsMax: 10,
  requestsPerCall: 1,
  createdS: 0,
  cost: { currency: 'CNY', inputMicrosPerMillion: 0, outputMicrosPerMillion: 0, cachedInputMicrosPerMillion: 0 },
  coins: { input: { num: 1, den: 1 }, output: { num: 1, den: 1 }, cachedInput: { num: 1, den: 1 }, reasoning: { num: 1, den: 1 } },
  deployments: deps.map((pr) => {
    const [p, r] = pr.split('@') as [string, string];
    return { id: `${p}/${id}@${r}`, provider: p, upstreamModel: id, region: r, weight: 1 };
  }),
  ...extra,
});

const all = (): boolean => true;
const regionsOf = (plan: { deployment: { region: string } }[]): string[] => plan.map((a) => a.deployment.region);

describe('data residency in routing', () => {
  test('a pinned plan keeps only deployments in the pinned regions, in the primary and in every fallback', () => {
    const primary = model('m', ['a@cn-east', 'b@cn-north', 'c@sg']);
    const fallback = model('f', ['d@sg', 'e@cn-east']);
    for (let seed = 1; seed <= 20; seed++) {
      const plan = planAttempts(primary, [fallback], all, new SeededRandom(seed), undefined, ['cn-east']);
      assert.deepEqual(
        plan.map((a) => a.deployment.id),
        ['a/m@cn-east', 'e/f@cn-east'],
      );
    }
    // Several regions allowed: anything inside them, nothing outside.
    const two = planAttempts(primary, [fallback], all, new SeededRandom(3), undefined, ['cn-east', 'cn-north']);
    assert.deepEqual(regionsOf(two).sort(), ['cn-east', 'cn-east', 'cn-north']);
    // Not pinned: every deployment, as before.
    assert.equal(planAttempts(primary, [fallback], all, new SeededRandom(3)).length, 5);
  });

  test('an in-region deployment in cool-down leaves an empty plan, never an out-of-region one', () => {
    const primary = model('m', ['a@cn-east', 'c@sg']);
    const plan = planAttempts(primary, [], (id) => id !== 'a/m@cn-east', new SeededRandom(1), undefined, ['cn-east']);
    assert.deepEqual(plan, []);
    // ...and the model is still served in the region (the gateway says cool-down, not "no deployment there").
    assert.equal(servedInRegions([primary], ['cn-east']), true);
    assert.equal(servedInRegions([primary], ['eu']), false);
    assert.equal(servedInRegions([primary], undefined), true);
  });

  test('auto routing chooses only models served in the pinned regions and plans only those deployments', () => {
    const cheapAbroad = model('cheap', ['a@sg'], { tier: 1 });
    const dearHome = model('dear', ['b@cn-east', 'c@sg'], { tier: 1, coins: { ...cheapAbroad.coins, input: { num: 5, den: 1 } } });
    const input = {
      policy: 'cheap' as const,
      candidates: [cheapAbroad, dearHome],
      covered: all,
      isAvailable: all,
      latencyMs: () => undefined,
      tokensInput: 10,
      tokensOutput: 10,
    };
    assert.equal(chooseAutoModel(input)?.model.id, 'cheap');
    assert.equal(chooseAutoModel({ ...input, regions: ['cn-east'] })?.model.id, 'dear');
    assert.equal(chooseAutoModel({ ...input, regions: ['eu'] }), null);
    const plan = planAutoAttempts(dearHome, [cheapAbroad], all, () => undefined, new SeededRandom(2), ['cn-east']);
    assert.deepEqual(regionsOf(plan), ['cn-east']);
  });
});
