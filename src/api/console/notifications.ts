/**
 * A subscriber's notification settings (issue 16): SMS alerts to the account's linked phone numbers when an
 * allowance crosses 50/80/100 % or a member reaches 80/100 % of their cap. The alerts come from charging's
 * threshold events (the same events the operator's webhook gets), read after a per-account cursor, and go out
 * through the SmsSender port. Delivery runs on a timer (app.ts) and on POST /console/api/alerts/run (operator).
 */
import { z } from 'zod';
import { TokenGridError } from '../../core/index.ts';
import type { ChargingService } from '../../charging/index.ts';
import type { RequestContext } from '../../gateway/index.ts';
import { sendJson } from '../http.ts';
import type { Route, RouteContext } from '../router.ts';
import type { AdminIdentity } from '../shell-deps.ts';
import { parseBody, requireOperator } from '../admin/common.ts';
import { requireManager } from '../self/orders.ts';
import type { BillingRouteDeps } from '../admin/billing-common.ts';
import type { PhoneBook, SmsSender } from './routes.ts';

export interface NotificationSettings {
  sms: boolean;
  /** Allowance percentages that send a text. */
  thresholds: (50 | 80 | 100)[];
  /** Texts when a member reaches 80 % and 100 % of their cap. */
  memberCaps: boolean;
  /** Last charging event looked at (events are time-sortable ids). */
  cursor: string | null;
}

/** Port: where the settings live (app.ts: a JSON file in the data folder). */
export interface SettingsBook {
  get(accountId: string): NotificationSettings | undefined;
  set(accountId: string, s: NotificationSettings): void;
  accounts(): string[];
}

export const DEFAULT_NOTIFICATIONS: NotificationSettings = { sms: false, thresholds: [80, 100], memberCaps: true, cursor: null };

export interface AlertDeps {
  charging: ChargingService;
  sms: SmsSender;
  phones: PhoneBook;
  settings: SettingsBook;
}

function alertText(e: { type: string; data: Record<string, unknown> }): string {
  const pct = Number(e.data.percent);
  if (e.type.startsWith('member_cap_'))
    return `TokenGrid: member ${String(e.data.memberId)} has used ${pct}% of their monthly cap. 成员 ${String(e.data.memberId)} 已用完每月上限的 ${pct}%。`;
  const expires = typeof e.data.expiresAtMs === 'number' ? new Date(e.data.expiresAtMs).toISOString().slice(0, 10) : null;
  return `TokenGrid: ${pct}% of your allowance is used${expires ? ` (it ends ${expires})` : ''}. 您的套餐额度已使用 ${pct}%${expires ? `（${expires} 到期）` : ''}。`;
}

/** Send the texts for the events since each account's cursor; returns how many texts went out. */
export async function deliverSmsAlerts(deps: AlertDeps): Promise<number> {
  let sent = 0;
  for (const accountId of deps.settings.accounts()) {
    const s = deps.settings.get(accountId);
    if (s === undefined) continue;
    const phones = deps.phones.phonesOf(accountId);
    let cursor = s.cursor;
    for (;;) {
      const events = await deps.charging.listEvents(accountId, { afterId: cursor ?? undefined, limit: 200 });
      if (events.length === 0) break;
      for (const e of events) {
        const pct = Number(e.data.percent);
        const wanted = e.type.startsWith('member_cap_') ? s.memberCaps : (s.thresholds as number[]).includes(pct);
        if (s.sms && wanted)
          for (const p of phones) {
            await deps.sms.send(p, alertText(e));
            sent++;
          }
        cursor = e.id;
      }
      if (events.length < 200) break;
    }
    if (cursor !== s.cursor) deps.settings.set(accountId, { ...s, cursor });
  }
  return sent;
}

const body = z
  .object({
    sms: z.boolean(),
    thresholds: z.array(z.union([z.literal(50), z.literal(80), z.literal(100)])).max(3),
    memberCaps: z.boolean(),
  })
  .strict();

export function notificationRoutes(deps: AlertDeps & { billing: BillingRouteDeps; bodyLimitBytes: number }): Route<never>[] {
  const view = (accountId: string) => {
    const s = deps.settings.get(accountId) ?? DEFAULT_NOTIFICATIONS;
    return { sms: s.sms, thresholds: s.thresholds, memberCaps: s.memberCaps, phones: deps.phones.phonesOf(accountId) };
  };
  const routes: (Route<RequestContext> | Route<AdminIdentity>)[] = [
    {
      method: 'GET',
      path: '/self/notifications',
      family: 'openai',
      auth: 'key',
      handler(rc: RouteContext, ctx: RequestContext) {
        sendJson(rc.res, 200, view(ctx.key.accountId));
      },
    },
    {
      method: 'PUT',
      path: '/self/notifications',
      family: 'openai',
      auth: 'key',
      async handler(rc: RouteContext, ctx: RequestContext) {
        const b = await parseBody(rc, body, deps.bodyLimitBytes);
        await requireManager(deps.billing, ctx, 'change notification settings');
        if (b.sms && deps.phones.phonesOf(ctx.key.accountId).length === 0)
          throw new TokenGridError('unprocessable', 'Link a phone number first (PUT /self/phone); SMS alerts go to the linked numbers.');
        const prior = deps.settings.get(ctx.key.accountId);
        // A new subscriber starts from now: alerts are for what happens after switching them on.
        const cursor = prior?.cursor ?? (await deps.charging.listEvents(ctx.key.accountId, { limit: 100_000 })).at(-1)?.id ?? null;
        deps.settings.set(ctx.key.accountId, { sms: b.sms, thresholds: [...new Set(b.thresholds)].sort((x, y) => x - y), memberCaps: b.memberCaps, cursor });
        sendJson(rc.res, 200, view(ctx.key.accountId));
      },
    },
    {
      method: 'POST',
      path: '/console/api/alerts/run',
      family: 'admin',
      auth: 'admin',
      async handler(rc: RouteContext, admin: AdminIdentity) {
        requireOperator(admin);
        rc.req.resume();
        sendJson(rc.res, 200, { sent: await deliverSmsAlerts(deps) });
      },
    },
  ];
  return routes as Route<never>[];
}
