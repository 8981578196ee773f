import { TokenGridError } from '../../core/index.ts';
import type { RequestContext } from '../../gateway/index.ts';
import { plainAmount } from '../../billing/index.ts';
import { sendJson, sendText } from '../http.ts';
import type { Route } from '../router.ts';
import { billView, orderView, parseDate, sendOutcome, subscriptionBody, unwrap, idempotencyKey, type BillingRouteDeps } from '../admin/billing-common.ts';
import { openApiDocument } from '../admin/billing-openapi.ts';
import { isoOrNull, parseBody } from '../admin/common.ts';
import { selfSchemas } from './schemas.ts';
import { requireManager, selfOrderRoutes } from './orders.ts';
import { selfKeyRoutes, type SelfKeyDeps } from './keys.ts';

const DAY_MS = 86_400_000;

/**
 * Self-service routes for key holders (issue 5): what was bought, what is left, until when, what happens past
 * the cap; usage by day and model; bills; code redemption; and the legacy OpenAI billing endpoints that chat
 * front-ends call to show a balance. A member's key sees the pool and that member's own buckets.
 */
export function selfRoutes(deps: BillingRouteDeps & SelfKeyDeps): Route<RequestContext>[] {
  const b = deps.billing;
  const month = (): string => new Date(deps.clock.nowMs()).toISOString().slice(0, 7);
  return [
    ...selfOrderRoutes(deps),
    ...selfKeyRoutes(deps),
    {
      method: 'GET',
      path: '/self/balance',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        sendJson(rc.res, 200, await b.balance(ctx.key.accountId, ctx.key.memberId));
      },
    },
    {
      method: 'GET',
      path: '/self/usage',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        const now = deps.clock.nowMs();
        const fromMs = parseDate(rc.query, 'from', now - 30 * DAY_MS);
        const toMs = parseDate(rc.query, 'to', now + 1);
        const records = (await deps.charging.listUsage(ctx.key.accountId, { fromMs, toMs })).filter(
          (u) => ctx.key.memberId === null || u.memberId === ctx.key.memberId,
        );
        const rows = new Map<
          string,
          { day: string; model: string; requests: number; tokensInput: number; tokensOutput: number; tokens: number; coins: number; chargedMinor: number }
        >();
        for (const u of records) {
          const day = new Date(u.settledAtMs).toISOString().slice(0, 10);
          const k = `${day} ${u.model}`;
          const r = rows.get(k) ?? { day, model: u.model, requests: 0, tokensInput: 0, tokensOutput: 0, tokens: 0, coins: 0, chargedMinor: 0 };
          r.coins += u.costCoins;
          r.requests++;
          r.tokensInput += u.usage.tokensInput;
          r.tokensOutput += u.usage.tokensOutput;
          r.tokens += u.usage.tokensInput + u.usage.tokensOutput;
          r.chargedMinor += u.charges.filter((c) => c.unit === 'money').reduce((s, c) => s + c.amount, 0);
          rows.set(k, r);
        }
        const data = [...rows.values()]
          .sort((x, y) => (x.day + x.model < y.day + y.model ? -1 : 1))
          .map((r) => ({ ...r, text: `${plainAmount('tokens', r.tokens, null)} in ${r.requests} request(s)` }));
        const total = data.reduce((s, r) => s + r.tokens, 0);
        sendJson(rc.res, 200, {
          accountId: ctx.key.accountId,
          memberId: ctx.key.memberId,
          from: isoOrNull(fromMs),
          to: isoOrNull(toMs),
          totalTokens: total,
          totalCoins: data.reduce((s, r) => s + r.coins, 0),
          text: `${plainAmount('tokens', total, null)} used`,
          data,
        });
      },
    },
    {
      method: 'GET',
      path: '/self/subscriptions',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        await b.catchUp(ctx.key.accountId);
        sendJson(rc.res, 200, { data: (await b.listSubscriptions({ accountId: ctx.key.accountId })).map((s) => subscriptionBody(b, s)) });
      },
    },
    {
      method: 'GET',
      path: '/self/bills',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        await requireManager(deps, ctx, "read the account's bills");
        sendJson(rc.res, 200, { data: (await b.listBills({ accountId: ctx.key.accountId })).map(billView) });
      },
    },
    {
      method: 'GET',
      path: '/self/bills/preview',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        await requireManager(deps, ctx, "read the account's bills");
        const r = await b.previewBill(ctx.key.accountId, rc.query.get('period') ?? month());
        if (!r.ok) throw new TokenGridError('invalid_request', r.message, 'period');
        sendJson(rc.res, 200, { preview: true, ...billView(r.value) });
      },
    },
    {
      method: 'GET',
      path: '/self/bills/:id',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        await requireManager(deps, ctx, "read the account's bills");
        const raw = rc.params.id!;
        const bill = await b.getBill(raw.replace(/\.(csv|json)$/, ''));
        if (bill === undefined || bill.accountId !== ctx.key.accountId) throw new TokenGridError('not_found', `Bill ${raw} does not exist.`);
        if (raw.endsWith('.csv') || rc.query.get('format') === 'csv') sendText(rc.res, 200, b.billCsv(bill), 'text/csv; charset=utf-8');
        else sendJson(rc.res, 200, billView(bill));
      },
    },
    {
      method: 'POST',
      path: '/self/redeem',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        const key = idempotencyKey(rc, false);
        const body = await parseBody(rc, selfSchemas.redeem, deps.bodyLimitBytes);
        const r = unwrap(await b.redeemCode({ accountId: ctx.key.accountId, code: body.code, actor: `key:${ctx.key.id}`, idempotencyKey: key }));
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
      path: '/self/openapi.json',
      family: 'openai',
      auth: 'key',
      handler(rc) {
        sendJson(rc.res, 200, openApiDocument());
      },
    },
    {
      method: 'GET',
      path: '/v1/dashboard/billing/subscription',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        sendJson(rc.res, 200, await b.legacySubscription(ctx.key.accountId, ctx.key.memberId));
      },
    },
    {
      method: 'GET',
      path: '/v1/dashboard/billing/usage',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        const now = deps.clock.nowMs();
        const fromMs = parseDate(rc.query, 'start_date', Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), 1));
        // end_date is exclusive in OpenAI's API (a day); front-ends often send tomorrow.
        const toMs = parseDate(rc.query, 'end_date', now + DAY_MS);
        sendJson(rc.res, 200, await b.legacyUsage(ctx.key.accountId, ctx.key.memberId, fromMs, toMs));
      },
    },
  ];
}
