import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ManualClock, SeededRandom } from '../core/index.ts';
import type { ModelSpec } from '../catalog/index.ts';
import { chooseAutoModel, LatencyTracker, parseAutoModel, planAutoAttempts, routeHeader, type AutoChoiceInput, type AutoPolicy } from './index.ts';

const model = (
  id: string,
  coinsIn: number,
  coinsOut: number,
  tier: number | undefined,
  deps: [string, number][] = [['p', 1]],
  groups: string[] = [],
): ModelSpec => ({
  id,
  kind: 'chat',
  vendor: 'v',
  displayName: id,
  aliases: [],
  groups,
  contextWindow: 1000,
  maxOutputTokens: 100,
  capabilities: [],
  fallback: [],
  attemptsMax: 3,
  requestsPerCall: 1,
  createdS: 0,
  cost: { currency: 'CNY', inputMicrosPerMillion: 0, outputMicrosPerMillion: 0, cachedInputMicrosPerMillion: 0 },
  coins: {
    input: { num: coinsIn, den: 1 },
    output: { num: coinsOut, den: 1 },
    cachedInput: { num: 1, den: 1 },
    reasoning: { num: 1, den: 1 },
  },
  deployments: deps.map(([p, w]) => ({ id: `${p}/${id}@r`, provider: p, upstreamModel: id, region: 'r', weight: w })),
  ...(tier === undefined ? {} : { tier }),
});

const input = (over: Partial<AutoChoiceInput>): AutoChoiceInput => ({
  policy: 'balanced',
  candidates: [],
  covered: () => true,
  isAvailable: () => true,
  latencyMs: () => undefined,
  tokensInput: 100,
  tokensOutput: 100,
  ...over,
});

describe('auto routing', () => {
  test('auto, auto:cheap and auto:best are policies; other auto:* ids are unknown; ordinary ids are not auto', () => {
    assert.equal(parseAutoModel('auto'), 'balanced');
    assert.equal(parseAutoModel('auto:cheap'), 'cheap');
    assert.equal(parseAutoModel('auto:best'), 'best');
    assert.equal(parseAutoModel('auto:xyz'), 'unknown');
    assert.equal(parseAutoModel('glm-5'), null);
    assert.equal(parseAutoModel('automatic'), null);
  });

  test('auto:cheap picks the lowest expected coins; auto:best the highest tier; untiered models never', () => {
    const cheap = model('cheap', 1, 1, 1);
    const mid = model('mid', 2, 8, 2);
    const best = model('best', 10, 40, 3);
    const untiered = model('untiered', 0, 0, undefined);
    const candidates = [best, mid, cheap, untiered];
    assert.equal(chooseAutoModel(input({ policy: 'cheap', candidates }))!.model.id, 'cheap');
    assert.equal(chooseAutoModel(input({ policy: 'best', candidates }))!.model.id, 'best');
    assert.equal(chooseAutoModel(input({ candidates: [untiered] })), null);
  });

  test('models the package pays for come first; another only when none is covered, and the reason says so', () => {
    const covered = model('covered', 5, 5, 2, [['p', 1]], ['pkg']);
    const wallet = model('wallet', 1, 1, 2);
    const isCovered = (m: ModelSpec): boolean => m.groups.includes('pkg');
    const c = chooseAutoModel(input({ policy: 'cheap', candidates: [wallet, covered], covered: isCovered }))!;
    assert.equal(c.model.id, 'covered');
    assert.equal(routeHeader(c), 'model=covered; reason=cheapest-covered; tier=2');
    const w = chooseAutoModel(input({ policy: 'cheap', candidates: [wallet], covered: isCovered }))!;
    assert.equal(w.reason, 'cheapest-wallet');
  });

  test('balanced weighs measured latency: a much slower cheap model loses to a fast one of the same tier', () => {
    const slow = model('slow', 1, 1, 2, [['a', 1]]);
    const fast = model('fast', 1, 2, 2, [['b', 1]]);
    const latency = new LatencyTracker(new ManualClock(0));
    latency.observe('a/slow@r', 5000, 4000);
    latency.observe('b/fast@r', 300, 100);
    const choice = chooseAutoModel(input({ candidates: [slow, fast], latencyMs: (id) => latency.latencyMs(id) }))!;
    assert.equal(choice.model.id, 'fast');
    assert.equal(chooseAutoModel(input({ candidates: [slow, fast] }))!.model.id, 'slow', 'unmeasured: price decides');
  });

  test('a model whose deployments are all cooling down is not chosen', () => {
    const down = model('down', 1, 1, 3, [['x', 1]]);
    const up = model('up', 9, 9, 1, [['y', 1]]);
    assert.equal(chooseAutoModel(input({ policy: 'cheap', candidates: [down, up], isAvailable: (id) => !id.startsWith('x/') }))!.model.id, 'up');
  });

  test('the latency average moves toward new samples (EWMA), prefers time to first token, and goes stale by the clock', () => {
    const clock = new ManualClock(0);
    const t = new LatencyTracker(clock, 0.5, 1000);
    t.observe('d', 1000, null);
    assert.equal(t.latencyMs('d'), 1000);
    t.observe('d', 2000, null);
    assert.equal(t.latencyMs('d'), 1500);
    t.observe('d', 2000, 200);
    assert.equal(t.latencyMs('d'), 200);
    clock.advance(1001);
    assert.equal(t.latencyMs('d'), undefined, 'stale: unmeasured again');
    t.observe('d', 400, null);
    assert.equal(t.latencyMs('d'), 400, 'a stale average restarts from the new sample');
  });

  test('power of two choices: of two equally weighted deployments, the faster one is tried first', () => {
    const m = model('m', 1, 1, 2, [
      ['fast', 1],
      ['slow', 1],
    ]);
    const random = new SeededRandom(11);
    const latency = (id: string): number | undefined => (id.startsWith('fast/') ? 100 : 900);
    for (let i = 0; i < 50; i++) {
      const plan = planAutoAttempts(m, [], () => true, latency, random);
      assert.equal(plan[0]!.deployment.provider, 'fast');
      assert.equal(plan.length, 2);
    }
    assert.equal(planAutoAttempts(m, [], (id) => id.startsWith('slow/'), latency, random)[0]!.deployment.provider, 'slow', 'only healthy ones');
  });

  test('property: auto never picks a model the key may not use; with one cheaper covered model, auto:cheap picks it', () => {
    const arbModel = fc.record({
      coinsIn: fc.integer({ min: 1, max: 50 }),
      coinsOut: fc.integer({ min: 1, max: 50 }),
      tier: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
      allowed: fc.boolean(),
      covered: fc.boolean(),
      healthy: fc.boolean(),
      latency: fc.option(fc.integer({ min: 1, max: 10_000 }), { nil: undefined }),
    });
    fc.assert(
      fc.property(fc.array(arbModel, { minLength: 1, maxLength: 8 }), fc.constantFrom<AutoPolicy>('balanced', 'cheap', 'best'), (rows, policy) => {
        const models = rows.map((r, i) => model(`m${i}`, r.coinsIn, r.coinsOut, r.tier, [[`p${i}`, 1]]));
        const row = (m: ModelSpec) => rows[Number(m.id.slice(1))]!;
        const candidates = models.filter((m) => row(m).allowed); // what the key allows (the gateway's filter)
        const base = input({
          policy,
          candidates,
          covered: (m) => row(m).covered,
          isAvailable: (id) => rows[Number(id.slice(1, id.indexOf('/')))]!.healthy,
          latencyMs: (id) => rows[Number(id.slice(1, id.indexOf('/')))]!.latency,
        });
        const choice = chooseAutoModel(base);
        const eligible = candidates.filter((m) => m.tier !== undefined && row(m).healthy);
        if (eligible.length === 0) return choice === null;
        assert.ok(choice !== null);
        assert.ok(row(choice.model).allowed && choice.model.tier !== undefined && row(choice.model).healthy);
        if (eligible.some((m) => row(m).covered)) assert.ok(row(choice.model).covered, 'a covered model is preferred');
        // One covered model strictly cheaper than every other covered one: auto:cheap picks it.
        const covered = eligible.filter((m) => row(m).covered);
        const price = (m: ModelSpec) => row(m).coinsIn + row(m).coinsOut;
        const cheapest = covered.toSorted((a, b) => price(a) - price(b));
        if (cheapest.length > 0 && (cheapest.length === 1 || price(cheapest[0]!) < price(cheapest[1]!)))
          assert.equal(chooseAutoModel({ ...base, policy: 'cheap' })!.model.id, cheapest[0]!.id);
        return true;
      }),
      { numRuns: 300, seed: 17 },
    );
  });
});
