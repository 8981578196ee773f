/**
 * Issue 12, billing integrity, on a real server with a test clock: reserved reference namespaces and renewal
 * isolation (finding 8), refunds that end what they paid for (finding 11, refund part), and a pay-as-you-go price
 * per offer with the catalog's below-cost check (finding 12).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/core/index.ts';
import { auditAccount } from '../../src/charging/index.ts';
import { settleInput } from '../../src/charging/test-fixtures.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const clock = new ManualClock('2026-11-10T08:00:00Z');
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

async function call(method: string, path: string, body?: unknown, idempotent = true): Promise<{ status: number; body: any; text: string }> {
  const headers: Record<string, string> = { authorization: `Bearer ${srv.adminKey}` };
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

async function account(name: string): Promise<{ id: string; key: string }> {
  const acct = await call('POST', '/admin/accounts', { name }, false);
  assert.equal(acct.status, 201, acct.text);
  const key = await call('POST', '/admin/keys', { accountId: acct.body.id }, false);
  assert.equal(key.status, 201, key.text);
  return { id: acct.body.id, key: key.body.key };
}

async function subscribe(accountId: string, offerId: string, channel = 'phone_bill'): Promise<any> {
  const r = await call('POST', '/admin/subscriptions', { accountId, offerId, channel });
  assert.equal(r.status, 201, r.text);
  return r.body;
}

async function buckets(accountId: string): Promise<any[]> {
  const r = await call('GET', `/admin/accounts/${accountId}/balance`, undefined, false);
  assert.equal(r.status, 200, r.text);
  return r.body.buckets;
}

/** The plan's cycle bucket `#<index>` (its source is `<schedule ref>#<index>`). */
async function cycleBucket(accountId: string, index: number): Promise<any | undefined> {
  return (await buckets(accountId)).find((b) => new RegExp(`^sub:.*#${index}$`).test(b.source));
}

async function chat(key: string, model = 'deepseek-v3.2'): Promise<{ status: number; body: any }> {
  const r = await fetch(`${srv.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, max_tokens: 20, messages: [{ role: 'user', content: 'Say something short' }] }),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}

async function usageRecords(accountId: string): Promise<any[]> {
  const r = await call('GET', `/admin/accounts/${accountId}/usage?detail=records&from=2026-01-01T00:00:00Z&to=2028-01-01T00:00:00Z`, undefined, false);
  assert.equal(r.status, 200, r.text);
  return r.body.data;
}

// ---------------------------------------------------------------- finding 8: reserved namespaces, renewal isolation

test('a grant cannot take the reference of the next cycle: the plan still renews and the account keeps working', async () => {
  const a = await account('Namespace');
  await subscribe(a.id, 'bj-mobile-monthly');
  const first = await cycleBucket(a.id, 0);
  assert.ok(first, 'the plan granted its first cycle');
  const nextRef = String(first.source).replace(/#0$/, '#1');

  const colliding = await call('POST', `/admin/accounts/${a.id}/grants`, { amount: 1000, reference: nextRef });
  assert.equal(colliding.status, 400, `a reference in the cycles' namespace is refused: ${colliding.text}`);
  assert.match(colliding.body.error.message, /reference ".*#1" contains '#', which is reserved for allowance cycles/);

  // A client reference that spells a system one is kept in the client namespace: the wallet still works.
  const lookalike = await call('POST', `/admin/accounts/${a.id}/grants`, { amount: 1000, reference: 'wallet:CNY' });
  assert.equal(lookalike.status, 201, lookalike.text);
  assert.equal(lookalike.body.source, 'client:wallet:CNY');
  const top = await call('POST', `/admin/accounts/${a.id}/topups`, { amountMinor: 500, reference: 'wallet:CNY' });
  assert.equal(top.status, 201, top.text);
  assert.equal(top.body.kind, 'wallet');
  assert.equal(top.body.remaining, 500, 'the top-up reached the wallet');

  clock.set('2026-12-10T09:00:00Z');
  const run = await call('POST', '/admin/renewals/run', undefined, false);
  assert.equal(run.status, 200, run.text);
  assert.deepEqual(run.body.failures, []);
  assert.ok(await cycleBucket(a.id, 1), 'the next cycle was created');
  assert.equal((await chat(a.key)).status, 200);
  assert.deepEqual((await auditAccount(srv.app.chargingStore, a.id, { nowMs: clock.nowMs() })).problems, []);
});

test('one account whose renewal fails never stops the others, and its stream in flight still gets its usage record', async () => {
  clock.set('2026-12-20T08:00:00Z');
  const healthy1 = await account('Healthy one');
  const broken = await account('Broken');
  const healthy2 = await account('Healthy two');
  for (const x of [healthy1, broken, healthy2]) await subscribe(x.id, 'bj-mobile-monthly');
  // Data written before references were namespaced: an old bucket of the broken account already holds the reference
  // of its next cycle (expired and empty, so nothing in the engine's view shows it; only the unique index does).
  const ref = String((await cycleBucket(broken.id, 0)).source).replace(/#0$/, '#1');
  srv.app
    .db!.prepare(`INSERT INTO charging_buckets (id, account_id, member_id, unit, currency, kind, amount, consumed, held, forfeited, floor,
    effective_at_ms, expires_at_ms, priority, models, rollover, source_ref, schedule_id, cycle_index, created_at_ms)
    VALUES (?, ?, NULL, 'tokens', NULL, 'manual', 0, 0, 0, 0, 0, ?, ?, 60, NULL, 0, ?, NULL, NULL, ?)`)
    .run('bkt_legacy_collision', broken.id, Date.parse('2026-01-01T00:00:00Z'), Date.parse('2026-02-01T00:00:00Z'), ref, Date.parse('2026-01-01T00:00:00Z'));

  // A stream of the broken account is in flight when its cycle ends.
  const hold = await srv.app.charging.reserve({
    requestId: 'req_in_flight',
    accountId: broken.id,
    memberId: null,
    keyId: 'key_x',
    model: 'deepseek-v3.2',
    tokensInputEstimate: 20,
    tokensOutputMax: 200,
    stream: true,
  });
  assert.ok(hold.ok);

  clock.set('2027-01-20T09:00:00Z');
  const run = await call('POST', '/admin/renewals/run', undefined, false);
  assert.equal(run.status, 200, `the renewal run answers 200 with the failures listed: ${run.text}`);
  assert.deepEqual(
    run.body.failures.map((f: any) => [f.accountId, f.stage]),
    [[broken.id, 'allowance']],
  );
  assert.ok(run.body.allowanceBuckets >= 2, 'the other accounts renewed');
  const metrics = await (await fetch(`${srv.url}/metrics`, { headers: { authorization: `Bearer ${srv.adminKey}` } })).text();
  assert.match(metrics, /tokengrid_renewal_failures_total\{stage="allowance"\} [1-9]/, 'counted for an alert');
  for (const x of [healthy1, healthy2]) {
    assert.ok(await cycleBucket(x.id, 1), 'a healthy account got its new cycle');
    assert.equal((await chat(x.key)).status, 200, 'and serves requests');
    assert.deepEqual((await auditAccount(srv.app.chargingStore, x.id, { nowMs: clock.nowMs() })).problems, []);
  }

  const record = await srv.app.charging.settle(
    settleInput(hold.value.reservationId, 'req_in_flight', {
      tokensInput: 20,
      tokensOutput: 150,
      tokensCachedInput: 0,
      tokensCacheWrite: 0,
      tokensReasoning: 0,
    }),
  );
  assert.equal(record.costCoins, 170, 'the stream is charged');
  assert.equal(record.leakCoins, 0);
  assert.equal((await usageRecords(broken.id)).filter((u) => u.requestId === 'req_in_flight').length, 1, 'with one usage record');
  assert.deepEqual(await srv.app.chargingStore.listOpenReservations(broken.id), [], 'and no stuck hold');

  const audit = await auditAccount(srv.app.chargingStore, broken.id, { nowMs: clock.nowMs() });
  assert.equal(audit.problems.length, 1, audit.problems.join('\n'));
  assert.match(audit.problems[0]!, /renewal failing/);
});

// ---------------------------------------------------------------- finding 11 (refunds)

test('a refunded subscription ends at once: its allowance is taken back, it never renews, and the bill shows the refund', async () => {
  clock.set('2027-02-03T08:00:00Z');
  const a = await account('Refunded');
  const sub = await subscribe(a.id, 'bj-mobile-monthly');
  assert.equal((await chat(a.key)).status, 200);
  const before = await cycleBucket(a.id, 0);
  assert.ok(before.remaining > 0);

  const refund = await call('POST', `/admin/orders/${sub.order.id}/refund`, { reason: 'customer changed their mind' });
  assert.equal(refund.status, 201, refund.text);
  const after0 = await cycleBucket(a.id, 0);
  assert.equal(after0.remaining, 0, 'the unused allowance is removed');
  assert.equal(after0.forfeited, before.remaining);
  const s = (await call('GET', `/admin/subscriptions?account=${a.id}`, undefined, false)).body.data.find((x: any) => x.id === sub.id);
  assert.equal(s.status, 'canceled');
  assert.equal(s.endReason, 'refunded');
  assert.equal((await chat(a.key)).status, 429, 'nothing left to pay for requests');

  clock.set('2027-03-05T08:00:00Z');
  const run = await call('POST', '/admin/renewals/run', undefined, false);
  assert.equal(run.status, 200, run.text);
  assert.equal(await cycleBucket(a.id, 1), undefined, 'no allowance after the cycle end');
  const orders = (await call('GET', `/admin/orders?account=${a.id}`, undefined, false)).body.data;
  assert.equal(orders.filter((o: any) => o.type === 'renew').length, 0, 'no renewal order');
  assert.equal((await chat(a.key)).status, 429);

  const bills = await call('POST', '/admin/bills/run', { period: '2027-02' });
  assert.equal(bills.status, 200, bills.text);
  const bill = (await call('GET', `/admin/bills?account=${a.id}&period=2027-02`, undefined, false)).body.data[0];
  assert.ok(
    bill.lines.some((l: any) => l.kind === 'refund' && l.amountMinor === -2499),
    JSON.stringify(bill.lines),
  );
  assert.equal(bill.totalMinor, 0, 'the fee and its refund cancel out (usage was paid by the allowance)');
  assert.deepEqual((await auditAccount(srv.app.chargingStore, a.id, { nowMs: clock.nowMs() })).problems, []);
});

test('a partial refund returns money only; a full refund of a pack takes back its allowance', async () => {
  clock.set('2027-03-20T08:00:00Z');
  const a = await account('Goodwill');
  const sub = await subscribe(a.id, 'bj-mobile-monthly');
  const partial = await call('POST', `/admin/orders/${sub.order.id}/refund`, { amount: '5.00', reason: 'slow week' });
  assert.equal(partial.status, 201, partial.text);
  const s = (await call('GET', `/admin/subscriptions?account=${a.id}`, undefined, false)).body.data.find((x: any) => x.id === sub.id);
  assert.equal(s.status, 'active', 'a goodwill refund keeps the plan');
  assert.equal((await cycleBucket(a.id, 0)).remaining, 10_000_000);

  const pack = await subscribe(a.id, 'bj-mobile-once');
  const packBucket = () => buckets(a.id).then((bs) => bs.find((b) => b.source.startsWith(`sub:${pack.id}:`)));
  assert.equal((await packBucket()).remaining, 2_000_000);
  const full = await call('POST', `/admin/orders/${pack.order.id}/refund`, { reason: 'bought by mistake' });
  assert.equal(full.status, 201, full.text);
  assert.equal(full.body.details?.allowanceForfeited ?? full.body.order?.details?.allowanceForfeited, 2_000_000, full.text);
  assert.equal((await packBucket()).remaining, 0);
  assert.equal((await cycleBucket(a.id, 0)).remaining, 10_000_000, 'the plan is not touched');
  assert.deepEqual((await auditAccount(srv.app.chargingStore, a.id, { nowMs: clock.nowMs() })).problems, []);
});

// ---------------------------------------------------------------- finding 12: a price per offer

test("Shanghai Telecom and Shanghai Mobile pay-as-you-go in one deployment: the same request is billed at each offer's own price", async () => {
  clock.set('2027-04-02T08:00:00Z');
  const telecom = await account('Shanghai Telecom subscriber');
  const mobile = await account('Shanghai Mobile subscriber');
  await subscribe(telecom.id, 'sh-telecom-payg', 'phone_bill'); // 250,000 tokens per CNY, postpaid on the phone bill
  const top = await call('POST', '/admin/orders/topup', { accountId: mobile.id, amount: '20.00', channel: 'external' });
  assert.equal(top.status, 201, top.text);
  await subscribe(mobile.id, 'sh-mobile-payg', 'wallet'); // 400,000 tokens per CNY, from the wallet

  const prompt = 'Summarise the history of telephone networks in Shanghai, '.repeat(400);
  const send = async (key: string): Promise<any> => {
    const r = await fetch(`${srv.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'claude-4.7', max_tokens: 30, messages: [{ role: 'user', content: prompt }] }),
    });
    assert.equal(r.status, 200, await r.clone().text());
    return r.json();
  };
  await send(telecom.key);
  await send(mobile.key);
  const [t] = await usageRecords(telecom.id);
  const [m] = await usageRecords(mobile.id);
  assert.deepEqual(t.usage, m.usage, 'the same request');
  assert.equal(t.costCoins, m.costCoins);
  const coins = BigInt(t.costCoins); // claude-4.7's coin rates are whole: costCoins is exact
  const ceilDiv = (a: bigint, b: bigint): number => Number((a + b - 1n) / b);
  assert.deepEqual(
    t.charges.map((c: any) => [c.kind, c.amount]),
    [['postpaid_line', ceilDiv(coins * 100n, 250_000n)]],
    'Telecom: 250,000 tokens per CNY',
  );
  assert.deepEqual(
    m.charges.map((c: any) => [c.kind, c.amount]),
    [['wallet', ceilDiv(coins * 100n, 400_000n)]],
    'Mobile: 400,000 tokens per CNY',
  );
  assert.ok(t.charges[0].amount > m.charges[0].amount, `${t.charges[0].amount} fen > ${m.charges[0].amount} fen`);
  for (const x of [telecom, mobile]) assert.deepEqual((await auditAccount(srv.app.chargingStore, x.id, { nowMs: clock.nowMs() })).problems, []);
  // The margin report shows each offer's own revenue.
  const margin = await call('GET', '/admin/reports/margin?period=2027-04', undefined, false);
  assert.equal(margin.status, 200, margin.text);
  const rowOf = (id: string) => margin.body.rows.find((r: any) => r.offerId === id);
  assert.equal(rowOf('sh-telecom-payg')?.revenueMinor, t.charges[0].amount, margin.text);
  assert.equal(rowOf('sh-mobile-payg')?.revenueMinor, m.charges[0].amount, margin.text);
});
