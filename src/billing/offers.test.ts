import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { OfferCatalogHolder, parseOfferCatalog } from './offers.ts';
import { cycleWindow, prorate, reAnchorable } from './periods.ts';

const SHIPPED = readFileSync(new URL('../../config/offers.yaml', import.meta.url), 'utf8');

test("the shipped catalog is valid and warns of nothing (a payg offer's own price is its price now, issue 12)", () => {
  const r = parseOfferCatalog(SHIPPED, {
    walletCoinsPerUnit: 400_000,
    knownModels: new Set(['package-basic', 'package-developer', 'deepseek-v3.2', 'hunyuan-turbos']),
  });
  assert.ok(r.ok, r.ok ? '' : r.message);
  assert.equal(r.value.currency, 'CNY');
  assert.deepEqual(r.value.warnings, []);
  const light = r.value.offers.get('ct-personal-light')!;
  assert.deepEqual(
    [light.priceMinor, light.cycle, light.allowance, light.overage, light.channel],
    [990, 'month', { unit: 'tokens', amount: 10_000_000 }, 'block', 'phone_bill'],
  );
});

test('every problem is reported at once, with its path and line, in plain words', () => {
  const r = parseOfferCatalog(
    [
      'version: 1',
      'offers:',
      '  a:',
      '    name: A',
      '    type: plan',
      '    price: "-1"',
      '    allowance: { tokens: "ten" }',
      '    prise: 3',
      '  B_bad: { name: B, type: pack }',
    ].join('\n'),
  );
  assert.ok(!r.ok);
  const errors = (r.details as { errors: string[] }).errors;
  assert.ok(
    errors.some((e) => /^offers\.a\.price \(line 6\): expected an amount like "9\.90"/.test(e)),
    errors.join('\n'),
  );
  assert.ok(errors.some((e) => /^offers\.a\.allowance\.tokens \(line 7\): expected a positive whole amount/.test(e)));
  assert.ok(errors.some((e) => /^offers\.a \(line \d\): unknown field "prise"/.test(e)));
  assert.ok(errors.some((e) => /^offers\.B_bad.*lower-case letters, digits and dashes/.test(e)));
});

test('rules across fields: cycles, validity, trials, payg, add-ons, seats', () => {
  const r = parseOfferCatalog(`
version: 1
offers:
  p: { name: P, type: plan, price: "1.00" }
  k: { name: K, type: pack, price: "1.00", cycle: month, allowance: { tokens: 1 } }
  t: { name: T, type: trial, price: "1.00", validityDays: 3, allowance: { tokens: 1 } }
  g: { name: G, type: payg, allowance: { tokens: 5 } }
  a: { name: A, type: addon, price: "1.00", appliesTo: [k, nope] }
  s: { name: S, type: plan, price: "1.00", cycle: month, seats: { min: 5, max: 2 }, allowance: { tokens: 1, requests: 2 } }
`);
  assert.ok(!r.ok);
  const errors = (r.details as { errors: string[] }).errors.join('\n');
  for (const re of [
    /offers\.p\.cycle .*needs a cycle/,
    /offers\.k\.cycle .*has no cycle: use validityDays/,
    /offers\.k\.validityDays .*needs validityDays/,
    /offers\.t\.price .*a trial is free/,
    /offers\.g\.allowance .*no allowance/,
    /offers\.g\.payg .*needs payg\.tokensPerYuan/,
    /offers\.a\.feature .*needs a feature/,
    /offers\.a\.appliesTo .*k is a pack, not a plan/,
    /offers\.a\.appliesTo .*unknown offer nope/,
    /offers\.s\.seats .*min is larger/,
    /offers\.s\.allowance .*exactly one of tokens, requests or money/,
  ]) {
    assert.match(errors, re);
  }
});

test('invalid YAML names the line; a failed reload keeps the catalog in force', () => {
  const first = parseOfferCatalog('version: 1\noffers:\n  x: { name: X, type: pack, price: "1.00", validityDays: 1 }\n');
  assert.ok(first.ok);
  const holder = new OfferCatalogHolder(first.value);
  const bad = holder.reload('version: 1\noffers:\n  x: { name: X\n  y: [\n');
  assert.ok(!bad.ok && /not valid YAML:\nline \d+/.test(bad.message), bad.ok ? '' : bad.message);
  assert.equal(holder.current, first.value);
  assert.match(holder.lastError!, /not valid YAML/);
  assert.ok(holder.reload('version: 2\noffers:\n  z: { name: Z, type: pack, price: "1.5", validityDays: 1, allowance: { tokens: 1.5M } }\n').ok);
  assert.deepEqual(
    [holder.current.version, holder.current.offers.get('z')!.priceMinor, holder.current.offers.get('z')!.allowance!.amount],
    ['2', 150, 1_500_000],
  );
});

test('proration rounds charges up and credits down; renewal dates clamped to a short month cannot be re-anchored', () => {
  const anchor = Date.parse('2026-01-31T10:00:00Z');
  const feb = cycleWindow(anchor, 'month', 1);
  assert.equal(new Date(feb.startMs).toISOString(), '2026-02-28T10:00:00.000Z');
  assert.equal(new Date(feb.endMs).toISOString(), '2026-03-31T10:00:00.000Z');
  assert.equal(prorate(1000, feb, feb.startMs + (feb.endMs - feb.startMs) / 3, 'ceil'), 667);
  assert.equal(prorate(1000, feb, feb.startMs + (feb.endMs - feb.startMs) / 3, 'floor'), 666);
  assert.equal(reAnchorable(anchor, 'month', 1), false);
  assert.equal(reAnchorable(anchor, 'month', 2), true);
  assert.equal(reAnchorable(Date.parse('2028-02-29T00:00:00Z'), 'year', 1), false);
  assert.equal(reAnchorable(Date.parse('2028-02-29T00:00:00Z'), 'year', 4), true);
});
