/**
 * The OpenAPI 3.1 document for the admin and self-service APIs, served at GET /admin/openapi.json (and
 * /self/openapi.json). Every request body is generated (z.toJSONSchema) from the zod schema the route itself
 * parses with: the billing routes' `schemas`, and the `accountBodies` / `chargingBodies` tables the account and
 * charging routes read their bodies through. Summaries, tags and query names are written here.
 * test/e2e/billing-openapi.test.ts fails when a registered route is missing, test/openapi-bodies.test.ts when a
 * route parses an inline schema (one the document cannot see) or a write documents an empty body.
 */
import { z } from 'zod';
import { accountBodies } from './accounts.ts';
import { chargingBodies } from './charging.ts';
import { financeSchemas } from './billing-finance.ts';
import { schemas } from './billing-orders.ts';
import { selfOpenApiOps, selfSchemas } from '../self/schemas.ts';
import { permissionOf } from './permissions.ts';

interface Op {
  summary: string;
  tag: string;
  body?: z.ZodType;
  query?: string[];
  auth?: 'admin' | 'key';
  idempotent?: 'required' | 'optional';
  roles?: string;
  csv?: boolean;
}

const OPS: Record<string, Op> = {
  // accounts, members, keys (api/admin/accounts.ts)
  'POST /admin/accounts': { summary: 'Create an account (enterprise admins: a sub-account of theirs via parentId).', tag: 'accounts' },
  'GET /admin/accounts': { summary: 'List the accounts this admin may see.', tag: 'accounts' },
  'GET /admin/accounts/:id': { summary: 'An account with its members.', tag: 'accounts' },
  'PATCH /admin/accounts/:id': { summary: 'Rename, suspend or close an account; pin its requests to regions (data residency).', tag: 'accounts' },
  'POST /admin/accounts/:id/members': { summary: 'Add a member (family or team).', tag: 'accounts' },
  'POST /admin/accounts/:id/keys': { summary: 'Create an API key for the account (the secret is shown once).', tag: 'keys' },
  'POST /admin/keys': { summary: 'Create an API key (accountId in the body).', tag: 'keys' },
  'GET /admin/keys': { summary: 'List API keys (?account=).', tag: 'keys', query: ['account'] },
  'POST /admin/keys/:id/revoke': { summary: 'Revoke an API key.', tag: 'keys' },
  // charging (api/admin/charging.ts)
  'POST /admin/accounts/:id/grants': { summary: 'Grant a bucket by hand (tokens, requests or money).', tag: 'usage' },
  'POST /admin/accounts/:id/topups': { summary: 'Low-level wallet credit without an order (prefer POST /admin/orders/topup).', tag: 'usage' },
  'PUT /admin/accounts/:id/policy': { summary: 'Set the overage policy (block, wallet, postpaid) and credit limit.', tag: 'usage' },
  'PUT /admin/accounts/:id/members/:memberId/cap': { summary: "Cap a member's token use per cycle.", tag: 'usage' },
  'GET /admin/accounts/:id/balance': { summary: 'Buckets of the account (raw).', tag: 'usage' },
  'GET /admin/accounts/:id/usage': {
    summary: 'Usage by day and model, or the usage records (?detail=records).',
    tag: 'usage',
    query: ['from', 'to', 'detail'],
  },
  'GET /admin/accounts/:id/events': { summary: 'Threshold events (50/80/100 %).', tag: 'usage', query: ['after'] },
  'GET /admin/usage/:requestId': { summary: 'One usage record (CDR).', tag: 'usage' },
  // offers and orders (api/admin/billing-orders.ts)
  'GET /admin/offers': { summary: 'The offers on sale (?all=true: retired ones too) and catalog warnings.', tag: 'offers', query: ['all'] },
  'GET /admin/offers/:id': { summary: 'One offer.', tag: 'offers' },
  'POST /admin/offers/reload': { summary: 'Reload the catalog file now (422 with every error; the previous catalog stays).', tag: 'offers', roles: 'operator' },
  'POST /admin/subscriptions': {
    summary: 'Subscribe an account to a plan, pack, trial or pay-as-you-go offer.',
    tag: 'orders',
    body: schemas.subscribe,
    idempotent: 'required',
  },
  'GET /admin/subscriptions': { summary: 'Subscriptions (?account=, ?live=true).', tag: 'orders', query: ['account', 'live'] },
  'GET /admin/subscriptions/:id': { summary: 'One subscription: current period, renewal, pending change.', tag: 'orders' },
  'POST /admin/subscriptions/:id/change': {
    summary: 'Upgrade now (prorated) or downgrade at the next cycle.',
    tag: 'orders',
    body: schemas.change,
    idempotent: 'required',
  },
  'POST /admin/subscriptions/:id/cancel': { summary: 'Cancel at the end of the current cycle (pay-as-you-go: now).', tag: 'orders', idempotent: 'required' },
  'POST /admin/accounts/:id/addons': {
    summary: 'Buy an add-on (renewing ones are prorated and renew with the plan).',
    tag: 'orders',
    body: schemas.addon,
    idempotent: 'required',
  },
  'POST /admin/orders/topup': {
    summary: 'Top up the wallet (amount "10.00" or amountMinor); pays unpaid orders.',
    tag: 'orders',
    body: schemas.topup,
    idempotent: 'required',
  },
  'GET /admin/orders': { summary: 'Orders of an account.', tag: 'orders', query: ['account'] },
  'GET /admin/orders/:id': { summary: 'One order with its payments.', tag: 'orders' },
  'POST /admin/orders/:id/refund': {
    summary: 'Refund (part of) an order to where it was paid from.',
    tag: 'orders',
    body: schemas.refund,
    idempotent: 'required',
    roles: 'operator',
  },
  'POST /admin/accounts/:id/credits': {
    summary: 'Goodwill credit to the wallet or the phone bill.',
    tag: 'orders',
    body: schemas.credit,
    idempotent: 'required',
    roles: 'operator',
  },
  'POST /admin/codes': {
    summary: 'Generate a batch of one-time redemption codes (shown once, stored as hashes).',
    tag: 'codes',
    body: schemas.codes,
    idempotent: 'required',
    roles: 'operator',
  },
  'GET /admin/codes': { summary: 'Code batches with their redemption counts.', tag: 'codes' },
  'POST /admin/accounts/:id/redeem': { summary: 'Redeem a code for the account.', tag: 'codes', body: schemas.redeem, idempotent: 'optional' },
  'GET /admin/accounts/:id/points': { summary: 'Loyalty points balance and rules.', tag: 'points' },
  'POST /admin/accounts/:id/points': {
    summary: 'Grant (or take back) points.',
    tag: 'points',
    body: schemas.grantPoints,
    idempotent: 'required',
    roles: 'operator',
  },
  'POST /admin/accounts/:id/points/redeem': { summary: 'Redeem points for a token pack.', tag: 'points', body: schemas.points, idempotent: 'required' },
  // finance (api/admin/billing-finance.ts)
  'POST /admin/bills/run': {
    summary: 'Run the bills of an ended month (safe to re-run; final bills never change).',
    tag: 'bills',
    body: financeSchemas.billRun,
    roles: 'operator',
  },
  'GET /admin/bills': { summary: 'Bills (?account=, ?period=YYYY-MM).', tag: 'bills', query: ['account', 'period'] },
  'GET /admin/bills/preview': { summary: 'The bill of a period as it stands now (not stored).', tag: 'bills', query: ['account', 'period'] },
  'GET /admin/bills/:id': { summary: 'One bill; /admin/bills/<id>.csv or ?format=csv for CSV.', tag: 'bills', query: ['format'], csv: true },
  'GET /admin/payments': { summary: 'Payment records (?account=, ?bill=, ?order=).', tag: 'bills', query: ['account', 'bill', 'order'] },
  'POST /admin/payments/deliver': { summary: 'Hand pending phone-bill charges to the carrier now.', tag: 'bills', roles: 'operator' },
  'POST /admin/renewals/run': {
    summary: 'Renew due subscriptions and allowance cycles now; an account that fails is listed in failures (and logged), the others renew.',
    tag: 'bills',
    roles: 'operator',
  },
  'GET /admin/reports/vendor-settlement': {
    summary: 'Cost per upstream vendor, model and day.',
    tag: 'reports',
    query: ['from', 'to'],
    roles: 'operator, finance',
  },
  'GET /admin/reports/margin': { summary: 'Revenue against vendor cost per offer for a month.', tag: 'reports', query: ['period'], roles: 'operator, finance' },
  'GET /admin/accounts/:id/entitlements': { summary: 'What the account has now: QoS, rate limits, seats, features of add-ons.', tag: 'accounts' },
  'GET /admin/accounts/:id/statement': { summary: 'The self-service balance in plain terms, as the account sees it.', tag: 'accounts', query: ['member'] },
  'POST /admin/admin-keys': {
    summary: 'Create an admin key with a role (operator, enterprise + accountIds, finance).',
    tag: 'admin',
    body: financeSchemas.adminKey,
    roles: 'operator',
  },
  'GET /admin/admin-keys': { summary: 'List admin keys.', tag: 'admin', roles: 'operator' },
  'POST /admin/admin-keys/:id/revoke': { summary: 'Revoke an admin key.', tag: 'admin', roles: 'operator' },
  'GET /admin/openapi.json': { summary: 'This document.', tag: 'admin' },
  // audit log and the root key (api/admin/audit.ts)
  'GET /admin/audit': {
    summary: 'The audit log, newest first: actor, role, action, target, before/after, request id, source, time.',
    tag: 'admin',
    query: ['account', 'actor', 'action', 'since', 'until', 'limit'],
  },
  'GET /admin/audit/verify': { summary: "Check the audit log's hash chain; names the first entry that was changed, removed or reordered.", tag: 'admin' },
  'POST /admin/root-key/rotate': { summary: 'Write a new root admin key to data/admin-key; the previous one stops working.', tag: 'admin' },
  // self-service (api/self/routes.ts), authenticated with an API key
  'GET /self/balance': {
    summary: 'Balance per bucket in plain terms: left, used, renews or expires when, what happens past the cap.',
    tag: 'self',
    auth: 'key',
  },
  'GET /self/usage': { summary: 'Usage by day and model.', tag: 'self', auth: 'key', query: ['from', 'to'] },
  'GET /self/bills': { summary: "The account's bills.", tag: 'self', auth: 'key' },
  'GET /self/bills/preview': { summary: "This month's bill so far.", tag: 'self', auth: 'key', query: ['period'] },
  'GET /self/bills/:id': { summary: 'One bill (.csv for CSV).', tag: 'self', auth: 'key', csv: true },
  'GET /self/subscriptions': { summary: "The account's subscriptions.", tag: 'self', auth: 'key' },
  'POST /self/redeem': { summary: 'Redeem a recharge code.', tag: 'self', auth: 'key', body: selfSchemas.redeem, idempotent: 'optional' },
  'GET /self/openapi.json': { summary: 'This document.', tag: 'self', auth: 'key' },
  ...selfOpenApiOps,
  'GET /v1/dashboard/billing/subscription': {
    summary: 'Legacy OpenAI billing: hard_limit_usd is what the live buckets are worth (in the account currency).',
    tag: 'self',
    auth: 'key',
  },
  'GET /v1/dashboard/billing/usage': {
    summary: 'Legacy OpenAI billing: total_usage in hundredths of the account currency.',
    tag: 'self',
    auth: 'key',
    query: ['start_date', 'end_date'],
  },
};

const ERROR = { $ref: '#/components/schemas/Error' };

function operation(method: string, path: string, op: Op): Record<string, unknown> {
  const params = [...path.matchAll(/:(\w+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
  for (const q of op.query ?? []) params.push({ name: q, in: 'query', required: false, schema: { type: 'string' } });
  if (op.idempotent) params.push({ name: 'Idempotency-Key', in: 'header', required: op.idempotent === 'required', schema: { type: 'string' } });
  const ok =
    method === 'POST' && /subscriptions$|addons|topup|codes$|redeem|points|refund|credits|admin-keys$/.test(path) && !path.endsWith('/revoke') ? '201' : '200';
  const content: Record<string, unknown> = { 'application/json': { schema: { type: 'object' } } };
  if (op.csv) content['text/csv'] = { schema: { type: 'string' } };
  return {
    summary: op.summary,
    tags: [op.tag],
    operationId: `${method.toLowerCase()}${path.replace(/[/:.-](\w)/g, (_m, c: string) => c.toUpperCase())}`,
    security: [{ bearer: [] }],
    // Roles come from the permission matrix (permissions.ts), the one place they are checked.
    ...(op.auth === 'key' ? {} : { description: `Roles: ${permissionOf(method, path).roles.join(', ')} (scope: ${permissionOf(method, path).scope}).` }),
    ...(params.length > 0 ? { parameters: params } : {}),
    ...(op.body
      ? { requestBody: { required: true, content: { 'application/json': { schema: z.toJSONSchema(op.body, { io: 'input', unrepresentable: 'any' }) } } } }
      : {}),
    responses: {
      [ok]: { description: 'OK', content },
      '400': { description: 'Invalid input', content: { 'application/json': { schema: ERROR } } },
      '401': { description: 'No or wrong key', content: { 'application/json': { schema: ERROR } } },
      '403': { description: 'The role may not do this', content: { 'application/json': { schema: ERROR } } },
      '404': { description: 'Unknown resource', content: { 'application/json': { schema: ERROR } } },
      ...(method === 'GET'
        ? {}
        : {
            '409': { description: 'Conflict or Idempotency-Key reused', content: { 'application/json': { schema: ERROR } } },
            '422': { description: 'Breaks a business rule', content: { 'application/json': { schema: ERROR } } },
          }),
    },
  };
}

let cached: Record<string, unknown> | undefined;

export function openApiDocument(): Record<string, unknown> {
  if (cached !== undefined) return cached;
  const paths: Record<string, Record<string, unknown>> = {};
  const bodies: Record<string, z.ZodType> = { ...accountBodies, ...chargingBodies };
  for (const [key, described] of Object.entries(OPS)) {
    const [method, path] = key.split(' ') as [string, string];
    const body = described.body ?? bodies[key];
    const op = body === undefined ? described : { ...described, body };
    const p = path.replace(/:(\w+)/g, '{$1}');
    (paths[p] ??= {})[method.toLowerCase()] = operation(method, path, op);
  }
  cached = {
    openapi: '3.1.0',
    info: {
      title: 'TokenGrid admin and self-service API',
      version: '1',
      description:
        'Admin routes take an admin key (roles: operator, enterprise, finance); /self and /v1/dashboard routes take an API key. ' +
        'Money fields ending in Minor are integer minor units (CNY fen); decimal strings are also given. Orders take an Idempotency-Key header.',
    },
    servers: [{ url: '/' }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Error: {
          type: 'object',
          properties: {
            error: {
              type: 'object',
              properties: { message: { type: 'string' }, type: { type: 'string' }, param: { type: ['string', 'null'] }, code: { type: 'string' } },
            },
          },
        },
      },
    },
    paths,
  };
  return cached;
}
