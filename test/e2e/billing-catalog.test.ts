/** The shipped catalog loads as the seed offers; the catalog file hot-reloads, and a broken edit is refused with every error. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../support/server.ts';

const SHIPPED = readFileSync(new URL('../../config/offers.yaml', import.meta.url), 'utf8');
let srv: TestServer;
let file: string;
before(async () => {
  file = join(mkdtempSync(join(tmpdir(), 'tg-offers-')), 'offers.yaml');
  writeFileSync(file, SHIPPED);
  srv = await startTestServer({ env: { TOKENGRID_OFFERS_FILE: file } });
});
after(() => srv.close());

test('the seed offers of the market load from the shipped catalog', async () => {
  const defaults = await startTestServer();
  try {
    const offers = (await defaults.admin('GET', '/admin/offers')).body;
    const byId = new Map<string, any>(offers.data.map((o: any) => [o.id, o]));
    const expect: [string, string, number, string | null, number | null][] = [
      ['ct-personal-light', 'plan', 9_90, 'tokens', 10_000_000],
      ['ct-personal-standard', 'plan', 29_90, 'tokens', 40_000_000],
      ['ct-personal-premium', 'plan', 49_90, 'tokens', 80_000_000],
      ['ct-dev-basic', 'plan', 39_90, 'tokens', 15_000_000],
      ['ct-dev-pro', 'plan', 159_90, 'tokens', 70_000_000],
      ['ct-dev-flagship', 'plan', 299_90, 'tokens', 150_000_000],
      ['bj-mobile-once', 'pack', 5_99, 'tokens', 2_000_000],
      ['bj-mobile-monthly', 'plan', 24_99, 'tokens', 10_000_000],
      ['sh-telecom-payg', 'payg', 0, null, null],
      ['sh-mobile-payg', 'payg', 0, null, null],
      ['unicom-trial-30m', 'trial', 0, 'tokens', 30_000_000],
      ['volc-coding-plan', 'plan', 40_00, 'requests', 18_000],
      ['bailian-team', 'plan', 198_00, 'tokens', 50_000_000],
      ['family-share', 'plan', 59_90, 'tokens', 100_000_000],
      ['ct-security-pack', 'addon', 5_00, null, null],
      ['ct-broadband-speedup', 'addon', 10_00, null, null],
      ['ct-context-compression', 'addon', 3_00, null, null],
      ['extra-seat', 'addon', 198_00, 'tokens', 50_000_000],
    ];
    for (const [id, type, price, unit, amount] of expect) {
      const o = byId.get(id);
      assert.ok(o, `${id} is in the shipped catalog`);
      assert.equal(o.type, type, id);
      if (price !== null) assert.equal(o.priceMinor, price, `${id} price`);
      if (unit !== null) assert.equal(o.allowance.unit, unit, `${id} unit`);
      if (amount !== null) assert.equal(o.allowance.amount, amount, `${id} allowance`);
    }
    assert.equal(byId.get('sh-telecom-payg').paygTokensPerUnit, 250_000);
    assert.equal(byId.get('sh-mobile-payg').paygTokensPerUnit, 400_000);
    assert.equal(byId.get('unicom-trial-30m').trialOnce, true);
    assert.deepEqual(byId.get('bailian-team').seats, { min: 3, max: 500 });
    assert.equal(byId.get('family-share').members, 5);
    assert.equal(byId.get('ct-security-pack').feature, 'security_pack');
    assert.equal(byId.get('ct-broadband-speedup').feature, 'broadband_speedup');
    assert.equal(byId.get('ct-context-compression').feature, 'context_compression');
    assert.equal(byId.get('extra-seat').feature, 'seat');
    assert.ok(byId.get('ct-security-pack').assumed.includes('price'), 'figures that are not public are marked assumed');
  } finally {
    await defaults.close();
  }
});

test('a broken catalog edit is refused with every error and its line; the previous catalog stays; a good edit is live at once', async () => {
  const before = (await srv.admin('GET', '/admin/offers')).body.data.length;
  writeFileSync(
    file,
    SHIPPED.replace('price: "9.90"', 'price: "9.999"').replace(
      'cycle: month\n    allowance: { tokens: 40M }',
      'cycle: fortnight\n    allowance: { tokens: 40M }',
    ),
  );
  const bad = await srv.admin('POST', '/admin/offers/reload');
  assert.equal(bad.status, 422);
  assert.match(bad.body.error.message, /previous catalog stays/);
  assert.match(bad.body.error.message, /offers\.ct-personal-light\.price \(line \d+\): expected an amount like "9\.90"/);
  assert.match(bad.body.error.message, /offers\.ct-personal-standard\.cycle \(line \d+\)/);
  assert.equal((await srv.admin('GET', '/admin/offers')).body.data.length, before);

  writeFileSync(
    file,
    `${SHIPPED}\n  weekend-pack:\n    name: Weekend pack\n    type: pack\n    price: "1.99"\n    allowance: { tokens: 1M }\n    validityDays: 2\n`,
  );
  const good = await srv.admin('POST', '/admin/offers/reload');
  assert.equal(good.status, 200, JSON.stringify(good.body));
  assert.equal(good.body.offers, before + 1);
  const acct = (await srv.admin('POST', '/admin/accounts', { name: 'weekend' })).body.id;
  const r = await fetch(`${srv.url}/admin/subscriptions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${srv.adminKey}`, 'content-type': 'application/json', 'idempotency-key': 'w1' },
    body: JSON.stringify({ accountId: acct, offerId: 'weekend-pack', channel: 'external' }),
  });
  assert.equal(r.status, 201);
});
