import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock, SeededRandom } from '../core/index.ts';
import type { ModelSpec } from '../catalog/index.ts';
import { DeploymentHealth, planAttempts, weightedOrder } from './index.ts';

const model = (id: string, deps: [string, number][], attemptsMax = 3): ModelSpec => ({
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
  attemptsMax,
  requestsPerCall: 1,
  createdS: 0,
  cost: { currency: 'CNY', inputMicrosPerMillion: 0, outputMicrosPerMillion: 0, cachedInputMicrosPerMillion: 0 },
  coins: { input: { num: 1, den: 1 }, output: { num: 1, den: 1 }, cachedInput: { num: 1, den: 1 }, reasoning: { num: 1, den: 1 } },
  deployments: deps.map(([p, w]) => ({ id: `${p}/${id}@r`, provider: p, upstreamModel: id, region: 'r', weight: w })),
});

describe('routing', () => {
  test('weighted choice follows the weights over many draws', () => {
    const random = new SeededRandom(7);
    const items = [
      { id: 'a', weight: 3 },
      { id: 'b', weight: 1 },
    ];
    let a = 0;
    for (let i = 0; i < 4000; i++) if (weightedOrder(items, random)[0]!.id === 'a') a++;
    assert.ok(a > 2800 && a < 3200, `a first ${a} of 4000, expected about 3000`);
  });

  test('a zero-weight deployment is only tried after the weighted ones', () => {
    const random = new SeededRandom(1);
    for (let i = 0; i < 50; i++)
      assert.equal(
        weightedOrder(
          [
            { id: 'z', weight: 0 },
            { id: 'a', weight: 1 },
          ],
          random,
        )[0]!.id,
        'a',
      );
  });

  test('the plan lists fallbacks after the primary and respects the attempt budget', () => {
    const primary = model(
      'm',
      [
        ['p1', 1],
        ['p2', 1],
      ],
      3,
    );
    const fb = model('f', [
      ['p3', 1],
      ['p4', 1],
    ]);
    const plan = planAttempts(primary, [fb], () => true, new SeededRandom(3));
    assert.equal(plan.length, 3);
    assert.deepEqual(new Set(plan.slice(0, 2).map((a) => a.model.id)), new Set(['m']));
    assert.equal(plan[2]!.model.id, 'f');
  });

  test('a deployment that keeps failing is taken out, then probed back once after the cool-down', () => {
    const clock = new ManualClock(0);
    const health = new DeploymentHealth(clock, { failuresToOpen: 2, cooldownMs: 1000 });
    health.recordFailure('d');
    assert.equal(health.state('d'), 'closed');
    health.recordFailure('d');
    assert.equal(health.state('d'), 'open');
    assert.equal(health.tryAcquire('d'), false);
    clock.advance(1000);
    assert.equal(health.state('d'), 'half_open');
    assert.equal(health.tryAcquire('d'), true, 'one probe');
    assert.equal(health.tryAcquire('d'), false, 'only one probe at a time');
    health.recordFailure('d');
    assert.equal(health.state('d'), 'open', 'a failed probe reopens');
    clock.advance(1000);
    assert.equal(health.tryAcquire('d'), true);
    health.recordSuccess('d');
    assert.equal(health.state('d'), 'closed');
  });

  test('open deployments are left out of the plan; none available gives an empty plan', () => {
    const primary = model('m', [
      ['p1', 1],
      ['p2', 1],
    ]);
    const plan = planAttempts(primary, [], (id) => id.startsWith('p2'), new SeededRandom(1));
    assert.deepEqual(
      plan.map((a) => a.deployment.provider),
      ['p2'],
    );
    assert.deepEqual(
      planAttempts(primary, [], () => false, new SeededRandom(1)),
      [],
    );
  });
});

describe('prompt-prefix stickiness (rendezvous order)', () => {
  const primary = model('m', [
    ['p1', 1],
    ['p2', 1],
    ['p3', 2],
  ]);

  test('one prefix key always tries the same deployment first, whatever the random draw', () => {
    const firsts = new Set<string>();
    for (let seed = 1; seed <= 20; seed++) firsts.add(planAttempts(primary, [], () => true, new SeededRandom(seed), 'prefix-a')[0]!.deployment.id);
    assert.equal(firsts.size, 1);
  });

  test('keys spread over the deployments by weight', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 2000; i++) {
      const id = planAttempts(primary, [], () => true, new SeededRandom(1), `k${i}`)[0]!.deployment.id;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    // weights 1:1:2 -> about 500, 500, 1000
    assert.ok(counts.get('p3/m@r')! > 850 && counts.get('p3/m@r')! < 1150, JSON.stringify([...counts]));
    assert.ok(counts.get('p1/m@r')! > 400 && counts.get('p2/m@r')! > 400, JSON.stringify([...counts]));
  });

  test('an unhealthy sticky deployment falls back to the next in the key order; other keys keep theirs', () => {
    const full = planAttempts(primary, [], () => true, new SeededRandom(1), 'prefix-b').map((a) => a.deployment.id);
    const down = full[0]!;
    const without = planAttempts(primary, [], (id) => id !== down, new SeededRandom(1), 'prefix-b').map((a) => a.deployment.id);
    assert.deepEqual(without, full.slice(1));
  });
});
