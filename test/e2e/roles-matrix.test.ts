/**
 * The admin permission matrix (src/api/admin/permissions.ts, SECURITY.md), route by route, for every role:
 * operator, enterprise on its own account, enterprise on another enterprise's account, finance, and an API key.
 * Plus the value-creating findings of issue 12 item 7, each with the figures a hostile tenant admin used on main.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startTestServer, type TestServer } from '../support/server.ts';
import { ACTIONS, ROUTE_PERMISSIONS, permissionOf } from '../../src/api/admin/permissions.ts';

let srv: TestServer;
let n = 0;
type Role = 'apiKey' | 'finance' | 'otherEnterprise' | 'enterprise' | 'operator';
const keys = {} as Record<Role, string>;
/** Ids the rows use: A is the enterprise's account, B another enterprise's. */
const ids = {} as { A: string; B: string; memberA: string; keyA: string; subA: string; orderA: string };

async function as(key: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { authorization: `Bearer ${key}`, 'idempotency-key': `matrix-${++n}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(srv.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}

before(async () => {
  // Every row tries an API key on an admin route: far more failed authentications than the default throttle allows.
  srv = await startTestServer({ env: { TOKENGRID_AUTH_FAILURES_PER_MINUTE: '100000' } });
  const op = srv.adminKey;
  ids.A = (await as(op, 'POST', '/admin/accounts', { name: 'Enterprise A', kind: 'team' })).body.id;
  ids.B = (await as(op, 'POST', '/admin/accounts', { name: 'Enterprise B', kind: 'team' })).body.id;
  ids.memberA = (await as(op, 'POST', `/admin/accounts/${ids.A}/members`, { name: 'Ann' })).body.id;
  ids.keyA = (await as(op, 'POST', `/admin/accounts/${ids.A}/keys`, { name: 'a' })).body.id;
  await as(op, 'POST', `/admin/accounts/${ids.A}/topups`, { amountMinor: 100_000, currency: 'CNY' });
  const sub = await as(op, 'POST', '/admin/subscriptions', { accountId: ids.A, offerId: 'unicom-trial-30m', channel: 'wallet' });
  ids.subA = sub.body.id;
  ids.orderA = sub.body.order.id;
  keys.operator = op;
  keys.enterprise = (await as(op, 'POST', '/admin/admin-keys', { name: 'A admin', role: 'enterprise', accountIds: [ids.A] })).body.key;
  keys.otherEnterprise = (await as(op, 'POST', '/admin/admin-keys', { name: 'B admin', role: 'enterprise', accountIds: [ids.B] })).body.key;
  keys.finance = (await as(op, 'POST', '/admin/admin-keys', { name: 'Finance', role: 'finance' })).body.key;
  keys.apiKey = srv.demoKey;
});
after(() => srv.close());

interface Row {
  method: string;
  path: () => string;
  body?: () => unknown;
  allowed: Role[];
  route: string;
}
const ALL: Role[] = ['operator', 'enterprise', 'finance'];
const OE: Role[] = ['operator', 'enterprise'];
const O: Role[] = ['operator'];
const OF: Role[] = ['operator', 'finance'];
const OEF: Role[] = ['operator', 'enterprise', 'finance'];

/** One row per admin route; "enterprise" acts on account A (its own), "otherEnterprise" on A too (not its own). */
const ROWS: Row[] = [
  { route: 'POST /admin/accounts', method: 'POST', path: () => '/admin/accounts', body: () => ({ name: 'Branch', parentId: ids.A }), allowed: OE },
  { route: 'GET /admin/accounts', method: 'GET', path: () => '/admin/accounts', allowed: [...OEF, 'otherEnterprise'] },
  { route: 'GET /admin/accounts/:id', method: 'GET', path: () => `/admin/accounts/${ids.A}`, allowed: OEF },
  { route: 'PATCH /admin/accounts/:id', method: 'PATCH', path: () => `/admin/accounts/${ids.A}`, body: () => ({ name: 'Enterprise A' }), allowed: OE },
  { route: 'POST /admin/accounts/:id/members', method: 'POST', path: () => `/admin/accounts/${ids.A}/members`, body: () => ({ name: 'Bob' }), allowed: OE },
  {
    route: 'PUT /admin/accounts/:id/members/:memberId/cap',
    method: 'PUT',
    path: () => `/admin/accounts/${ids.A}/members/${ids.memberA}/cap`,
    body: () => ({ tokensPerCycle: 1000 }),
    allowed: OE,
  },
  { route: 'POST /admin/accounts/:id/keys', method: 'POST', path: () => `/admin/accounts/${ids.A}/keys`, body: () => ({ name: 'k' }), allowed: OE },
  { route: 'POST /admin/keys', method: 'POST', path: () => '/admin/keys', body: () => ({ accountId: ids.A, name: 'k2' }), allowed: OE },
  { route: 'GET /admin/keys', method: 'GET', path: () => `/admin/keys?account=${ids.A}`, allowed: OEF },
  { route: 'POST /admin/keys/:id/revoke', method: 'POST', path: () => `/admin/keys/${ids.keyA}/revoke`, allowed: OE },
  { route: 'POST /admin/accounts/:id/grants', method: 'POST', path: () => `/admin/accounts/${ids.A}/grants`, body: () => ({ amount: 1000 }), allowed: O },
  { route: 'POST /admin/accounts/:id/topups', method: 'POST', path: () => `/admin/accounts/${ids.A}/topups`, body: () => ({ amountMinor: 100 }), allowed: O },
  {
    route: 'PUT /admin/accounts/:id/policy',
    method: 'PUT',
    path: () => `/admin/accounts/${ids.A}/policy`,
    body: () => ({ overage: 'wallet', currency: 'CNY' }),
    allowed: OE,
  },
  { route: 'GET /admin/accounts/:id/balance', method: 'GET', path: () => `/admin/accounts/${ids.A}/balance`, allowed: OEF },
  { route: 'GET /admin/accounts/:id/usage', method: 'GET', path: () => `/admin/accounts/${ids.A}/usage`, allowed: OEF },
  { route: 'GET /admin/accounts/:id/events', method: 'GET', path: () => `/admin/accounts/${ids.A}/events`, allowed: OEF },
  {
    route: 'GET /admin/usage/:requestId',
    method: 'GET',
    path: () => '/admin/usage/req_none',
    allowed: [...OEF, 'otherEnterprise'] /* 404 before any account is known */,
  },
  { route: 'GET /admin/offers', method: 'GET', path: () => '/admin/offers', allowed: [...OEF, 'otherEnterprise'] },
  { route: 'GET /admin/offers/:id', method: 'GET', path: () => '/admin/offers/ct-tokens-10m', allowed: [...OEF, 'otherEnterprise'] },
  { route: 'POST /admin/offers/reload', method: 'POST', path: () => '/admin/offers/reload', allowed: O },
  {
    route: 'POST /admin/subscriptions',
    method: 'POST',
    path: () => '/admin/subscriptions',
    body: () => ({ accountId: ids.A, offerId: 'ct-tokens-10m', channel: 'wallet' }),
    allowed: OE,
  },
  { route: 'GET /admin/subscriptions', method: 'GET', path: () => `/admin/subscriptions?account=${ids.A}`, allowed: OEF },
  { route: 'GET /admin/subscriptions/:id', method: 'GET', path: () => `/admin/subscriptions/${ids.subA}`, allowed: OEF },
  {
    route: 'POST /admin/subscriptions/:id/change',
    method: 'POST',
    path: () => `/admin/subscriptions/${ids.subA}/change`,
    body: () => ({ offerId: 'unicom-trial-30m' }),
    allowed: OE,
  },
  {
    route: 'POST /admin/subscriptions/:id/cancel',
    method: 'POST',
    path: () => `/admin/subscriptions/sub_none/cancel`,
    allowed: [...OE, 'otherEnterprise'] /* 404 */,
  },
  {
    route: 'POST /admin/accounts/:id/addons',
    method: 'POST',
    path: () => `/admin/accounts/${ids.A}/addons`,
    body: () => ({ offerId: 'ct-tokens-10m', channel: 'wallet' }),
    allowed: OE,
  },
  { route: 'POST /admin/orders/topup', method: 'POST', path: () => '/admin/orders/topup', body: () => ({ accountId: ids.A, amount: '1.00' }), allowed: O },
  { route: 'GET /admin/orders', method: 'GET', path: () => `/admin/orders?account=${ids.A}`, allowed: OEF },
  { route: 'GET /admin/orders/:id', method: 'GET', path: () => `/admin/orders/${ids.orderA}`, allowed: OEF },
  { route: 'POST /admin/orders/:id/refund', method: 'POST', path: () => '/admin/orders/ord_none/refund', body: () => ({ reason: 'x' }), allowed: O },
  {
    route: 'POST /admin/accounts/:id/credits',
    method: 'POST',
    path: () => `/admin/accounts/${ids.A}/credits`,
    body: () => ({ amount: '1.00', reason: 'goodwill' }),
    allowed: O,
  },
  { route: 'POST /admin/codes', method: 'POST', path: () => '/admin/codes', body: () => ({ offerId: 'bj-mobile-once', count: 1 }), allowed: O },
  { route: 'GET /admin/codes', method: 'GET', path: () => '/admin/codes', allowed: OF },
  { route: 'POST /admin/accounts/:id/redeem', method: 'POST', path: () => `/admin/accounts/${ids.A}/redeem`, body: () => ({ code: 'NOPE-NOPE' }), allowed: OE },
  { route: 'GET /admin/accounts/:id/points', method: 'GET', path: () => `/admin/accounts/${ids.A}/points`, allowed: OEF },
  {
    route: 'POST /admin/accounts/:id/points',
    method: 'POST',
    path: () => `/admin/accounts/${ids.A}/points`,
    body: () => ({ points: 10, reason: 'promo' }),
    allowed: O,
  },
  {
    route: 'POST /admin/accounts/:id/points/redeem',
    method: 'POST',
    path: () => `/admin/accounts/${ids.A}/points/redeem`,
    body: () => ({ points: 1 }),
    allowed: OE,
  },
  { route: 'POST /admin/bills/run', method: 'POST', path: () => '/admin/bills/run', body: () => ({ period: '2020-01' }), allowed: O },
  { route: 'GET /admin/bills', method: 'GET', path: () => `/admin/bills?account=${ids.A}`, allowed: OEF },
  { route: 'GET /admin/bills/preview', method: 'GET', path: () => `/admin/bills/preview?account=${ids.A}`, allowed: OEF },
  { route: 'GET /admin/bills/:id', method: 'GET', path: () => '/admin/bills/bill_none', allowed: [...OEF, 'otherEnterprise'] /* 404 */ },
  { route: 'GET /admin/payments', method: 'GET', path: () => `/admin/payments?account=${ids.A}`, allowed: OEF },
  { route: 'POST /admin/payments/deliver', method: 'POST', path: () => '/admin/payments/deliver', allowed: O },
  { route: 'POST /admin/renewals/run', method: 'POST', path: () => '/admin/renewals/run', allowed: O },
  { route: 'GET /admin/reports/vendor-settlement', method: 'GET', path: () => '/admin/reports/vendor-settlement', allowed: OF },
  { route: 'GET /admin/reports/margin', method: 'GET', path: () => '/admin/reports/margin', allowed: OF },
  { route: 'GET /admin/accounts/:id/entitlements', method: 'GET', path: () => `/admin/accounts/${ids.A}/entitlements`, allowed: OEF },
  { route: 'GET /admin/accounts/:id/statement', method: 'GET', path: () => `/admin/accounts/${ids.A}/statement`, allowed: OEF },
  { route: 'POST /admin/admin-keys', method: 'POST', path: () => '/admin/admin-keys', body: () => ({ name: 'f2', role: 'finance' }), allowed: O },
  { route: 'GET /admin/admin-keys', method: 'GET', path: () => '/admin/admin-keys', allowed: O },
  { route: 'POST /admin/admin-keys/:id/revoke', method: 'POST', path: () => '/admin/admin-keys/adk_none/revoke', allowed: O },
  { route: 'GET /admin/audit', method: 'GET', path: () => `/admin/audit?account=${ids.A}`, allowed: OEF },
  { route: 'GET /admin/audit/verify', method: 'GET', path: () => '/admin/audit/verify', allowed: OF },
  { route: 'GET /admin/openapi.json', method: 'GET', path: () => '/admin/openapi.json', allowed: [...OEF, 'otherEnterprise'] },
  { route: 'GET /console/api/whoami', method: 'GET', path: () => '/console/api/whoami', allowed: [...OEF, 'otherEnterprise'] },
  { route: 'GET /console/api/deployments', method: 'GET', path: () => '/console/api/deployments', allowed: OF },
  { route: 'POST /console/api/alerts/run', method: 'POST', path: () => '/console/api/alerts/run', allowed: O },
];

describe('every admin route, for every role', () => {
  test('the table covers every route of the matrix, and SECURITY.md prints every row', () => {
    const covered = new Set(ROWS.map((r) => r.route));
    const missing = Object.keys(ROUTE_PERMISSIONS).filter((k) => !covered.has(k) && k !== 'POST /admin/root-key/rotate');
    assert.deepEqual(missing, []);
    const doc = readFileSync(new URL('../../SECURITY.md', import.meta.url), 'utf8');
    for (const k of Object.keys(ROUTE_PERMISSIONS)) assert.ok(doc.includes(`\`${k}\``), `SECURITY.md lists ${k}`);
    for (const k of Object.keys(ACTIONS)) assert.ok(doc.includes(`\`${k}\``), `SECURITY.md lists action ${k}`);
  });

  test('a route the matrix does not list is operator-only', () => {
    assert.deepEqual(permissionOf('POST', '/admin/some-new-route').roles, ['operator']);
  });

  const ORDER: Role[] = ['apiKey', 'finance', 'otherEnterprise', 'enterprise', 'operator'];
  for (const row of ROWS) {
    test(`${row.route}: allowed for ${row.allowed.join(', ')}`, async () => {
      for (const role of ORDER) {
        const r = await as(keys[role], row.method, row.path(), row.body?.());
        const where = `${role} ${row.method} ${row.path()} -> ${r.status} ${JSON.stringify(r.body)}`;
        if (role === 'apiKey') assert.equal(r.status, 401, `an API key is not an admin key: ${where}`);
        else if (row.allowed.includes(role)) assert.ok(r.status !== 401 && r.status !== 403 && r.status < 500, `allowed: ${where}`);
        else {
          assert.equal(r.status, 403, `denied: ${where}`);
          assert.equal(r.body.error.type, 'permission_error');
        }
      }
    });
  }
});

describe('issue 12 item 7: an enterprise admin creates no value for its own accounts', () => {
  const ent = () => keys.enterprise;
  test('a grant of 1e15 tokens is refused (403) and grants nothing', async () => {
    const r = await as(ent(), 'POST', `/admin/accounts/${ids.A}/grants`, { amount: 1e15 });
    assert.equal(r.status, 403);
    const buckets = (await as(keys.operator, 'GET', `/admin/accounts/${ids.A}/balance`)).body.buckets;
    assert.ok(buckets.every((b: any) => b.granted < 1e15));
  });

  test('a direct top-up of 10 billion CNY is refused (403), and so is a top-up order paid externally', async () => {
    assert.equal((await as(ent(), 'POST', `/admin/accounts/${ids.A}/topups`, { amountMinor: 1e12, currency: 'CNY' })).status, 403);
    assert.equal((await as(ent(), 'POST', '/admin/orders/topup', { accountId: ids.A, amountMinor: 1e12, channel: 'external' })).status, 403);
    assert.equal((await as(ent(), 'POST', '/admin/orders/topup', { accountId: ids.A, amountMinor: 1e12, channel: 'phone_bill' })).status, 403);
  });

  test("a 10-billion credit line (postpaid) is refused (403); a block/wallet policy is the tenant's own", async () => {
    assert.equal((await as(ent(), 'PUT', `/admin/accounts/${ids.A}/policy`, { overage: 'postpaid', creditLimitMinor: 1e12, currency: 'CNY' })).status, 403);
    assert.equal((await as(ent(), 'PUT', `/admin/accounts/${ids.A}/policy`, { overage: 'wallet', creditLimitMinor: 1e12, currency: 'CNY' })).status, 403);
    assert.equal((await as(ent(), 'PUT', `/admin/accounts/${ids.A}/policy`, { overage: 'block' })).status, 200);
    assert.equal(
      (await as(keys.operator, 'PUT', `/admin/accounts/${ids.A}/policy`, { overage: 'postpaid', creditLimitMinor: 5000, currency: 'CNY' })).status,
      200,
    );
    assert.equal((await as(keys.operator, 'PUT', `/admin/accounts/${ids.A}/policy`, { overage: 'wallet', currency: 'CNY' })).status, 200);
  });

  test('an add-on "paid externally" or on the phone bill is refused (403); paid from the wallet it is bought and the wallet pays', async () => {
    assert.equal((await as(ent(), 'POST', `/admin/accounts/${ids.A}/addons`, { offerId: 'ct-tokens-10m', channel: 'external' })).status, 403);
    assert.equal((await as(ent(), 'POST', `/admin/accounts/${ids.A}/addons`, { offerId: 'ct-tokens-10m', channel: 'phone_bill' })).status, 403);
    assert.equal((await as(ent(), 'POST', '/admin/subscriptions', { accountId: ids.A, offerId: 'ct-dev-basic', channel: 'external' })).status, 403);
    const bought = await as(ent(), 'POST', `/admin/accounts/${ids.A}/addons`, { offerId: 'ct-tokens-10m' });
    assert.equal(bought.status, 201, JSON.stringify(bought.body));
    assert.equal(bought.body.order.paidBy, 'wallet', 'an enterprise order without a channel is paid from the wallet');
  });

  test("an operator's suspension cannot be lifted by the enterprise admin (403); the operator lifts it", async () => {
    assert.equal((await as(keys.operator, 'PATCH', `/admin/accounts/${ids.A}`, { status: 'suspended' })).status, 200);
    const undo = await as(ent(), 'PATCH', `/admin/accounts/${ids.A}`, { status: 'active' });
    assert.equal(undo.status, 403);
    assert.equal((await as(keys.operator, 'GET', `/admin/accounts/${ids.A}`)).body.status, 'suspended');
    assert.equal((await as(keys.operator, 'PATCH', `/admin/accounts/${ids.A}`, { status: 'active' })).status, 200);
  });

  test("an enterprise admin may suspend its own account and lift its own suspension, not an operator's (the audit log says whose)", async () => {
    const branch = (await as(ent(), 'POST', '/admin/accounts', { name: 'Branch 2', parentId: ids.A })).body.id;
    assert.equal((await as(ent(), 'PATCH', `/admin/accounts/${branch}`, { status: 'suspended' })).status, 200);
    assert.equal((await as(ent(), 'PATCH', `/admin/accounts/${branch}`, { status: 'active' })).status, 200, 'its own suspension');
    assert.equal((await as(keys.operator, 'PATCH', `/admin/accounts/${branch}`, { status: 'suspended' })).status, 200);
    assert.equal((await as(ent(), 'PATCH', `/admin/accounts/${branch}`, { status: 'active' })).status, 403, "the operator's suspension");
    assert.equal((await as(ent(), 'PATCH', `/admin/accounts/${branch}`, { status: 'closed' })).status, 200);
    assert.equal((await as(ent(), 'PATCH', `/admin/accounts/${branch}`, { status: 'active' })).status, 403, "reopening a closed account is the operator's");
  });
});
