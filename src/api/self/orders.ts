/**
 * Self-service orders for key holders (issue 16): the same billing use cases, idempotency (Idempotency-Key,
 * shared with the admin API per account) and order records as the admin routes; the actor is `key:<id>`.
 * Only the account's own keys (no member) and the keys of its owners and admins may order.
 */
import { z } from 'zod';
import { TokenGridError } from '../../core/index.ts';
import type { RequestContext } from '../../gateway/index.ts';
import type { Offer } from '../../billing/index.ts';
import { sendJson } from '../http.ts';
import type { Route } from '../router.ts';
import {
  dec,
  idempotencyKey,
  minorFrom,
  moneyInput,
  orderView,
  sendOutcome,
  subscriptionBody,
  unwrap,
  value,
  type BillingRouteDeps,
} from '../admin/billing-common.ts';
import { parseBody } from '../admin/common.ts';

/** Who a key acts for: the whole account (no member, or an owner or admin member) or one member. */
export async function selfRole(deps: BillingRouteDeps, ctx: RequestContext): Promise<'manager' | 'member'> {
  if (ctx.key.memberId === null) return 'manager';
  const m = await deps.accounts.store.getMember(ctx.key.memberId);
  return m !== undefined && (m.role === 'owner' || m.role === 'admin') ? 'manager' : 'member';
}

export async function requireManager(deps: BillingRouteDeps, ctx: RequestContext, what: string): Promise<void> {
  if ((await selfRole(deps, ctx)) !== 'manager') {
    throw new TokenGridError('permission_denied', `Only the account owner (or an admin member) may ${what}; this key belongs to member ${ctx.key.memberId}.`);
  }
}

/** Self-service pays from the wallet or on the phone bill; "external" is for payments an operator records. */
const channel = z.enum(['wallet', 'phone_bill']);
export const selfOrderSchemas = {
  subscribe: z.object({ offerId: z.string().min(1).max(100), quantity: z.number().int().positive().optional(), channel: channel.optional() }).strict(),
  change: z.object({ offerId: z.string().min(1).max(100), quantity: z.number().int().positive().optional() }).strict(),
  addon: z.object({ offerId: z.string().min(1).max(100), quantity: z.number().int().positive().optional(), channel: channel.optional() }).strict(),
  topup: z.object({ ...moneyInput, channel: z.literal('phone_bill').optional() }).strict(),
  points: z.object({ points: z.number().int() }).strict(),
};

const offerView = (o: Offer, action: string, why: string | null) => ({
  id: o.id,
  name: o.name,
  description: o.description,
  type: o.type,
  price: dec(o.priceMinor),
  priceMinor: o.priceMinor,
  currency: o.currency,
  cycle: o.cycle,
  allowance: o.allowance,
  models: o.models,
  overage: o.overage,
  channel: o.channel,
  feature: o.feature,
  renews: o.renews,
  action,
  buyable: why === null,
  why,
});

export function selfOrderRoutes(deps: BillingRouteDeps): Route<RequestContext>[] {
  const b = deps.billing;
  const limit = deps.bodyLimitBytes;
  const actor = (ctx: RequestContext): string => `key:${ctx.key.id}`;
  const ownSub = async (ctx: RequestContext, id: string) => {
    const s = await b.getSubscription(id);
    if (s === undefined || s.accountId !== ctx.key.accountId) throw new TokenGridError('not_found', `Subscription ${id} does not exist.`);
    return s;
  };
  return [
    {
      method: 'GET',
      path: '/self/offers',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        const accountId = ctx.key.accountId;
        await b.catchUp(accountId);
        const subs = await b.listSubscriptions({ accountId });
        const live = subs.filter((s) => s.status === 'active' || s.status === 'past_due');
        const plan = live.find((s) => s.type === 'plan');
        const payg = live.find((s) => s.type === 'payg');
        // Trials are taken once per enterprise tree (the billing use case checks it; the listing says it).
        const treeSubs = [...subs];
        const top = async (id: string): Promise<string> => {
          const seen = new Set([id]);
          for (let a = await deps.accounts.store.getAccount(id); a?.parentId != null && !seen.has(a.parentId); a = await deps.accounts.store.getAccount(id))
            seen.add((id = a.parentId));
          return id;
        };
        for (const queue = [await top(accountId)], seen = new Set<string>(); queue.length > 0; ) {
          const id = queue.shift()!;
          if (seen.has(id)) continue;
          seen.add(id);
          if (id !== accountId) treeSubs.push(...(await b.listSubscriptions({ accountId: id })));
          for (const child of await deps.accounts.store.listAccounts({ parentId: id })) queue.push(child.id);
        }
        const data = [];
        for (const o of b.offers().offers.values()) {
          if (o.status !== 'active') continue;
          let action = 'subscribe';
          let why: string | null = null;
          if (o.type === 'addon') {
            action = 'addon';
            if (o.appliesTo !== null && (plan === undefined || !o.appliesTo.includes(plan.offerId))) why = `only with ${o.appliesTo.join(', ')}`;
            else if (o.renews && plan === undefined) why = 'needs a plan';
          } else if (o.type === 'plan' && plan !== undefined) {
            action = plan.offerId === o.id ? 'current' : 'change';
            if (plan.offerId === o.id) why = 'your current plan';
          } else if (o.type === 'payg' && payg !== undefined) {
            why = payg.offerId === o.id ? 'already active' : 'another pay-as-you-go offer is active';
          } else if (o.trialOnce && treeSubs.some((s) => s.offerId === o.id || s.terms.some((t) => t.offer.id === o.id))) {
            why = 'already taken (once per account and its sub-accounts)';
          }
          data.push(offerView(o, action, why));
        }
        sendJson(rc.res, 200, { currency: b.offers().currency, plan: plan === undefined ? null : { subscriptionId: plan.id, offerId: plan.offerId }, data });
      },
    },
    {
      method: 'POST',
      path: '/self/subscriptions',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        const key = idempotencyKey(rc);
        const body = await parseBody(rc, selfOrderSchemas.subscribe, limit);
        await requireManager(deps, ctx, 'buy packages');
        const offer = b.offers().offers.get(body.offerId);
        if (offer?.type === 'addon') throw new TokenGridError('unprocessable', `${offer.id} is an add-on: buy it with POST /self/addons.`);
        const r = unwrap(await b.subscribe({ accountId: ctx.key.accountId, ...body, actor: actor(ctx), idempotencyKey: key }));
        sendOutcome(rc, 201, subscriptionBody(b, r.value.subscription, r.value.order), r.replayed);
      },
    },
    {
      method: 'POST',
      path: '/self/subscriptions/:id/change',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        const key = idempotencyKey(rc);
        const body = await parseBody(rc, selfOrderSchemas.change, limit);
        await requireManager(deps, ctx, 'change the plan');
        await ownSub(ctx, rc.params.id!);
        const r = unwrap(await b.changePlan({ subscriptionId: rc.params.id!, ...body, actor: actor(ctx), idempotencyKey: key }));
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
      path: '/self/subscriptions/:id/cancel',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        const key = idempotencyKey(rc);
        rc.req.resume();
        await requireManager(deps, ctx, 'cancel a subscription');
        await ownSub(ctx, rc.params.id!);
        const r = unwrap(await b.cancel({ subscriptionId: rc.params.id!, actor: actor(ctx), idempotencyKey: key }));
        sendOutcome(rc, 200, subscriptionBody(b, r.value.subscription, r.value.order), r.replayed);
      },
    },
    {
      method: 'POST',
      path: '/self/addons',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        const key = idempotencyKey(rc);
        const body = await parseBody(rc, selfOrderSchemas.addon, limit);
        await requireManager(deps, ctx, 'buy add-ons');
        const r = unwrap(await b.buyAddon({ accountId: ctx.key.accountId, ...body, actor: actor(ctx), idempotencyKey: key }));
        sendOutcome(rc, 201, subscriptionBody(b, r.value.subscription, r.value.order), r.replayed);
      },
    },
    {
      method: 'POST',
      path: '/self/topup',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        const key = idempotencyKey(rc);
        const body = await parseBody(rc, selfOrderSchemas.topup, limit);
        await requireManager(deps, ctx, 'top up the wallet');
        const amountMinor = minorFrom(body);
        const r = unwrap(
          await b.topUp({
            accountId: ctx.key.accountId,
            amountMinor,
            channel: body.channel ?? 'phone_bill',
            reference: null,
            actor: actor(ctx),
            idempotencyKey: key,
          }),
        );
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
      method: 'POST',
      path: '/self/points/redeem',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        const key = idempotencyKey(rc);
        const body = await parseBody(rc, selfOrderSchemas.points, limit);
        await requireManager(deps, ctx, 'redeem points');
        const r = unwrap(await b.redeemPoints({ accountId: ctx.key.accountId, points: body.points, actor: actor(ctx), idempotencyKey: key }));
        sendOutcome(
          rc,
          201,
          { order: orderView(r.value.order), tokens: r.value.tokens, pointsLeft: r.value.pointsLeft, expiresAt: r.value.expiresAt },
          r.replayed,
        );
      },
    },
    {
      method: 'GET',
      path: '/self/orders',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        // Orders name payment channels and amounts of the whole account: its managers', not every member's (F10).
        await requireManager(deps, ctx, "read the account's orders");
        sendJson(rc.res, 200, { data: (await b.listOrders({ accountId: ctx.key.accountId })).map(orderView) });
      },
    },
    {
      method: 'GET',
      path: '/self/entitlements',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        sendJson(rc.res, 200, value({ ok: true, value: await b.entitlements(ctx.key.accountId) }));
      },
    },
  ];
}
