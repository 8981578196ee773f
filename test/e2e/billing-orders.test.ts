/**
 * The billing admin API end to end, on a real server with a test clock: subscribe, use through /v1, add-ons,
 * renewals on the anchor day, upgrade, codes, points, cancel, monthly bill runs (JSON and CSV, safe to re-run)
 * whose totals equal the orders and usage records, and the finance reports.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { ManualClock } from '../../src/core/index.ts';
import { auditAccount } from '../../src/charging/index.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const clock = new ManualClock('2026-10-31T08:00:00Z');
let srv: TestServer;
let n = 0;

/** The shipped catalog, with its model groups mapped to the test config's (deepseek-v3.2 is in `basic`). */
function catalogFile(): string {
  const text = readFileSync(new URL('../../config/offers.yaml', import.meta.url), 'utf8').replace(/package-basic|package-developer/g, 'basic');
  const file = join(mkdtempSync(join(tmpdir(), 'tg-offers-')), 'offers.yaml');
  writeFileSync(file, text);
  return file;
}

before(async () => {
  srv = await startTestServer({ clock, env: { TOKENGRID_OFFERS_FILE: catalogFile() } });
});
after(() => srv.close());

async function call(
  method: string,
  path: string,
  body?: unknown,
  key: string | null = `k${++n}`,
): Promise<{ status: number; body: any; headers: Headers; text: string }> {
  const headers: Record<string, string> = { authorization: `Bearer ${srv.adminKey}` };
  if (key !== null) headers['idempotency-key'] = key;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(srv.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: r.status, body: parsed, headers: r.headers, text };
}

async function chat(key: string): Promise<void> {
  const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: key, maxRetries: 0 });
  const r = await client.chat.completions.create({ model: 'deepseek-v3.2', max_tokens: 50, messages: [{ role: 'user', content: 'Say something' }] });
  assert.ok(r.usage!.total_tokens > 0);
}

/** A bill's total equals the lines of the orders it holds plus the money the month's usage records charged. */
async function assertFolds(accountId: string, period: string): Promise<any> {
  const bills = (await call('GET', `/admin/bills?account=${accountId}&period=${period}`, undefined, null)).body.data;
  assert.equal(bills.length, 1, `one bill for ${period}`);
  const bill = bills[0];
  const orders = (await call('GET', `/admin/orders?account=${accountId}`, undefined, null)).body.data.filter((o: any) => o.billId === bill.id);
  const start = Date.parse(`${period}-01T00:00:00Z`);
  const end = Date.UTC(new Date(start).getUTCFullYear(), new Date(start).getUTCMonth() + 1, 1);
  const usage = (
    await call(
      'GET',
      `/admin/accounts/${accountId}/usage?detail=records&from=${new Date(start).toISOString()}&to=${new Date(end).toISOString()}`,
      undefined,
      null,
    )
  ).body.data;
  const fromOrders = orders.flatMap((o: any) => o.lines).reduce((s: number, l: any) => s + l.amountMinor, 0);
  const fromUsage = usage
    .flatMap((u: any) => u.charges)
    .filter((c: any) => c.kind === 'wallet' || c.kind === 'postpaid_line')
    .reduce((s: number, c: any) => s + c.amount, 0);
  assert.equal(bill.totalMinor, fromOrders + fromUsage, `${period}: total = orders + usage, to the cent`);
  return bill;
}

test('a subscriber through three months on the admin API: orders, renewals, bills and reports add up', async () => {
  const acct = (await call('POST', '/admin/accounts', { name: 'Ms Wang' }, null)).body;
  const key = (await call('POST', '/admin/keys', { accountId: acct.id }, null)).body.key;

  const broke = await call('POST', '/admin/subscriptions', { accountId: acct.id, offerId: 'ct-dev-basic', channel: 'wallet' });
  assert.equal(broke.status, 402, broke.text);
  assert.match(broke.body.error.message, /wallet holds 0\.00 CNY/);
  assert.deepEqual((await call('GET', `/admin/subscriptions?account=${acct.id}`, undefined, null)).body.data, [], 'nothing changed');

  const top = await call('POST', '/admin/orders/topup', { accountId: acct.id, amount: '100.00' }, 'topup-1');
  assert.equal(top.status, 201);
  assert.equal(top.body.wallet.balanceMinor, 100_00);
  const replay = await call('POST', '/admin/orders/topup', { accountId: acct.id, amount: '100.00' }, 'topup-1');
  assert.equal(replay.status, 201);
  assert.equal(replay.headers.get('idempotent-replayed'), 'true');
  assert.equal(replay.body.order.id, top.body.order.id, 'a replay returns the first answer');

  const sub = await call('POST', '/admin/subscriptions', { accountId: acct.id, offerId: 'ct-dev-basic', channel: 'wallet' });
  assert.equal(sub.status, 201, sub.text);
  assert.equal(sub.body.status, 'active');
  assert.equal(sub.body.currentPeriodStart, '2026-10-31T08:00:00.000Z');
  assert.equal(sub.body.currentPeriodEnd, '2026-11-30T08:00:00.000Z', 'anchored on the 31st: renews on Nov 30');
  assert.equal(sub.body.order.amountMinor, 39_90);

  await chat(key);
  const bal = (await fetch(`${srv.url}/self/balance`, { headers: { authorization: `Bearer ${key}` } }).then((r) => r.json())) as any;
  const plan = bal.buckets.find((b: any) => b.kind === 'plan_allowance');
  assert.ok(plan.used > 0 && plan.left === plan.total - plan.used);
  assert.match(plan.text, /left of 15M token coins; renews on 2026-11-30 with 15M token coins/);

  const sec = await call('POST', `/admin/accounts/${acct.id}/addons`, { offerId: 'ct-security-pack' });
  assert.equal(sec.status, 201, sec.text);
  assert.equal(sec.body.order.amountMinor, 5_00, 'bought at the cycle start: the full price');
  const ent = (await call('GET', `/admin/accounts/${acct.id}/entitlements`, undefined, null)).body;
  assert.deepEqual(
    ent.features.map((f: any) => f.feature),
    ['security_pack'],
  );
  assert.equal(ent.rateLimits.requestsPerMinute, 300);

  clock.set('2026-11-01T00:00:00Z');
  const run = await call('POST', '/admin/bills/run', { period: '2026-10' }, null);
  assert.equal(run.status, 200, run.text);
  assert.ok(run.body.created >= 1);
  const oct = await assertFolds(acct.id, '2026-10');
  assert.equal(oct.totalMinor, 39_90 + 5_00 + oct.lines.filter((l: any) => l.kind === 'usage').reduce((s: number, l: any) => s + l.amountMinor, 0));
  const csv = await call('GET', `/admin/bills/${oct.id}.csv`, undefined, null);
  assert.equal(csv.status, 200);
  assert.match(csv.headers.get('content-type')!, /text\/csv/);
  assert.match(csv.text, /^bill_id,account_id,period,line,kind,description,quantity,amount,currency,paid_by,order_id,offer_id,model\n/);
  assert.match(csv.text, new RegExp(`,total,,,${(oct.totalMinor / 100).toFixed(2)},CNY`));
  const again = await call('POST', '/admin/bills/run', { period: '2026-10' }, null);
  assert.equal(again.body.created, 0);
  assert.ok(again.body.existing >= 1);
  assert.deepEqual((await call('GET', `/admin/bills/${oct.id}`, undefined, null)).body.lines, oct.lines, 'a re-run changes nothing');

  clock.set('2026-11-30T08:00:01Z');
  const renewed = (await call('GET', `/admin/subscriptions/${sub.body.id}`, undefined, null)).body;
  assert.equal(renewed.cycleIndex, 1);
  assert.equal(renewed.currentPeriodEnd, '2026-12-31T08:00:00.000Z');
  const renewals = (await call('GET', `/admin/orders?account=${acct.id}`, undefined, null)).body.data.filter((o: any) => o.type === 'renew');
  assert.deepEqual(renewals.map((o: any) => [o.offerId, o.effectiveAt]).sort(), [
    ['ct-dev-basic', '2026-11-30T08:00:00.000Z'],
    ['ct-security-pack', '2026-11-30T08:00:00.000Z'],
  ]);

  clock.set('2026-12-15T20:00:00Z');
  assert.equal((await call('POST', '/admin/orders/topup', { accountId: acct.id, amountMinor: 200_00 })).status, 201);
  const up = await call('POST', `/admin/subscriptions/${sub.body.id}/change`, { offerId: 'ct-dev-pro' });
  assert.equal(up.status, 200, up.text);
  assert.equal(up.body.change, 'upgrade');
  assert.equal(up.body.offerId, 'ct-dev-pro');
  const [charge, credit] = up.body.order.lines.map((l: any) => l.amountMinor);
  assert.equal(charge, Math.ceil((159_90 * 15.5) / 31), '15.5 of 31 days of 159.90, rounded up');
  assert.equal(credit, -Math.floor((39_90 * 15.5) / 31), 'the unused 15.5 days of 39.90 credited');
  await chat(key);

  const codes = await call('POST', '/admin/codes', { offerId: 'bj-mobile-once', count: 2 });
  assert.equal(codes.status, 201, codes.text);
  assert.equal(codes.body.codes.length, 2);
  const redeemed = await fetch(`${srv.url}/self/redeem`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ code: codes.body.codes[0] }),
  });
  assert.equal(redeemed.status, 201);
  const points = (await call('GET', `/admin/accounts/${acct.id}/points`, undefined, null)).body.points;
  assert.ok(points >= 100, `points earned: ${points}`);
  const pr = await call('POST', `/admin/accounts/${acct.id}/points/redeem`, { points: 100 });
  assert.equal(pr.status, 201, pr.text);
  assert.equal(pr.body.tokens, 1_000_000);

  const cancel = await call('POST', `/admin/subscriptions/${sub.body.id}/cancel`);
  assert.equal(cancel.status, 200, cancel.text);
  assert.equal(cancel.body.cancelAt, '2026-12-31T08:00:00.000Z');
  assert.equal(cancel.body.renewsAt, null);

  clock.set('2027-01-01T00:00:00Z');
  assert.equal((await call('POST', '/admin/bills/run', { period: '2026-11' }, null)).status, 200);
  assert.equal((await call('POST', '/admin/bills/run', { period: '2026-12' }, null)).status, 200);
  await assertFolds(acct.id, '2026-11');
  const dec = await assertFolds(acct.id, '2026-12');
  assert.ok(
    dec.lines.some((l: any) => l.kind === 'proration' && l.amountMinor < 0),
    'the upgrade credit is a line',
  );
  assert.ok(dec.lines.some((l: any) => l.kind === 'code' && l.paidBy === 'code'));
  assert.equal((await call('GET', `/admin/subscriptions/${sub.body.id}`, undefined, null)).body.status, 'canceled');

  const settlement = await call('GET', '/admin/reports/vendor-settlement?from=2026-10-01&to=2027-01-01', undefined, null);
  assert.equal(settlement.status, 200);
  assert.ok(settlement.body.rows.some((r: any) => r.vendor === 'deepseek' && r.model === 'deepseek-v3.2' && r.requests >= 1));
  const margin = await call('GET', '/admin/reports/margin?period=2026-12', undefined, null);
  assert.equal(margin.status, 200);
  assert.ok(margin.body.rows.some((r: any) => r.offerId === 'ct-dev-pro' && r.revenueMinor > 0));
  assert.deepEqual((await auditAccount(srv.app.chargingStore, acct.id)).problems, [], 'the charging ledger agrees (order payments from the wallet included)');
});

test('pay as you go on the phone bill: usage becomes a phone-bill line, handed to the carrier as a file', async () => {
  clock.set('2027-01-05T00:00:00Z');
  const acct = (await call('POST', '/admin/accounts', { name: 'Phone bill' }, null)).body;
  const key = (await call('POST', '/admin/keys', { accountId: acct.id }, null)).body.key;
  assert.equal((await call('POST', '/admin/subscriptions', { accountId: acct.id, offerId: 'sh-telecom-payg' })).status, 201);
  await chat(key);
  const self = (await fetch(`${srv.url}/self/balance`, { headers: { authorization: `Bearer ${key}` } }).then((r) => r.json())) as any;
  assert.equal(self.overage, 'postpaid');
  assert.match(self.pastCap, /phone bill/);
  clock.set('2027-02-01T00:00:00Z');
  const run = (await call('POST', '/admin/bills/run', { period: '2027-01' }, null)).body;
  assert.ok(run.carrier.submitted >= 1, JSON.stringify(run));
  const bill = await assertFolds(acct.id, '2027-01');
  assert.ok(bill.phoneBillMinor > 0);
  assert.ok(bill.lines.every((l: any) => l.kind !== 'usage' || l.paidBy === 'phone_bill'));
  const payments = (await call('GET', `/admin/payments?bill=${bill.id}`, undefined, null)).body.data;
  assert.deepEqual(
    payments.map((p: any) => [p.channel, p.status, p.amountMinor]),
    [['phone_bill', 'submitted', bill.phoneBillMinor]],
  );
  assert.match(payments[0].reference, /^carrier-charges-2027-01-.*\.csv$/);
  const exported = readFileSync(join(srv.dataDir, 'carrier-exports', payments[0].reference), 'utf8');
  assert.match(exported, new RegExp(`${bill.id},${acct.id},2027-01,${(bill.phoneBillMinor / 100).toFixed(2)},CNY`));
});
