/**
 * Issue 12 (integrity), the attacker's billing findings on a real server over HTTP (/work/wt/findings/REPORT.md):
 * F3 a plan change across allowance units kept the old plan's allowance; F5 a fully refunded upgrade kept what it
 * bought; F4 an enterprise admin minted one free trial per sub-account; F2 self-service phone-bill top-ups and
 * orders had no limit and needed no phone-bill channel.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/core/index.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { linkPhone } from '../support/sms.ts';

const clock = new ManualClock('2026-11-10T08:00:00Z');
let srv: TestServer;
let n = 0;

/** The shipped catalog, with its model groups mapped to the test config's. */
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

async function call(key: string, method: string, path: string, body?: unknown, idempotent = true): Promise<{ status: number; body: any; text: string }> {
  const headers: Record<string, string> = { authorization: `Bearer ${key}` };
  if (idempotent) headers['idempotency-key'] = `k${++n}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(srv.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: r.status, body: parsed, text };
}
const admin = (method: string, path: string, body?: unknown, idempotent = true) => call(srv.adminKey, method, path, body, idempotent);

async function account(name: string, wallet?: string, parentId?: string): Promise<{ id: string; key: string }> {
  const acct = await admin('POST', '/admin/accounts', { name, ...(parentId === undefined ? {} : { parentId }) }, false);
  assert.equal(acct.status, 201, acct.text);
  const key = await admin('POST', '/admin/keys', { accountId: acct.body.id }, false);
  assert.equal(key.status, 201, key.text);
  if (wallet !== undefined) {
    const t = await admin('POST', '/admin/orders/topup', { accountId: acct.body.id, amount: wallet });
    assert.equal(t.status, 201, t.text);
  }
  return { id: acct.body.id, key: key.body.key };
}

/** What is left in the account's live buckets of one unit that came from subscription `subId`. */
async function leftOf(accountId: string, subId: string, unit: string): Promise<number> {
  const r = await admin('GET', `/admin/accounts/${accountId}/balance`, undefined, false);
  assert.equal(r.status, 200, r.text);
  return (r.body.buckets as any[])
    .filter((b) => b.unit === unit && !b.expired && String(b.source).startsWith(`sub:${subId}:`))
    .reduce((s, b) => s + b.remaining, 0);
}

test("F3: an upgrade to a plan with another unit ends the old plan's allowance for the cycle (never both for one price)", async () => {
  const c = await account('flipper', '200.00');
  const s = await call(c.key, 'POST', '/self/subscriptions', { offerId: 'ct-dev-basic', channel: 'wallet' });
  assert.equal(s.status, 201, s.text);
  assert.equal(await leftOf(c.id, s.body.id, 'tokens'), 15_000_000);
  clock.advance(5 * 86_400_000);
  const ch = await call(c.key, 'POST', `/self/subscriptions/${s.body.id}/change`, { offerId: 'volc-coding-plan' });
  assert.equal(ch.status, 200, ch.text);
  assert.equal(ch.body.change, 'upgrade');
  // Before the fix: 15,000,000 tokens stayed alongside the new requests for 0.11 CNY.
  assert.equal(await leftOf(c.id, s.body.id, 'tokens'), 0, "the old plan's tokens are forfeited when the new plan replaces it");
  const requests = await leftOf(c.id, s.body.id, 'requests');
  assert.ok(requests > 0 && requests < 18_000, `the new plan's requests are prorated for the rest of the cycle, got ${requests}`);
  // A second change back to a token plan does not resurrect anything beyond the new plan's prorated share.
  const back = await call(c.key, 'POST', `/self/subscriptions/${s.body.id}/change`, { offerId: 'ct-dev-pro' });
  assert.equal(back.status, 200, back.text);
  assert.equal(await leftOf(c.id, s.body.id, 'requests'), 0, 'the requests plan ends when the token plan replaces it');
  const tokens = await leftOf(c.id, s.body.id, 'tokens');
  assert.ok(tokens < 70_000_000, `at most the pro plan's prorated tokens, got ${tokens}`);
});

test('F3: across units the old plan is credited only for the share of its allowance left unused', async () => {
  const c = await account('used-then-flip', '200.00');
  const s = await call(c.key, 'POST', '/self/subscriptions', { offerId: 'ct-dev-basic', channel: 'wallet' });
  assert.equal(s.status, 201, s.text);
  const chat = await fetch(`${srv.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${c.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'deepseek-v3.2', max_tokens: 20, messages: [{ role: 'user', content: 'Hello there' }] }),
  });
  assert.equal(chat.status, 200, await chat.text());
  assert.ok((await leftOf(c.id, s.body.id, 'tokens')) < 15_000_000, 'some of the plan was used');
  const ch = await call(c.key, 'POST', `/self/subscriptions/${s.body.id}/change`, { offerId: 'volc-coding-plan' });
  assert.equal(ch.status, 200, ch.text);
  const unused = ch.body.order.lines.find((l: any) => l.offerId === 'ct-dev-basic');
  // Same instant as the subscription: the time share would credit all 39.90; the unused allowance share is less.
  assert.equal(unused.amountMinor, -3989, 'credit = floor(39.90 CNY x tokens left / 15M)');
});

test('F3: an upgrade in the same unit still grants only the prorated difference and keeps the current allowance', async () => {
  const c = await account('same-unit', '400.00');
  const s = await call(c.key, 'POST', '/self/subscriptions', { offerId: 'ct-dev-basic', channel: 'wallet' });
  assert.equal(s.status, 201, s.text);
  const ch = await call(c.key, 'POST', `/self/subscriptions/${s.body.id}/change`, { offerId: 'ct-dev-pro' });
  assert.equal(ch.status, 200, ch.text);
  const tokens = await leftOf(c.id, s.body.id, 'tokens');
  assert.ok(tokens > 15_000_000 && tokens <= 70_000_000, `basic's 15M plus the prorated difference, at most pro's 70M; got ${tokens}`);
});

test("F5: a full refund of an upgrade takes back the upgrade's allowance, reverts the plan and stops the renewal", async () => {
  const c = await account('refunder', '400.00');
  const s = await call(c.key, 'POST', '/self/subscriptions', { offerId: 'ct-dev-basic', channel: 'wallet' });
  assert.equal(s.status, 201, s.text);
  const up = await call(c.key, 'POST', `/self/subscriptions/${s.body.id}/change`, { offerId: 'ct-dev-flagship' });
  assert.equal(up.status, 200, up.text);
  assert.ok((await leftOf(c.id, s.body.id, 'tokens')) > 15_000_000);
  const rf = await admin('POST', `/admin/orders/${up.body.order.id}/refund`, { reason: 'customer asked' });
  assert.equal(rf.status, 201, rf.text);
  // Before the fix: the flagship allowance and plan stayed after the money went back.
  assert.equal(await leftOf(c.id, s.body.id, 'tokens'), 15_000_000, 'only the basic plan the subscribe order paid for is left');
  const sub = await admin('GET', `/admin/subscriptions/${s.body.id}`, undefined, false);
  assert.equal(sub.status, 200, sub.text);
  assert.equal(sub.body.offerId, 'ct-dev-basic');
  assert.equal(sub.body.renewsAt, null, 'a refunded upgrade does not renew on either plan');
  assert.equal(sub.body.endReason, 'refunded');
});

test('F4: an enterprise admin cannot mint one free trial per sub-account', async () => {
  const a = await account('ent-parent', '10.00');
  const ek = await admin('POST', '/admin/admin-keys', { name: 'ent-a', role: 'enterprise', accountIds: [a.id] }, false);
  assert.equal(ek.status, 201, ek.text);
  const got: number[] = [];
  for (const i of [1, 2, 3]) {
    const sub = await call(ek.body.key, 'POST', '/admin/accounts', { name: `sub${i}`, parentId: a.id }, false);
    assert.equal(sub.status, 201, sub.text);
    const t = await call(ek.body.key, 'POST', '/admin/subscriptions', { accountId: sub.body.id, offerId: 'unicom-trial-30m' });
    got.push(t.status);
  }
  // Before the fix: 201, 201, 201 (30M free tokens each).
  assert.deepEqual(got, [201, 422, 422], 'one trial for the whole enterprise tree');
  const parent = await call(ek.body.key, 'POST', '/admin/subscriptions', { accountId: a.id, offerId: 'unicom-trial-30m' });
  assert.equal(parent.status, 422, parent.text);
  assert.match(parent.body.error.message, /once per account and its sub-accounts/);
  const subKey = await call(ek.body.key, 'POST', `/admin/accounts/${a.id}/keys`, { name: 'parent-key' }, false);
  assert.equal(subKey.status, 201, subKey.text);
  const listed = (await call(subKey.body.key, 'GET', '/self/offers', undefined, false)).body.data.find((o: any) => o.id === 'unicom-trial-30m');
  assert.equal(listed.buyable, false, 'the listing says the enterprise already took it');
});

test('F2: a self-service phone-bill top-up needs a phone-bill channel and stays within the monthly phone-bill limit', async () => {
  const c = await account('phone-bill');
  const spendable = async () => (await call(c.key, 'GET', '/self/balance', undefined, false)).body.spendableCoins;
  const before = await spendable();
  // Before the fix: 201, and 1,000 CNY spendable at once, deferred to a phone bill the account does not have.
  const none = await call(c.key, 'POST', '/self/topup', { amount: '1000.00' });
  assert.equal(none.status, 402, none.text);
  assert.equal(none.body.error.code, 'payment_required');
  assert.match(none.body.error.message, /no phone-bill channel/);
  const sub = await call(c.key, 'POST', '/self/subscriptions', { offerId: 'ct-dev-flagship', channel: 'phone_bill' });
  assert.equal(sub.status, 402, sub.text);
  assert.equal(await spendable(), before, 'nothing was credited');

  assert.equal((await linkPhone(srv.url, srv.dataDir, c.key, '+8613700000042')).status, 200);
  const first = await call(c.key, 'POST', '/self/topup', { amount: '150.00' });
  assert.equal(first.status, 201, first.text);
  assert.equal(first.body.order.paidBy, 'phone_bill');
  const over = await call(c.key, 'POST', '/self/topup', { amount: '1000.00' });
  assert.equal(over.status, 402, over.text);
  assert.match(over.body.error.message, /150\.00 CNY this month.*200\.00 CNY monthly phone-bill limit/);
  assert.equal((await call(c.key, 'POST', '/self/topup', { amount: '50.01' })).status, 402, 'one fen past the limit is refused');
  const plan = await call(c.key, 'POST', '/self/subscriptions', { offerId: 'ct-dev-pro', channel: 'phone_bill' });
  assert.equal(plan.status, 402, 'orders on the phone bill share the same monthly limit');
  assert.equal((await call(c.key, 'POST', '/self/topup', { amount: '50.00' })).status, 201, 'up to the limit exactly');
  const orders = (await admin('GET', `/admin/orders?account=${c.id}`, undefined, false)).body.data;
  assert.equal(
    orders.filter((o: any) => o.paidBy === 'phone_bill').reduce((s: number, o: any) => s + o.amountMinor, 0),
    20_000,
  );

  // An enterprise admin's minted key gets no more than the account's own limit.
  const ek = await admin('POST', '/admin/admin-keys', { name: 'ent-pb', role: 'enterprise', accountIds: [c.id] }, false);
  const minted = await call(ek.body.key, 'POST', `/admin/accounts/${c.id}/keys`, { name: 'ent-made' }, false);
  assert.equal(minted.status, 201, minted.text);
  assert.equal((await call(minted.body.key, 'POST', '/self/topup', { amount: '1000.00' })).status, 402);

  // The limit is per calendar month: the next month has room again.
  clock.advance(32 * 86_400_000);
  assert.equal((await call(c.key, 'POST', '/self/topup', { amount: '100.00' })).status, 201);
});

test("F2: an operator's phone-bill order is its own authority and sets up the channel for self-service", async () => {
  const c = await account('carrier-customer');
  const op = await admin('POST', '/admin/subscriptions', { accountId: c.id, offerId: 'ct-dev-basic', channel: 'phone_bill' });
  assert.equal(op.status, 201, op.text);
  const addon = await call(c.key, 'POST', '/self/topup', { amount: '100.00' });
  assert.equal(addon.status, 201, 'an account the operator bills on its phone bill may top up there, within the limit');
  assert.equal((await call(c.key, 'POST', '/self/topup', { amount: '100.00' })).status, 402, '39.90 + 100.00 + 100.00 passes 200.00');
});
