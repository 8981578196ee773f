import { selfOrderSchemas } from './orders.ts';
import { capBody, keyBody, memberBody } from './keys.ts';
import { z } from 'zod';

export const selfSchemas = {
  redeem: z.object({ code: z.string().min(1).max(64) }).strict(),
};

/**
 * The self-service routes of issue 16 in the OpenAPI document (src/api/admin/billing-openapi.ts spreads these
 * into its table; test/e2e/billing-openapi.test.ts checks every registered route is there).
 */

const key = 'key' as const;
export const selfOpenApiOps = {
  'GET /self/offers': { summary: 'Offers the account may buy now, with why not when it may not.', tag: 'self', auth: key },
  'POST /self/subscriptions': {
    summary: 'Subscribe to a plan, pack, trial or pay-as-you-go offer (owner or admin member; wallet or phone bill).',
    tag: 'self',
    auth: key,
    body: selfOrderSchemas.subscribe,
    idempotent: 'required' as const,
  },
  'POST /self/subscriptions/:id/change': {
    summary: 'Upgrade (now, prorated) or downgrade (next cycle).',
    tag: 'self',
    auth: key,
    body: selfOrderSchemas.change,
    idempotent: 'required' as const,
  },
  'POST /self/subscriptions/:id/cancel': { summary: 'Cancel at the end of the cycle.', tag: 'self', auth: key, idempotent: 'required' as const },
  'POST /self/addons': { summary: 'Buy an add-on.', tag: 'self', auth: key, body: selfOrderSchemas.addon, idempotent: 'required' as const },
  'POST /self/topup': {
    summary: 'Top up the wallet, charged to the phone bill.',
    tag: 'self',
    auth: key,
    body: selfOrderSchemas.topup,
    idempotent: 'required' as const,
  },
  'POST /self/points/redeem': {
    summary: 'Redeem loyalty points for a token pack.',
    tag: 'self',
    auth: key,
    body: selfOrderSchemas.points,
    idempotent: 'required' as const,
  },
  'GET /self/orders': { summary: "The account's orders (who placed each: actor).", tag: 'self', auth: key },
  'GET /self/entitlements': { summary: 'Plan limits, QoS and features in force.', tag: 'self', auth: key },
  'GET /self/keys': { summary: 'Keys this key may manage (owners: all; members: their own), with per-key caps.', tag: 'self', auth: key },
  'POST /self/keys': {
    summary: 'Create a key (never more models than this key; monthlyCap gives it its own cap). The secret is shown once.',
    tag: 'self',
    auth: key,
    body: keyBody,
  },
  'POST /self/keys/:id/revoke': { summary: 'Revoke a key.', tag: 'self', auth: key },
  'PUT /self/keys/:id/cap': { summary: "Change a capped key's monthly cap (token coins).", tag: 'self', auth: key, body: capBody },
  'GET /self/members': { summary: 'Members and their caps this month (members see themselves).', tag: 'self', auth: key },
  'POST /self/members': {
    summary: 'Add a family or team member, with an optional monthly cap (owner or admin member).',
    tag: 'self',
    auth: key,
    body: memberBody,
  },
  'PUT /self/members/:id/cap': { summary: "Set a member's monthly cap in token coins (null: none).", tag: 'self', auth: key, body: capBody },
};
