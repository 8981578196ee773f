/**
 * Self-service keys and members (issue 16). A key holder manages keys: the account's own keys (no member) and
 * its owners and admins manage every key and member of the account; a member manages the keys of that member.
 *
 * Per-key monthly caps (for agents) reuse charging's member caps: a key with `monthlyCap` gets its own member
 * (role `member`, named "agent: <key name>") whose cap is that amount of token coins a month, so the gateway
 * refuses the key's requests past it (member_cap_reached) while the account's other keys go on.
 */
import { z } from 'zod';
import { TokenGridError } from '../../core/index.ts';
import { addMember, createApiKey, revokeApiKey, type ApiKeyRecord, type KeyLimits } from '../../accounts/index.ts';
import type { RequestContext } from '../../gateway/index.ts';
import { sendJson } from '../http.ts';
import type { Route } from '../router.ts';
import type { BillingRouteDeps } from '../admin/billing-common.ts';
import { failWith, isoOrNull, parseBody } from '../admin/common.ts';
import { requireManager, selfRole } from './orders.ts';

export interface SelfKeyDeps extends BillingRouteDeps {
  /** How many members the account's plan allows (team seats or family members); null = no limit. */
  memberLimit?: (accountId: string) => Promise<{ limit: number; what: 'seats' | 'members' } | null>;
}

export const keyBody = z
  .object({
    name: z.string().min(1).max(100),
    allowedModels: z.array(z.string().min(1).max(100)).max(100).nullable().optional(),
    expiresAt: z.string().datetime({ offset: true }).nullable().optional(),
    /** Token coins a calendar month for this key alone (an agent's budget); omitted: no key cap. */
    monthlyCap: z.number().int().positive().max(1e15).optional(),
    limits: z
      .object({
        requestsPerMinute: z.number().int().positive().optional(),
        tokensPerMinute: z.number().int().positive().optional(),
        concurrentRequests: z.number().int().positive().optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export const memberBody = z
  .object({
    name: z.string().min(1).max(200),
    role: z.enum(['admin', 'member']).optional(),
    monthlyCap: z.number().int().nonnegative().max(1e15).nullable().optional(),
  })
  .strict();
export const capBody = z.object({ monthlyCap: z.number().int().nonnegative().max(1e15).nullable() }).strict();

/** Per field, the stricter of the parent key's limit and the one asked for (a missing field is no limit). */
export function narrowerLimits(parent: KeyLimits, asked: KeyLimits): KeyLimits {
  const out: KeyLimits = {};
  for (const f of ['requestsPerMinute', 'tokensPerMinute', 'concurrentRequests'] as const) {
    const a = parent[f];
    const b = asked[f];
    const v = a === undefined ? b : b === undefined ? a : Math.min(a, b);
    if (v !== undefined) out[f] = v;
  }
  return out;
}

export function selfKeyRoutes(deps: SelfKeyDeps): Route<RequestContext>[] {
  const store = deps.accounts.store;
  const limit = deps.bodyLimitBytes;
  const keyView = async (k: ApiKeyRecord, self: string) => {
    const member = k.memberId === null ? undefined : await store.getMember(k.memberId);
    const agent = member !== undefined && member.name.startsWith('agent: ');
    const cap = agent ? await deps.billing.memberCap(k.accountId, k.memberId!) : null;
    return {
      id: k.id,
      name: k.name,
      prefix: k.prefix,
      memberId: k.memberId,
      memberName: member?.name ?? null,
      allowedModels: k.allowedModels,
      expiresAt: isoOrNull(k.expiresAtMs),
      revokedAt: isoOrNull(k.revokedAtMs),
      limits: k.limits,
      /** The root key this key was minted from (its rate/concurrency window and revocation follow that key). */
      parentKeyId: k.parentKeyId ?? null,
      createdAt: isoOrNull(k.createdAtMs),
      monthlyCap: cap === null ? null : { cap: cap.capCoins, used: cap.usedCoins, left: cap.leftCoins, resetsAt: cap.resetsAt, text: cap.text },
      current: k.id === self,
    };
  };
  /** The keys this key may see and manage. */
  const visibleKeys = async (ctx: RequestContext): Promise<ApiKeyRecord[]> => {
    const all = await store.listKeys(ctx.key.accountId);
    if ((await selfRole(deps, ctx)) === 'manager') return all;
    return all.filter((k) => k.memberId === ctx.key.memberId);
  };
  const memberView = async (accountId: string, m: { id: string; name: string; role: string; createdAtMs: number }) => {
    const cap = await deps.billing.memberCap(accountId, m.id);
    return { id: m.id, name: m.name, role: m.role, createdAt: isoOrNull(m.createdAtMs), agent: m.name.startsWith('agent: '), cap };
  };
  const setCap = async (accountId: string, memberId: string, cap: number | null): Promise<void> => {
    const r = await deps.charging.setMemberCap(accountId, memberId, { tokensPerCycle: cap });
    if (!r.ok) failWith(r.code, r.message);
  };
  const addOne = async (accountId: string, name: string, role: 'admin' | 'member', counted: boolean) => {
    if (counted) {
      const cap = await deps.memberLimit?.(accountId);
      const count = (await store.listMembers(accountId)).filter((m) => !m.name.startsWith('agent: ')).length;
      if (cap && count >= cap.limit)
        throw new TokenGridError(
          'unprocessable',
          `The account already has ${count} members and its plan allows ${cap.limit} ${cap.what}; buy extra seats or upgrade the plan first.`,
        );
    }
    const r = await addMember(deps.accounts, { accountId, name, role });
    if (!r.ok) failWith(r.code, r.message);
    return r.value;
  };
  return [
    {
      method: 'GET',
      path: '/self/keys',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        const data = [];
        for (const k of await visibleKeys(ctx)) data.push(await keyView(k, ctx.key.id));
        sendJson(rc.res, 200, { data });
      },
    },
    {
      method: 'POST',
      path: '/self/keys',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        const body = await parseBody(rc, keyBody, limit);
        // A key never gets more models than the key that made it.
        let allowed = body.allowedModels ?? null;
        const mine = ctx.key.allowedModels;
        if (mine !== null) {
          if (allowed === null) allowed = [...mine];
          const extra = allowed.filter((m) => !mine.includes(m));
          if (extra.length > 0)
            throw new TokenGridError(
              'permission_denied',
              `This key may only use ${mine.join(', ')}; it cannot make a key for ${extra.join(', ')}.`,
              'allowedModels',
            );
        }
        let memberId = ctx.key.memberId;
        if (body.monthlyCap !== undefined) {
          await requireManager(deps, ctx, 'give a key its own monthly cap');
          const agent = await addOne(ctx.key.accountId, `agent: ${body.name}`, 'member', false);
          await setCap(ctx.key.accountId, agent.id, body.monthlyCap);
          memberId = agent.id;
        }
        // Nor a longer life or looser limits: a short-lived console key (or a key an admin limited) cannot mint a
        // permanent or unlimited one (issue 12, attacker finding F6).
        const asked = body.expiresAt ? Date.parse(body.expiresAt) : null;
        const parentExpiry = ctx.key.expiresAtMs;
        const expiresAtMs = parentExpiry === null ? asked : asked === null ? parentExpiry : Math.min(asked, parentExpiry);
        const r = await createApiKey(deps.accounts, {
          accountId: ctx.key.accountId,
          memberId,
          name: body.name,
          allowedModels: allowed,
          expiresAtMs,
          limits: narrowerLimits(ctx.key.limits, body.limits ?? {}),
          parent: ctx.key,
        });
        if (!r.ok) failWith(r.code, r.message);
        sendJson(rc.res, 201, { key: r.value.key, notice: 'The key is shown once; store it now.', ...(await keyView(r.value.record, ctx.key.id)) });
      },
    },
    {
      method: 'POST',
      path: '/self/keys/:id/revoke',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        rc.req.resume();
        const k = (await visibleKeys(ctx)).find((x) => x.id === rc.params.id);
        if (k === undefined) throw new TokenGridError('not_found', `Key ${rc.params.id} does not exist.`);
        const r = await revokeApiKey(deps.accounts, k.id);
        if (!r.ok) failWith(r.code, r.message);
        sendJson(rc.res, 200, await keyView(r.value, ctx.key.id));
      },
    },
    {
      method: 'PUT',
      path: '/self/keys/:id/cap',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        const body = await parseBody(rc, capBody, limit);
        await requireManager(deps, ctx, "change a key's monthly cap");
        const k = (await visibleKeys(ctx)).find((x) => x.id === rc.params.id);
        if (k === undefined) throw new TokenGridError('not_found', `Key ${rc.params.id} does not exist.`);
        const member = k.memberId === null ? undefined : await store.getMember(k.memberId);
        if (member === undefined || !member.name.startsWith('agent: ')) {
          throw new TokenGridError(
            'unprocessable',
            `Key ${k.id} was made without a monthly cap; its spending counts against ${k.memberId === null ? 'the account' : `member ${k.memberId}'s cap`}. Make a new key with monthlyCap.`,
          );
        }
        await setCap(ctx.key.accountId, member.id, body.monthlyCap);
        sendJson(rc.res, 200, await keyView(k, ctx.key.id));
      },
    },
    {
      method: 'GET',
      path: '/self/members',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        const role = await selfRole(deps, ctx);
        const members = (await store.listMembers(ctx.key.accountId)).filter((m) => role === 'manager' || m.id === ctx.key.memberId);
        const data = [];
        for (const m of members) data.push(await memberView(ctx.key.accountId, m));
        sendJson(rc.res, 200, { you: { memberId: ctx.key.memberId, manages: role === 'manager' }, data });
      },
    },
    {
      method: 'POST',
      path: '/self/members',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        const body = await parseBody(rc, memberBody, limit);
        await requireManager(deps, ctx, 'add members');
        if (body.name.startsWith('agent: ')) throw new TokenGridError('invalid_request', 'Names starting with "agent: " are kept for capped keys.', 'name');
        const m = await addOne(ctx.key.accountId, body.name, body.role ?? 'member', true);
        if (body.monthlyCap !== undefined && body.monthlyCap !== null) await setCap(ctx.key.accountId, m.id, body.monthlyCap);
        sendJson(rc.res, 201, await memberView(ctx.key.accountId, m));
      },
    },
    {
      method: 'PUT',
      path: '/self/members/:id/cap',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        const body = await parseBody(rc, capBody, limit);
        await requireManager(deps, ctx, 'set member caps');
        const m = await store.getMember(rc.params.id!);
        if (m === undefined || m.accountId !== ctx.key.accountId) throw new TokenGridError('not_found', `Member ${rc.params.id} does not exist.`);
        await setCap(ctx.key.accountId, m.id, body.monthlyCap);
        sendJson(rc.res, 200, await memberView(ctx.key.accountId, m));
      },
    },
  ];
}
