/** Admin routes for offers and orders: subscriptions, changes, cancels, add-ons, top-ups, codes, points, refunds. */
import { z } from 'zod';
import { TokenGridError, isIsoCurrency } from '../../core/index.ts';
import { sendJson } from '../http.ts';
import type { Route } from '../router.ts';
import type { AdminIdentity } from '../shell-deps.ts';
import { noteAudit } from './audit.ts';
import { isoOrNull, parseBody } from './common.ts';
import { authorize } from './permissions.ts';
import {
  accessGuard,
  actorOf,
  dec,
  idempotencyKey,
  minorFrom,
  moneyInput,
  orderView,
  sendOutcome,
  subscriptionBody,
  unwrap,
  type BillingRouteDeps,
} from './billing-common.ts';

const channel = z.enum(['wallet', 'phone_bill', 'external']);
export const schemas = {
  subscribe: z
    .object({ accountId: z.string().min(1), offerId: z.string().min(1), quantity: z.number().int().positive().optional(), channel: channel.optional() })
    .strict(),
  change: z.object({ offerId: z.string().min(1), quantity: z.number().int().positive().optional() }).strict(),
  cancel: z.object({}).strict(),
  addon: z.object({ offerId: z.string().min(1), quantity: z.number().int().positive().optional(), channel: channel.optional() }).strict(),
  topup: z
    .object({
      accountId: z.string().min(1),
      ...moneyInput,
      currency: z.string().length(3).refine(isIsoCurrency, { message: 'must be an ISO 4217 currency code such as CNY' }).optional(),
      channel: z.enum(['external', 'phone_bill']).optional(),
      reference: z.string().max(200).optional(),
    })
    .strict(),
  codes: z
    .object({
      offerId: z.string().min(1),
      count: z.number().int(),
      expiresAt: z.string().datetime({ offset: true }).optional(),
      note: z.string().max(500).optional(),
    })
    .strict(),
  redeem: z.object({ code: z.string().min(1).max(64) }).strict(),
  points: z.object({ points: z.number().int() }).strict(),
  grantPoints: z.object({ points: z.number().int(), reason: z.string().min(1).max(200) }).strict(),
  refund: z.object({ ...moneyInput, reason: z.string().min(1).max(500) }).strict(),
  credit: z.object({ ...moneyInput, reason: z.string().min(1).max(500), channel: z.enum(['wallet', 'phone_bill']).optional() }).strict(),
};

/**
 * The payment channel an order will use, checked against the matrix's order.pay.* actions: an enterprise admin
 * pays from the account's own wallet (its orders default to the wallet); external and phone-bill payment is
 * operator-only.
 */
function payWith<C extends string | undefined>(admin: AdminIdentity, channel: C): C | 'wallet' {
  const effective = channel ?? (admin.role === 'operator' ? undefined : 'wallet');
  if (effective !== undefined) authorize(admin, `order.pay.${effective}`);
  return effective as C | 'wallet';
}

/** A body that may be empty (cancel). */
async function optionalBody(rc: Parameters<Route['handler']>[0], limit: number): Promise<void> {
  if (rc.req.headers['content-length'] === '0' || (rc.req.headers['content-length'] === undefined && rc.req.headers['transfer-encoding'] === undefined)) {
    rc.req.resume();
    return;
  }
  await parseBody(rc, schemas.cancel, limit).catch((e: unknown) => {
    if (e instanceof TokenGridError && e.code === 'invalid_json' && /empty/.test(e.message)) return;
    throw e;
  });
}

export function billingOrderRoutes(deps: BillingRouteDeps): Route<AdminIdentity>[] {
  const b = deps.billing;
  const access = accessGuard(deps);
  const limit = deps.bodyLimitBytes;
  const subOf = async (admin: AdminIdentity, id: string) => {
    const s = await b.getSubscription(id);
    if (s === undefined) throw new TokenGridError('not_found', `Subscription ${id} does not exist.`);
    await access(admin, s.accountId);
    return s;
  };
  return [
    {
      method: 'GET',
      path: '/admin/offers',
      family: 'admin',
      auth: 'admin',
      handler(rc) {
        const c = b.offers();
        const all = rc.query.get('all') === 'true';
        const data = [...c.offers.values()].filter((o) => all || o.status === 'active').map((o) => ({ ...o, price: dec(o.priceMinor) }));
        sendJson(rc.res, 200, { version: c.version, currency: c.currency, warnings: c.warnings, data });
      },
    },
    {
      method: 'GET',
      path: '/admin/offers/:id',
      family: 'admin',
      auth: 'admin',
      handler(rc) {
        const o = b.offers().offers.get(rc.params.id!);
        if (o === undefined) throw new TokenGridError('not_found', `Unknown offer ${rc.params.id}.`);
        sendJson(rc.res, 200, { ...o, price: dec(o.priceMinor) });
      },
    },
    {
      method: 'POST',
      path: '/admin/offers/reload',
      family: 'admin',
      auth: 'admin',
      handler(rc) {
        rc.req.resume();
        const r = deps.reloadOffers();
        if (!r.ok) throw new TokenGridError('unprocessable', `${deps.offersFile} was not loaded; the previous catalog stays in force. ${r.message}`);
        sendJson(rc.res, 200, { file: deps.offersFile, ...r.value });
      },
    },
    {
      method: 'POST',
      path: '/admin/subscriptions',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const key = idempotencyKey(rc);
        const body = await parseBody(rc, schemas.subscribe, limit);
        await access(admin, body.accountId);
        const channel = payWith(admin, body.channel);
        const r = unwrap(await b.subscribe({ ...body, channel, actor: actorOf(admin), idempotencyKey: key }));
        noteAudit(rc, {
          target: r.value.subscription.id,
          accountId: body.accountId,
          after: { offerId: body.offerId, orderId: r.value.order.id, amountMinor: r.value.order.amountMinor, paidBy: r.value.order.paidBy },
        });
        sendOutcome(rc, 201, subscriptionBody(b, r.value.subscription, r.value.order), r.replayed);
      },
    },
    {
      method: 'GET',
      path: '/admin/subscriptions',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const accountId = rc.query.get('account');
        if (accountId !== null) await access(admin, accountId);
        else if (admin.accountIds !== null)
          throw new TokenGridError('invalid_request', 'An enterprise admin lists one account at a time: ?account=<id>.', 'account');
        if (accountId !== null) await b.catchUp(accountId);
        const subs = await b.listSubscriptions({ accountId: accountId ?? undefined, live: rc.query.get('live') === 'true' });
        sendJson(rc.res, 200, { data: subs.map((s) => subscriptionBody(b, s)) });
      },
    },
    {
      method: 'GET',
      path: '/admin/subscriptions/:id',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const s = await subOf(admin, rc.params.id!);
        await b.catchUp(s.accountId);
        sendJson(rc.res, 200, subscriptionBody(b, (await b.getSubscription(s.id))!));
      },
    },
    {
      method: 'POST',
      path: '/admin/subscriptions/:id/change',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const key = idempotencyKey(rc);
        const body = await parseBody(rc, schemas.change, limit);
        const sub = await subOf(admin, rc.params.id!);
        payWith(admin, sub.channel);
        noteAudit(rc, { accountId: sub.accountId, before: { offerId: sub.offerId } });
        const r = unwrap(await b.changePlan({ subscriptionId: rc.params.id!, ...body, actor: actorOf(admin), idempotencyKey: key }));
        sendOutcome(
          rc,
          200,
          { ...subscriptionBody(b, r.value.subscription, r.value.order), change: r.value.kind, effectiveAt: r.value.effectiveAt },
          r.replayed,
        );
      },
    },
    {
      method: 'POST',
      path: '/admin/subscriptions/:id/cancel',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const key = idempotencyKey(rc);
        await optionalBody(rc, limit);
        const sub = await subOf(admin, rc.params.id!);
        noteAudit(rc, { accountId: sub.accountId });
        const r = unwrap(await b.cancel({ subscriptionId: rc.params.id!, actor: actorOf(admin), idempotencyKey: key }));
        sendOutcome(rc, 200, subscriptionBody(b, r.value.subscription, r.value.order), r.replayed);
      },
    },
    {
      method: 'POST',
      path: '/admin/accounts/:id/addons',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const key = idempotencyKey(rc);
        const body = await parseBody(rc, schemas.addon, limit);
        await access(admin, rc.params.id!);
        const channel = payWith(admin, body.channel);
        const r = unwrap(await b.buyAddon({ accountId: rc.params.id!, ...body, channel, actor: actorOf(admin), idempotencyKey: key }));
        noteAudit(rc, {
          target: r.value.subscription.id,
          after: { offerId: body.offerId, orderId: r.value.order.id, amountMinor: r.value.order.amountMinor, paidBy: r.value.order.paidBy },
        });
        sendOutcome(rc, 201, subscriptionBody(b, r.value.subscription, r.value.order), r.replayed);
      },
    },
    {
      method: 'POST',
      path: '/admin/orders/topup',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const key = idempotencyKey(rc);
        const body = await parseBody(rc, schemas.topup, limit);
        await access(admin, body.accountId);
        const amountMinor = minorFrom(body);
        const r = unwrap(
          await b.topUp({
            accountId: body.accountId,
            amountMinor,
            currency: body.currency,
            channel: body.channel,
            reference: body.reference ?? null,
            actor: actorOf(admin),
            idempotencyKey: key,
          }),
        );
        noteAudit(rc, {
          target: r.value.order.id,
          accountId: body.accountId,
          after: { orderId: r.value.order.id, amountMinor, channel: body.channel ?? 'external', walletMinor: r.value.walletMinor },
        });
        sendOutcome(
          rc,
          201,
          {
            order: orderView(r.value.order),
            wallet: { balanceMinor: r.value.walletMinor, balance: dec(r.value.walletMinor) },
            settledOrders: r.value.settledOrders,
          },
          r.replayed,
        );
      },
    },
    {
      method: 'GET',
      path: '/admin/orders',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const accountId = rc.query.get('account');
        if (accountId === null) throw new TokenGridError('invalid_request', 'give ?account=<id>', 'account');
        await access(admin, accountId);
        sendJson(rc.res, 200, { data: (await b.listOrders({ accountId })).map(orderView) });
      },
    },
    {
      method: 'GET',
      path: '/admin/orders/:id',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const o = await b.getOrder(rc.params.id!);
        if (o === undefined) throw new TokenGridError('not_found', `Order ${rc.params.id} does not exist.`);
        await access(admin, o.accountId);
        sendJson(rc.res, 200, { ...orderView(o), payments: await b.listPayments({ orderId: o.id }) });
      },
    },
    {
      method: 'POST',
      path: '/admin/orders/:id/refund',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const key = idempotencyKey(rc);
        const body = await parseBody(rc, schemas.refund, limit);
        const amountMinor = body.amount === undefined && body.amountMinor === undefined ? undefined : minorFrom(body);
        const r = unwrap(await b.refund({ orderId: rc.params.id!, amountMinor, reason: body.reason, actor: actorOf(admin), idempotencyKey: key }));
        sendOutcome(rc, 201, orderView(r.value), r.replayed);
      },
    },
    {
      method: 'POST',
      path: '/admin/accounts/:id/credits',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const key = idempotencyKey(rc);
        const body = await parseBody(rc, schemas.credit, limit);
        await access(admin, rc.params.id!);
        const r = unwrap(
          await b.credit({
            accountId: rc.params.id!,
            amountMinor: minorFrom(body),
            reason: body.reason,
            channel: body.channel,
            actor: actorOf(admin),
            idempotencyKey: key,
          }),
        );
        sendOutcome(rc, 201, orderView(r.value), r.replayed);
      },
    },
    {
      method: 'POST',
      path: '/admin/codes',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const key = idempotencyKey(rc);
        const body = await parseBody(rc, schemas.codes, limit);
        const r = unwrap(
          await b.generateCodes({
            offerId: body.offerId,
            count: body.count,
            expiresAtMs: body.expiresAt ? Date.parse(body.expiresAt) : null,
            note: body.note ?? null,
            actor: actorOf(admin),
            idempotencyKey: key,
          }),
        );
        const batch = r.value.batch;
        sendOutcome(
          rc,
          201,
          {
            batchId: batch.id,
            offerId: batch.offerId,
            count: batch.count,
            expiresAt: isoOrNull(batch.expiresAtMs),
            note: batch.note,
            createdAt: isoOrNull(batch.createdAtMs),
            codes: r.value.codes,
            ...(r.value.codes === null ? { notice: 'Codes are shown once, when the batch is created; this is a replay.' } : {}),
          },
          r.replayed,
        );
      },
    },
    {
      method: 'GET',
      path: '/admin/codes',
      family: 'admin',
      auth: 'admin',
      async handler(rc) {
        const data = [];
        for (const batch of await b.listCodeBatches()) {
          const full = await b.codeBatch(batch.id);
          data.push({
            batchId: batch.id,
            offerId: batch.offerId,
            count: batch.count,
            redeemed: full?.redeemed ?? 0,
            expiresAt: isoOrNull(batch.expiresAtMs),
            note: batch.note,
            createdBy: batch.createdBy,
            createdAt: isoOrNull(batch.createdAtMs),
          });
        }
        sendJson(rc.res, 200, { data });
      },
    },
    {
      method: 'POST',
      path: '/admin/accounts/:id/redeem',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const key = idempotencyKey(rc, false);
        const body = await parseBody(rc, schemas.redeem, limit);
        await access(admin, rc.params.id!);
        const r = unwrap(await b.redeemCode({ accountId: rc.params.id!, code: body.code, actor: actorOf(admin), idempotencyKey: key }));
        sendOutcome(
          rc,
          201,
          {
            offerId: r.value.offerId,
            order: orderView(r.value.order),
            subscription: r.value.subscription === null ? null : subscriptionBody(b, r.value.subscription),
            walletMinor: r.value.walletMinor,
          },
          r.replayed,
        );
      },
    },
    {
      method: 'GET',
      path: '/admin/accounts/:id/points',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        await access(admin, rc.params.id!);
        sendJson(rc.res, 200, { accountId: rc.params.id, points: await b.pointsBalance(rc.params.id!), rules: b.offers().points });
      },
    },
    {
      method: 'POST',
      path: '/admin/accounts/:id/points',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const key = idempotencyKey(rc);
        const body = await parseBody(rc, schemas.grantPoints, limit);
        await access(admin, rc.params.id!);
        const r = unwrap(
          await b.grantPoints({ accountId: rc.params.id!, points: body.points, reason: body.reason, actor: actorOf(admin), idempotencyKey: key }),
        );
        sendOutcome(rc, 201, { ...r.value.entry, at: isoOrNull(r.value.entry.atMs), balance: r.value.balance }, r.replayed);
      },
    },
    {
      method: 'POST',
      path: '/admin/accounts/:id/points/redeem',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const key = idempotencyKey(rc);
        const body = await parseBody(rc, schemas.points, limit);
        await access(admin, rc.params.id!);
        const r = unwrap(await b.redeemPoints({ accountId: rc.params.id!, points: body.points, actor: actorOf(admin), idempotencyKey: key }));
        sendOutcome(
          rc,
          201,
          { order: orderView(r.value.order), tokens: r.value.tokens, pointsLeft: r.value.pointsLeft, expiresAt: r.value.expiresAt },
          r.replayed,
        );
      },
    },
  ];
}
