/**
 * Who may do what on the admin API: ONE declarative matrix, checked in one place (guardAdminRoutes).
 *
 * Every admin route is a row: the roles allowed and the scope rule that ties an enterprise admin to its own
 * accounts. Some routes hold actions whose right depends on the body (the payment channel of an order, a
 * credit line, lifting a suspension); those are rows of ACTIONS, checked with `authorize(admin, action)` by the
 * handler once it has read the body. SECURITY.md prints both tables; test/e2e/roles-matrix.test.ts drives them.
 *
 * The rule behind the matrix: creating value (grants, direct top-ups, credit lines and postpaid limits, orders
 * paid externally or on the phone bill, points, codes, lifting a suspension, refunds) is operator-only;
 * enterprise admins manage their accounts' members, keys and caps and buy through orders paid from the
 * account's own wallet; finance reads.
 */
import { TokenGridError } from '../../core/index.ts';
import type { Route, RouteContext } from '../router.ts';
import type { AdminIdentity, AdminRole } from '../shell-deps.ts';

/**
 * How a request is tied to an account, for enterprise admins (operator and finance see every account):
 * - `global`: not about one account (enterprise admins are not in the roles of such a route, or the route
 *   lists only what an enterprise admin may see);
 * - `account-param`: `:id` in the path is the account; checked here, before the handler runs;
 * - `account-body`: the body's `accountId` (or `parentId`); checked by the handler after it reads the body;
 * - `account-query`: `?account=`; an enterprise admin must give one of its accounts (checked by the handler);
 * - `owner-lookup`: the object named in the path (key, subscription, order, bill, usage record) is looked up
 *   and its account checked by the handler.
 */
export type ScopeRule = 'global' | 'account-param' | 'account-body' | 'account-query' | 'owner-lookup';

export interface Permission {
  roles: readonly AdminRole[];
  scope: ScopeRule;
  /** The audit log's action name for a write. */
  action: string;
  what: string;
  /** True for writes that create value (grants, top-ups, credit, external payments). */
  createsValue?: boolean;
}

const O = ['operator'] as const;
const OF = ['operator', 'finance'] as const;
const OE = ['operator', 'enterprise'] as const;
const OEF = ['operator', 'enterprise', 'finance'] as const;

/** Route matrix: `METHOD path` -> roles and scope. A route not listed here is operator-only. */
export const ROUTE_PERMISSIONS: Readonly<Record<string, Permission>> = {
  // accounts, members, keys
  'POST /admin/accounts': {
    roles: OE,
    scope: 'account-body',
    action: 'account.create',
    what: 'create an account (enterprise: a sub-account of its own, parentId required)',
  },
  'GET /admin/accounts': { roles: OEF, scope: 'global', action: 'account.list', what: 'list accounts (enterprise: its own)' },
  'GET /admin/accounts/:id': { roles: OEF, scope: 'account-param', action: 'account.read', what: 'read an account and its members' },
  'PATCH /admin/accounts/:id': {
    roles: OE,
    scope: 'account-param',
    action: 'account.update',
    what: 'rename, suspend or close an account (lifting a suspension: action account.reactivate; a residency pin: account.regions)',
  },
  'POST /admin/accounts/:id/members': { roles: OE, scope: 'account-param', action: 'member.add', what: 'add a member' },
  'PUT /admin/accounts/:id/members/:memberId/cap': { roles: OE, scope: 'account-param', action: 'member.cap', what: "set a member's per-cycle cap" },
  'POST /admin/accounts/:id/keys': { roles: OE, scope: 'account-param', action: 'key.create', what: 'create an API key' },
  'POST /admin/keys': { roles: OE, scope: 'account-body', action: 'key.create', what: 'create an API key (accountId in the body)' },
  'GET /admin/keys': { roles: OEF, scope: 'account-query', action: 'key.list', what: 'list API keys' },
  'POST /admin/keys/:id/revoke': { roles: OE, scope: 'owner-lookup', action: 'key.revoke', what: 'revoke an API key' },
  // balances and usage
  'POST /admin/accounts/:id/grants': { roles: O, scope: 'account-param', action: 'bucket.grant', what: 'grant tokens, requests or money', createsValue: true },
  'POST /admin/accounts/:id/topups': {
    roles: O,
    scope: 'account-param',
    action: 'wallet.topup',
    what: 'top up the wallet directly (no order)',
    createsValue: true,
  },
  'PUT /admin/accounts/:id/policy': {
    roles: OE,
    scope: 'account-param',
    action: 'policy.set',
    what: 'overage policy block/wallet (postpaid or a credit line: action policy.credit)',
  },
  'GET /admin/accounts/:id/balance': { roles: OEF, scope: 'account-param', action: 'balance.read', what: 'buckets and balances' },
  'GET /admin/accounts/:id/usage': { roles: OEF, scope: 'account-param', action: 'usage.read', what: 'usage summary or records' },
  'GET /admin/accounts/:id/events': { roles: OEF, scope: 'account-param', action: 'events.read', what: 'threshold events' },
  'GET /admin/usage/:requestId': { roles: OEF, scope: 'owner-lookup', action: 'usage.read', what: 'one usage record' },
  // offers and orders
  'GET /admin/offers': { roles: OEF, scope: 'global', action: 'offer.list', what: 'the package catalog' },
  'GET /admin/offers/:id': { roles: OEF, scope: 'global', action: 'offer.read', what: 'one offer' },
  'POST /admin/offers/reload': { roles: O, scope: 'global', action: 'offer.reload', what: 'reload the offer file' },
  'POST /admin/subscriptions': {
    roles: OE,
    scope: 'account-body',
    action: 'order.subscribe',
    what: 'subscribe (enterprise: paid from the wallet, action order.pay.*)',
  },
  'GET /admin/subscriptions': { roles: OEF, scope: 'account-query', action: 'subscription.list', what: 'list subscriptions' },
  'GET /admin/subscriptions/:id': { roles: OEF, scope: 'owner-lookup', action: 'subscription.read', what: 'one subscription' },
  'POST /admin/subscriptions/:id/change': {
    roles: OE,
    scope: 'owner-lookup',
    action: 'order.change',
    what: "change plan (paid through the subscription's channel, action order.pay.*)",
  },
  'POST /admin/subscriptions/:id/cancel': { roles: OE, scope: 'owner-lookup', action: 'order.cancel', what: 'cancel a subscription' },
  'POST /admin/accounts/:id/addons': {
    roles: OE,
    scope: 'account-param',
    action: 'order.addon',
    what: 'buy an add-on (enterprise: from the wallet, action order.pay.*)',
  },
  'POST /admin/orders/topup': {
    roles: O,
    scope: 'account-body',
    action: 'order.topup',
    what: 'top-up order paid externally or on the phone bill',
    createsValue: true,
  },
  'GET /admin/orders': { roles: OEF, scope: 'account-query', action: 'order.list', what: 'list orders' },
  'GET /admin/orders/:id': { roles: OEF, scope: 'owner-lookup', action: 'order.read', what: 'one order and its payments' },
  'POST /admin/orders/:id/refund': { roles: O, scope: 'global', action: 'order.refund', what: 'refund an order', createsValue: true },
  'POST /admin/accounts/:id/credits': { roles: O, scope: 'account-param', action: 'order.credit', what: 'goodwill credit', createsValue: true },
  'POST /admin/codes': { roles: O, scope: 'global', action: 'code.create', what: 'generate redemption codes', createsValue: true },
  'GET /admin/codes': { roles: OF, scope: 'global', action: 'code.list', what: 'list code batches' },
  'POST /admin/accounts/:id/redeem': { roles: OE, scope: 'account-param', action: 'code.redeem', what: 'redeem a code for an account' },
  'GET /admin/accounts/:id/points': { roles: OEF, scope: 'account-param', action: 'points.read', what: 'points balance' },
  'POST /admin/accounts/:id/points': { roles: O, scope: 'account-param', action: 'points.grant', what: 'grant points', createsValue: true },
  'POST /admin/accounts/:id/points/redeem': { roles: OE, scope: 'account-param', action: 'points.redeem', what: "spend the account's points" },
  // bills, payments, reports
  'POST /admin/bills/run': { roles: O, scope: 'global', action: 'bill.run', what: "run the month's bills" },
  'GET /admin/bills': { roles: OEF, scope: 'account-query', action: 'bill.list', what: 'list bills' },
  'GET /admin/bills/preview': { roles: OEF, scope: 'account-query', action: 'bill.preview', what: 'preview a bill' },
  'GET /admin/bills/:id': { roles: OEF, scope: 'owner-lookup', action: 'bill.read', what: 'one bill (JSON or CSV)' },
  'GET /admin/payments': { roles: OEF, scope: 'account-query', action: 'payment.list', what: 'list payments' },
  'POST /admin/payments/deliver': { roles: O, scope: 'global', action: 'payment.deliver', what: 'deliver carrier charges' },
  'POST /admin/renewals/run': { roles: O, scope: 'global', action: 'renewal.run', what: 'run due renewals' },
  'GET /admin/reports/vendor-settlement': { roles: OF, scope: 'global', action: 'report.vendor', what: 'vendor settlement report' },
  'GET /admin/reports/margin': { roles: OF, scope: 'global', action: 'report.margin', what: 'margin report' },
  'GET /admin/accounts/:id/entitlements': { roles: OEF, scope: 'account-param', action: 'entitlement.read', what: 'plan entitlements' },
  'GET /admin/accounts/:id/statement': { roles: OEF, scope: 'account-param', action: 'statement.read', what: 'balance statement' },
  // admin keys, audit, the root key
  'POST /admin/admin-keys': { roles: O, scope: 'global', action: 'admin-key.create', what: 'create an admin key with a role' },
  'GET /admin/admin-keys': { roles: O, scope: 'global', action: 'admin-key.list', what: 'list admin keys' },
  'POST /admin/admin-keys/:id/revoke': { roles: O, scope: 'global', action: 'admin-key.revoke', what: 'revoke an admin key' },
  'POST /admin/root-key/rotate': { roles: O, scope: 'global', action: 'root-key.rotate', what: "replace the data folder's root admin key" },
  'GET /admin/audit': { roles: OEF, scope: 'account-query', action: 'audit.list', what: 'read the audit log (enterprise: ?account= of its own)' },
  'GET /admin/audit/verify': { roles: OF, scope: 'global', action: 'audit.verify', what: "check the audit log's hash chain" },
  'GET /admin/openapi.json': { roles: OEF, scope: 'global', action: 'openapi.read', what: 'the admin API description' },
  // the console's own admin routes (api/console)
  'GET /console/api/whoami': { roles: OEF, scope: 'global', action: 'console.whoami', what: "the admin key's role (what the console shows)" },
  'GET /console/api/deployments': { roles: OF, scope: 'global', action: 'deployment.health', what: 'deployments with breaker state, latency and error rate' },
  'POST /console/api/alerts/run': { roles: O, scope: 'global', action: 'alerts.run', what: 'send due SMS alerts now' },
};

/** Actions inside a route whose right depends on the request body. */
export const ACTIONS: Readonly<Record<string, { roles: readonly AdminRole[]; what: string }>> = {
  'order.pay.wallet': { roles: OE, what: "an order paid now from the account's own wallet" },
  'order.pay.phone_bill': { roles: O, what: 'an order deferred to the phone bill (credit until the carrier collects)' },
  'order.pay.external': { roles: O, what: 'an order recorded as paid outside TokenGrid' },
  'order.pay.none': { roles: OE, what: 'an order that costs nothing (a trial: once per enterprise tree, checked by the billing use case)' },
  'policy.credit': { roles: O, what: 'postpaid overage or a credit line (creditLimitMinor > 0)' },
  'account.suspend': { roles: OE, what: 'suspend or close an account' },
  'account.reactivate': { roles: O, what: 'lift a suspension an operator made (or one of unknown origin), or reopen a closed account' },
  'account.reactivate-own': { roles: OE, what: 'lift a suspension an enterprise admin made' },
  'account.regions': { roles: O, what: "pin an account's requests to regions (data residency), or lift the pin" },
};

/** The default for a route the matrix does not list (a route added later): operator-only, fail closed. */
export const UNLISTED: Permission = { roles: O, scope: 'global', action: 'admin.write', what: 'not in the matrix: operator-only' };

export const permissionOf = (method: string, path: string): Permission => ROUTE_PERMISSIONS[`${method} ${path}`] ?? UNLISTED;

function deny(admin: AdminIdentity, what: string): never {
  throw new TokenGridError('permission_denied', `An admin key with the ${admin.role} role may not do this (${what}); see the role matrix in SECURITY.md.`);
}

/** Throws permission_denied unless the admin's role may perform the body-dependent action. */
export function authorize(admin: AdminIdentity, action: keyof typeof ACTIONS | string): void {
  const a = ACTIONS[action];
  if (a === undefined) throw new TokenGridError('permission_denied', `Unknown action ${action}.`);
  if (!a.roles.includes(admin.role)) deny(admin, a.what);
}

export interface GuardDeps {
  /** Enterprise scope: may this admin act on this account (its own or a sub-account)? */
  canAccess(admin: AdminIdentity, accountId: string): Promise<boolean>;
  /** Called after every admin write (and every denied one) with the outcome; the audit log's hook. */
  onWrite?(rc: RouteContext, admin: AdminIdentity, p: Permission, status: number): Promise<void>;
}

/**
 * Wraps admin routes so that the matrix is checked before the handler: role, then the `account-param` scope.
 * Writes (anything but GET) are reported to `onWrite` after the handler, denied or failed ones too.
 */
export function guardAdminRoutes(routes: Route<AdminIdentity>[], deps: GuardDeps): Route<AdminIdentity>[] {
  return routes.map((route) => {
    if (route.auth !== 'admin') return route;
    const p = permissionOf(route.method, route.path);
    const inner = route.handler;
    const write = route.method !== 'GET';
    const handler = async (rc: RouteContext, admin: AdminIdentity): Promise<void> => {
      try {
        if (!p.roles.includes(admin.role)) deny(admin, p.what);
        if (p.scope === 'account-param' && admin.accountIds !== null && !(await deps.canAccess(admin, rc.params.id!))) {
          throw new TokenGridError('permission_denied', `This admin key may not manage account ${rc.params.id}.`);
        }
        await inner(rc, admin);
      } catch (e) {
        if (write && deps.onWrite) {
          const status = e instanceof TokenGridError ? e.status : 500;
          await deps.onWrite(rc, admin, p, status).catch(() => undefined);
        }
        throw e;
      }
      if (write && deps.onWrite) await deps.onWrite(rc, admin, p, rc.res.statusCode);
    };
    return { ...route, handler };
  });
}
