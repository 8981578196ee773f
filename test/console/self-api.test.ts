/**
 * Self-service API (issue 16): key holders buy, change, cancel, top up and manage keys and members through the same
 * billing use cases as admin orders (Idempotency-Key, order records with the actor); and /self/balance says the
 * right thing for every policy. Each "plain terms" test names a case that was wrong before.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/core/index.ts';
import { describeBucket } from '../../src/cli/format.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { linkPhone } from '../support/sms.ts';

const clock = new ManualClock('2026-12-01T09:00:00Z');
let srv: TestServer;
before(async () => {
  srv = await startTestServer({ clock });
});
after(() => srv.close());

async function call(key: string, method: string, path: string, body?: unknown, idem?: string): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = {
    authorization: `Bearer ${key}`,
    ...(idem ? { 'idempotency-key': idem } : {}),
    ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
  };
  const r = await fetch(srv.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined, headers: r.headers };
}
const admin = (method: string, path: string, body?: unknown, idem?: string) => call(srv.adminKey, method, path, body, idem);

async function account(name: string, kind = 'individual'): Promise<{ id: string; key: string }> {
  const id = (await admin('POST', '/admin/accounts', { name, kind })).body.id;
  const key = (await admin('POST', '/admin/keys', { accountId: id })).body.key;
  // A linked phone is the account's phone-bill channel (self-service phone-bill orders need one; issue 12, F2).
  assert.equal((await linkPhone(srv.url, srv.dataDir, key, `+86139${String(++phones).padStart(8, '0')}`)).status, 200);
  return { id, key };
}
let phones = 0;

async function chat(key: string, model = 'deepseek-v3.2', maxTokens = 20): Promise<{ status: number; body: any }> {
  const r = await fetch(`${srv.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, max_tokens: maxTokens, messages: [{ role: 'user', content: 'Hello there' }] }),
  });
  return { status: r.status, body: await r.json() };
}

test('a key holder lists what it may buy, subscribes with an Idempotency-Key, and a replay changes nothing', async () => {
  const a = await account('Self buyer');
  const offers = (await call(a.key, 'GET', '/self/offers')).body;
  const light = offers.data.find((o: any) => o.id === 'ct-personal-light');
  assert.equal(light.buyable, true);
  assert.equal(light.action, 'subscribe');
  assert.equal((await call(a.key, 'POST', '/self/subscriptions', { offerId: 'ct-personal-light' })).status, 400, 'orders need an Idempotency-Key');
  const first = await call(a.key, 'POST', '/self/subscriptions', { offerId: 'ct-personal-light', channel: 'phone_bill' }, 'buy-1');
  assert.equal(first.status, 201, JSON.stringify(first.body));
  assert.equal(first.body.order.actor.startsWith('key:'), true, 'the order records which key bought it');
  const again = await call(a.key, 'POST', '/self/subscriptions', { offerId: 'ct-personal-light', channel: 'phone_bill' }, 'buy-1');
  assert.equal(again.headers.get('idempotent-replayed'), 'true');
  assert.equal((await call(a.key, 'GET', '/self/orders')).body.data.length, 1);
  const reused = await call(a.key, 'POST', '/self/subscriptions', { offerId: 'ct-personal-premium' }, 'buy-1');
  assert.equal(reused.status, 409);
  const after = (await call(a.key, 'GET', '/self/offers')).body;
  assert.equal(after.data.find((o: any) => o.id === 'ct-personal-light').action, 'current');
  assert.equal(after.data.find((o: any) => o.id === 'ct-personal-premium').action, 'change');

  const up = await call(a.key, 'POST', `/self/subscriptions/${first.body.id}/change`, { offerId: 'ct-personal-premium' }, 'up-1');
  assert.equal(up.status, 200, JSON.stringify(up.body));
  assert.equal(up.body.change, 'upgrade');
  const down = await call(a.key, 'POST', `/self/subscriptions/${first.body.id}/change`, { offerId: 'ct-personal-standard' }, 'down-1');
  assert.equal(down.status, 200, JSON.stringify(down.body));
  assert.equal(down.body.change, 'downgrade');
  assert.equal(down.body.pendingChange.offerId, 'ct-personal-standard', 'a downgrade waits for the next cycle');
  const speed = await call(a.key, 'POST', '/self/addons', { offerId: 'ct-broadband-speedup', channel: 'phone_bill' }, 'add-1');
  assert.equal(speed.status, 201, JSON.stringify(speed.body));
  assert.equal(speed.body.order.paidBy, 'phone_bill');
  const top = await call(a.key, 'POST', '/self/topup', { amount: '30.00' }, 'top-1');
  assert.equal(top.status, 201);
  assert.equal(top.body.wallet.balanceMinor, 3000);
  assert.equal(top.body.order.paidBy, 'phone_bill', 'a self-service top-up is charged to the phone bill');
  const cancel = await call(a.key, 'POST', `/self/subscriptions/${first.body.id}/cancel`, undefined, 'cancel-1');
  assert.equal(cancel.status, 200, JSON.stringify(cancel.body));
  assert.ok(cancel.body.cancelAt);
  const other = await account('Someone else');
  assert.equal(
    (await call(other.key, 'POST', `/self/subscriptions/${first.body.id}/cancel`, undefined, 'x')).status,
    404,
    "another account's subscription does not exist for you",
  );
  const audit = (await admin('GET', `/admin/orders?account=${a.id}`)).body.data.map((o: any) => [o.type, o.actor.split(':')[0]]);
  assert.deepEqual(
    audit.map((x: string[]) => x[1]),
    ['key', 'key', 'key', 'key', 'key', 'key'],
  );
  // The audit log has every self-service write, refused ones too, with the key as actor.
  const log = (await admin('GET', `/admin/audit?account=${a.id}`)).body.data.reverse().map((e: any) => `${e.action} ${e.outcome} ${e.actor.split('_')[0]}`);
  assert.deepEqual(log, [
    'account.create 201 root',
    'key.create 201 root',
    'self.phone.link 202 key:key',
    'self.phone.link 200 key:key',
    'self.subscribe 400 key:key',
    'self.subscribe 201 key:key',
    'self.subscribe 201 key:key',
    'self.subscribe 409 key:key',
    'self.plan.change 200 key:key',
    'self.plan.change 200 key:key',
    'self.addon.buy 201 key:key',
    'self.topup 201 key:key',
    'self.plan.cancel 200 key:key',
  ]);
});

test('a family owner adds members with caps; a member may not buy and sees only their own keys', async () => {
  const fam = await account('The Wangs', 'family');
  assert.equal((await call(fam.key, 'POST', '/self/subscriptions', { offerId: 'family-share' }, 'fam-1')).status, 201);
  const kid = await call(fam.key, 'POST', '/self/members', { name: 'Xiao Ming', monthlyCap: 1_000_000 });
  assert.equal(kid.status, 201, JSON.stringify(kid.body));
  assert.equal(kid.body.cap.capCoins, 1_000_000);
  const kidKey = (await admin('POST', '/admin/keys', { accountId: fam.id, memberId: kid.body.id })).body.key;
  const buy = await call(kidKey, 'POST', '/self/addons', { offerId: 'ct-tokens-10m' }, 'kid-1');
  assert.equal(buy.status, 403);
  assert.equal(buy.body.error.code, 'permission_denied');
  const own = await call(kidKey, 'POST', '/self/keys', { name: 'homework' });
  assert.equal(own.status, 201);
  assert.equal(own.body.memberId, kid.body.id, "a member's new key is that member's");
  assert.deepEqual(
    (await call(kidKey, 'GET', '/self/keys')).body.data.map((k: any) => k.memberId),
    [kid.body.id, kid.body.id],
  );
  assert.equal((await call(kidKey, 'GET', '/self/members')).body.data.length, 1, 'a member sees only themself');
  // The account's orders and bills (payment channels, amounts) are its managers' to read, not every member's (F10).
  for (const path of ['/self/orders', '/self/bills', '/self/bills/preview']) {
    const r = await call(kidKey, 'GET', path);
    assert.equal(r.status, 403, `${path}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.code, 'permission_denied');
    assert.equal((await call(fam.key, 'GET', path)).status, 200, `${path} for the owner`);
  }
  const capped = await call(fam.key, 'PUT', `/self/members/${kid.body.id}/cap`, { monthlyCap: 2_000_000 });
  assert.equal(capped.body.cap.capCoins, 2_000_000);
  const bal = (await call(kidKey, 'GET', '/self/balance')).body;
  assert.equal(bal.member.capCoins, 2_000_000);
  assert.match(bal.summary, /personal cap leaves you 2M token coins/);
});

test('a capped key for an agent stops at its own monthly cap while the account goes on; keys never widen their models', async () => {
  const a = await account('Agent owner');
  await admin('POST', `/admin/accounts/${a.id}/grants`, { amount: 10_000_000 });
  const agent = await call(a.key, 'POST', '/self/keys', { name: 'coder', monthlyCap: 30, allowedModels: ['deepseek-v3.2'] });
  assert.equal(agent.status, 201, JSON.stringify(agent.body));
  assert.equal(agent.body.monthlyCap.cap, 30);
  const first = await chat(agent.body.key, 'deepseek-v3.2', 5);
  assert.equal(first.status, 200);
  let refused: { status: number; body: any } | undefined;
  for (let i = 0; i < 10 && refused === undefined; i++) {
    const r = await chat(agent.body.key, 'deepseek-v3.2', 5);
    if (r.status !== 200) refused = r;
  }
  assert.ok(refused, 'the agent key is refused past its cap');
  assert.equal(refused.status, 429);
  assert.equal((await chat(a.key)).status, 200, "the account's own key is not capped");
  const narrow = await call(agent.body.key, 'POST', '/self/keys', { name: 'wider', allowedModels: ['claude-4.7'] });
  assert.equal(narrow.status, 403);
  const listed = (await call(a.key, 'GET', '/self/keys')).body.data.find((k: any) => k.id === agent.body.id);
  assert.ok(listed.monthlyCap.used > 0);
  assert.equal((await call(a.key, 'POST', `/self/keys/${agent.body.id}/revoke`)).body.revokedAt !== null, true);
  assert.equal((await chat(agent.body.key)).status, 401);
});

// ---------------------------------------------------------------- plain terms: the cases that were wrong

test('a Shanghai Telecom pay-as-you-go customer with phone-bill credit is not told "Nothing left to spend"', async () => {
  const a = await account('Shanghai payg');
  assert.equal((await call(a.key, 'POST', '/self/subscriptions', { offerId: 'sh-telecom-payg' }, 'payg-1')).status, 201);
  assert.equal((await chat(a.key)).status, 200);
  const bal = (await call(a.key, 'GET', '/self/balance')).body;
  assert.equal(bal.overage, 'postpaid');
  assert.doesNotMatch(bal.summary, /Nothing left/);
  assert.match(bal.summary, /of phone-bill credit/);
  assert.ok(bal.postpaid.usedMinor > 0);
  assert.equal(bal.postpaid.creditLimitMinor, bal.postpaid.usedMinor + bal.postpaid.leftMinor);
  assert.ok(bal.equivalents.items[0].count > 0, 'the credit is worth some chat questions');
});

test('a postpaid policy set on the account is described as postpaid, not wallet-then-refused', async () => {
  const a = await account('Postpaid by operator');
  await admin('PUT', `/admin/accounts/${a.id}/policy`, { overage: 'postpaid', creditLimitMinor: 20000, currency: 'CNY' });
  const bal = (await call(a.key, 'GET', '/self/balance')).body;
  assert.equal(bal.overage, 'postpaid');
  assert.match(bal.pastCap, /phone bill/);
  assert.doesNotMatch(bal.pastCap, /when the wallet is empty too, requests are refused/);
  assert.equal(bal.postpaid.left, '200.00 CNY');
});

test('a family member at their cap is told the cap is used up, not what the pool holds', async () => {
  const fam = await account('Capped family', 'family');
  await call(fam.key, 'POST', '/self/subscriptions', { offerId: 'family-share' }, 'cf-1');
  await admin('POST', `/admin/accounts/${fam.id}/grants`, { amount: 200_000_000 });
  const m = (await call(fam.key, 'POST', '/self/members', { name: 'Grandpa', monthlyCap: 30 })).body;
  const key = (await admin('POST', '/admin/keys', { accountId: fam.id, memberId: m.id })).body.key;
  let status = 200;
  let served = 0;
  for (let i = 0; i < 10 && status === 200; i++) {
    status = (await chat(key, 'deepseek-v3.2', 5)).status;
    if (status === 200) served++;
  }
  assert.equal(status, 429);
  assert.ok(served > 0);
  const bal = (await call(key, 'GET', '/self/balance')).body;
  assert.equal(bal.member.reached, true, JSON.stringify(bal.member));
  assert.doesNotMatch(bal.summary, /^You have/);
  assert.match(bal.summary, /cap of 30 token coins is used up \(\d+ left, less than one request\); requests are refused/);
  assert.equal(bal.spendableCoins, 0);
});

test('balances say token coins and what they mean on premium models, with everyday equivalents and a forecast', async () => {
  const a = await account('Coins reader');
  await call(a.key, 'POST', '/self/subscriptions', { offerId: 'ct-personal-light' }, 'c-1');
  const before = (await call(a.key, 'GET', '/self/balance')).body;
  assert.match(before.buckets[0].text, /token coins left of 10M token coins/);
  assert.equal(before.buckets[0].unitName, 'token coins');
  assert.match(before.unitNote, /coins per output token on claude-4\.7/);
  assert.equal(before.equivalents.basis, 'reference');
  assert.equal(before.equivalents.items[0].count, 10_000, '10M coins / 1,000 tokens a chat question at 1 coin per token');
  assert.match(before.forecast.text, /No usage/);
  await admin('POST', `/admin/accounts/${a.id}/grants`, { amount: 10_000_000 });
  for (let i = 0; i < 3; i++) assert.equal((await chat(a.key, 'claude-4.7', 30)).status, 200);
  const bal = (await call(a.key, 'GET', '/self/balance')).body;
  assert.equal(bal.equivalents.basis, 'your_mix');
  assert.deepEqual(bal.equivalents.models, ['claude-4.7']);
  assert.ok(bal.equivalents.items[0].coinsEach > 1000, 'claude-4.7 costs 10 coins an input token');
  assert.match(bal.equivalents.text, /^about [\d,]+ chat questions or [\d,]+ pages of code at your usual models$/);
  assert.ok(bal.forecast.coinsPerDay > 0);
  assert.equal(bal.forecast.beforeRenewal, false);
  assert.match(bal.forecast.text, /^At this pace \(about .* token coins a day\), it lasts past 1 Jan 2027, when the first allowance renews\.$/);
});

test("the forecast divides what is left by the last days' burn rate and names the day it runs out", async () => {
  const a = await account('Forecast reader');
  await admin('POST', `/admin/accounts/${a.id}/grants`, { amount: 60_000 });
  for (let i = 0; i < 3; i++) assert.equal((await chat(a.key, 'claude-4.7', 30)).status, 200);
  const burned = (await call(a.key, 'GET', '/self/usage')).body.totalCoins;
  const bal = (await call(a.key, 'GET', '/self/balance')).body;
  assert.equal(bal.spendableCoins, 60_000 - burned, 'no wallet (0.00 CNY): only the grant is left');
  assert.equal(bal.forecast.coinsPerDay, burned, 'all of it today: one day of history counts as one day');
  const end = Date.parse('2026-12-01T09:00:00Z') + (bal.spendableCoins / burned) * 86_400_000;
  assert.equal(bal.forecast.lastsUntil, new Date(end).toISOString());
  const d = new Date(end);
  assert.equal(bal.forecast.text, `At this pace (about ${burned.toLocaleString('en-US')} token coins a day), lasts until ${d.getUTCDate()} Dec.`);
});

test('the legacy usage total counts requests only, not plan fees, and honours its date range', async () => {
  const a = await account('Legacy reader');
  await admin('POST', '/admin/orders/topup', { accountId: a.id, amount: '100.00' }, 'lg-0');
  await call(a.key, 'POST', '/self/subscriptions', { offerId: 'ct-dev-basic', channel: 'wallet' }, 'lg-1');
  assert.equal((await chat(a.key)).status, 200);
  const day = (await call(a.key, 'GET', '/v1/dashboard/billing/usage?start_date=2026-12-01&end_date=2026-12-02')).body;
  const perRequest = day.daily_costs[0].line_items[0].cost;
  assert.ok(day.total_usage > 0 && day.total_usage < 100, `a few tokens cost less than 1 CNY (100 cents), not the 39.90 plan fee (got ${day.total_usage})`);
  assert.equal(day.total_usage, perRequest);
  const before = (await call(a.key, 'GET', '/v1/dashboard/billing/usage?start_date=2026-11-01&end_date=2026-12-01')).body;
  assert.equal(before.total_usage, 0, 'nothing was used in November');
  assert.equal(before.daily_costs.length, 0);
  const sub = (await call(a.key, 'GET', '/v1/dashboard/billing/subscription')).body;
  const bal = (await call(a.key, 'GET', '/self/balance')).body;
  const left = bal.buckets.reduce((s: number, b: any) => s + b.left / 400_000, 0) + bal.wallet.balanceMinor / 100;
  assert.equal(Math.round((sub.hard_limit_usd - day.total_usage / 100) * 100) / 100, Math.round(left * 100) / 100);
});

test('the CLI prints a postpaid line as owed and credit left, not "199.96 of 0.00 CNY"', () => {
  const line = describeBucket(
    {
      id: 'b',
      unit: 'money',
      currency: 'CNY',
      kind: 'postpaid_line',
      memberId: null,
      granted: 0,
      used: 4,
      reserved: 0,
      remaining: 19_996,
      effectiveAt: null,
      expiresAt: null,
      expired: false,
      models: null,
    },
    Date.parse('2026-12-01T00:00:00Z'),
  );
  assert.match(line, /^0\.04 CNY owed on the phone bill, 199\.96 CNY of 200\.00 CNY credit left/);
});

test('bad self-service input gets a clear error in the OpenAI shape, and nothing changes', async () => {
  const a = await account('Careless buyer');
  const cases: [string, string, unknown, number, RegExp][] = [
    ['POST', '/self/subscriptions', { offerId: 'no-such-offer' }, 404, /Unknown offer no-such-offer/],
    ['POST', '/self/subscriptions', { offerId: 'ct-personal-light', channel: 'external' }, 400, /channel/],
    ['POST', '/self/subscriptions', { offerId: 'ct-tokens-10m' }, 422, /add-on: buy it with POST \/self\/addons/],
    ['POST', '/self/subscriptions', { offerId: 'ct-personal-light', extra: 1 }, 400, /Unrecognized key/],
    ['POST', '/self/topup', { amount: '1.001' }, 400, /at most 2 places/],
    ['POST', '/self/topup', { amount: '99999.00' }, 422, /over the 5000\.00 CNY limit/],
    ['POST', '/self/addons', { offerId: 'extra-seat' }, 422, /can be added to bailian-team/],
    ['POST', '/self/subscriptions/sub_nope/cancel', undefined, 404, /does not exist/],
  ];
  let n = 0;
  for (const [method, path, body, status, message] of cases) {
    const r = await call(a.key, method, path, body, `bad-${n++}`);
    assert.equal(r.status, status, `${path} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
    assert.match(r.body.error.message, message);
    assert.equal(typeof r.body.error.code, 'string');
  }
  assert.equal((await call(a.key, 'POST', '/self/keys', { name: '' })).status, 400);
  assert.equal((await call(a.key, 'POST', '/self/keys', { name: 'x', monthlyCap: -5 })).status, 400);
  assert.equal((await call(a.key, 'PUT', '/self/members/mem_nope/cap', { monthlyCap: 5 })).status, 404);
  const raw = await fetch(`${srv.url}/self/topup`, {
    method: 'POST',
    headers: { authorization: `Bearer ${a.key}`, 'idempotency-key': 'raw', 'content-type': 'application/json' },
    body: '{"amount":',
  });
  assert.equal(raw.status, 400);
  assert.equal((await call(a.key, 'GET', '/self/orders')).body.data.length, 0, 'no order was made');
});

test('a key never mints a key that outlives it or escapes its limits (issue 12, attacker F6)', async () => {
  const a = await account('Key minter');
  const expiresAt = new Date(clock.nowMs() + 10 * 60_000).toISOString();
  const parent = (await admin('POST', '/admin/keys', { accountId: a.id, expiresAt, limits: { requestsPerMinute: 1, concurrentRequests: 1 } })).body.key;
  const child = await call(parent, 'POST', '/self/keys', { name: 'child' });
  assert.equal(child.status, 201, JSON.stringify(child.body));
  assert.equal(child.body.expiresAt, expiresAt, 'the child expires when the parent does (main: null, a permanent key)');
  assert.deepEqual(child.body.limits, { requestsPerMinute: 1, concurrentRequests: 1 }, "the parent's limits carry over (main: {})");
  const longer = await call(parent, 'POST', '/self/keys', {
    name: 'longer',
    expiresAt: new Date(clock.nowMs() + 86_400_000).toISOString(),
    limits: { requestsPerMinute: 100, tokensPerMinute: 500 },
  });
  assert.equal(longer.status, 201);
  assert.equal(longer.body.expiresAt, expiresAt, "a later expiry is cut to the parent's");
  assert.deepEqual(longer.body.limits, { requestsPerMinute: 1, tokensPerMinute: 500, concurrentRequests: 1 }, 'per limit, the stricter one');
  const shorter = new Date(clock.nowMs() + 60_000).toISOString();
  assert.equal((await call(parent, 'POST', '/self/keys', { name: 'shorter', expiresAt: shorter })).body.expiresAt, shorter, 'a shorter life is kept');
});

test('minted keys share their root key’s concurrency slot, and revoking the root revokes them (issue 12, attacker N1)', async () => {
  const root = (await admin('POST', '/admin/keys', { accountId: srv.demoAccountId, limits: { concurrentRequests: 1 } })).body;
  const kids: string[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await call(root.key, 'POST', '/self/keys', { name: `kid${i}` });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.parentKeyId, root.id, 'a child records its root key');
    kids.push(r.body.key);
  }
  const grand = await call(kids[0]!, 'POST', '/self/keys', { name: 'grandkid' });
  assert.equal(grand.status, 201, JSON.stringify(grand.body));
  assert.equal(grand.body.parentKeyId, root.id, 'a child of a child records the root, not the middle key');
  kids.push(grand.body.key);
  const stream = (key: string) =>
    fetch(`${srv.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'slow-stream', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
  // All six at once (parent + 5 descendants): one slot, so exactly one is served (main: all six 200).
  const all = await Promise.all([root.key, ...kids].map(stream));
  const statuses = all.map((r) => r.status);
  assert.equal(statuses.filter((s) => s === 200).length, 1, statuses.join(' '));
  assert.equal(statuses.filter((s) => s === 429).length, 5, statuses.join(' '));
  await Promise.all(all.map((r) => r.text()));
  // The slot is free again once the stream ends: a child is served alone, and holds the root busy while it runs.
  const held = await stream(kids[2]!);
  assert.equal(held.status, 200, held.status === 200 ? '' : await held.text());
  const blocked = await stream(root.key);
  assert.equal(blocked.status, 429, 'a running child holds its root key’s slot');
  assert.match(((await blocked.json()) as any).error.message, /concurrent/);
  await held.text();
  // Revoking the root (admin) revokes every descendant at once (main: the children kept answering 200).
  assert.equal((await admin('POST', `/admin/keys/${root.id}/revoke`)).status, 200);
  for (const k of kids) assert.equal((await chat(k)).status, 401, 'a descendant of a revoked key is revoked');
});

test('revoking a minted key on /self/keys/:id/revoke revokes its own children too; other keys go on', async () => {
  const root = (await admin('POST', '/admin/keys', { accountId: srv.demoAccountId })).body;
  const kid = (await call(root.key, 'POST', '/self/keys', { name: 'kid' })).body;
  const sibling = (await call(root.key, 'POST', '/self/keys', { name: 'sibling' })).body;
  assert.equal((await call(kid.key, 'POST', `/self/keys/${kid.id}/revoke`)).status, 200);
  assert.equal((await chat(kid.key)).status, 401);
  assert.equal((await chat(sibling.key)).status, 200, 'revoking one child leaves its siblings alone');
  assert.equal((await chat(root.key)).status, 200, 'and its root');
  // A middle key's own children (which record the root) go with it: a revoked child cannot leave keys behind.
  const middle = (await call(root.key, 'POST', '/self/keys', { name: 'middle' })).body;
  const grand = (await call(middle.key, 'POST', '/self/keys', { name: 'grand' })).body;
  assert.equal(grand.parentKeyId, root.id);
  assert.equal((await chat(grand.key)).status, 200);
  assert.equal((await admin('POST', `/admin/keys/${middle.id}/revoke`)).status, 200);
  assert.equal((await chat(middle.key)).status, 401);
  assert.equal((await chat(grand.key)).status, 401, 'what a revoked middle key minted is revoked with it');
  assert.equal((await chat(sibling.key)).status, 200, 'the rest of the tree goes on');
  const r = await call(sibling.key, 'POST', `/self/keys/${root.id}/revoke`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal((await chat(root.key)).status, 401);
  assert.equal((await chat(sibling.key)).status, 401, 'revoking the root through the self API cascades too');
});
