/**
 * Audit of self-service writes (issue 16): every POST/PUT under /self (orders, keys, members, caps, phone,
 * notifications), allowed or refused, becomes one entry in the audit log with the key as the actor, so an
 * operator reads what a subscriber did next to what admins did. The sink is a port (app.ts passes the audit log).
 */
import { TokenGridError } from '../../core/index.ts';
import type { RequestContext } from '../../gateway/index.ts';
import type { Route, RouteContext } from '../router.ts';

/** What the audit log takes (structurally the audit module's AuditInput). */
export interface SelfAuditInput {
  actor: string;
  role: string;
  action: string;
  target: string | null;
  accountId: string | null;
  outcome: number;
  before: unknown;
  after: unknown;
  requestId: string | null;
  source: string | null;
}

export interface SelfAuditSink {
  append(e: SelfAuditInput): Promise<unknown>;
}

const ACTIONS: Record<string, string> = {
  'POST /self/subscriptions': 'self.subscribe',
  'POST /self/subscriptions/:id/change': 'self.plan.change',
  'POST /self/subscriptions/:id/cancel': 'self.plan.cancel',
  'POST /self/addons': 'self.addon.buy',
  'POST /self/topup': 'self.topup',
  'POST /self/redeem': 'self.code.redeem',
  'POST /self/points/redeem': 'self.points.redeem',
  'POST /self/keys': 'self.key.create',
  'POST /self/keys/:id/revoke': 'self.key.revoke',
  'PUT /self/keys/:id/cap': 'self.key.cap',
  'POST /self/members': 'self.member.add',
  'PUT /self/members/:id/cap': 'self.member.cap',
  'PUT /self/phone': 'self.phone.link',
  'PUT /self/notifications': 'self.notifications',
};

/** Wrap the write routes among `routes` so each call leaves an audit entry (a failing sink is logged, never fails the call). */
export function audited<R extends Route<never>>(routes: R[], sink: SelfAuditSink | undefined, onError: (e: unknown) => void): R[] {
  if (sink === undefined) return routes;
  return routes.map((r) => {
    if (r.method === 'GET' || !r.path.startsWith('/self/')) return r;
    const action = ACTIONS[`${r.method} ${r.path}`] ?? `self.${r.method.toLowerCase()}${r.path.slice(5).replace(/\//g, '.')}`;
    const inner = r.handler as (rc: RouteContext, ctx: RequestContext) => Promise<void> | void;
    const handler = async (rc: RouteContext, ctx: RequestContext): Promise<void> => {
      let outcome = 500;
      try {
        await inner(rc, ctx);
        outcome = rc.res.statusCode;
      } catch (e) {
        outcome = e instanceof TokenGridError ? e.status : 500;
        throw e;
      } finally {
        sink
          .append({
            actor: `key:${ctx.key.id}`,
            role: ctx.key.memberId === null ? 'account' : 'member',
            action,
            target: rc.params.id ?? null,
            accountId: ctx.key.accountId,
            outcome,
            before: null,
            after: null,
            requestId: rc.requestId,
            source: rc.req.socket.remoteAddress ?? null,
          })
          .catch(onError);
      }
    };
    return { ...r, handler } as R;
  });
}
