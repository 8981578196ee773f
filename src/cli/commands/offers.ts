import type { CommandContext, CommandSpec } from '../command.ts';
import { CliError } from '../errors.ts';
import { formatMoney, formatTable, formatTokens } from '../format.ts';
import { need, str } from '../validate.ts';
import { ACCOUNT, IDEMPOTENCY_KEY, OFFER, asObj, jsonObject, listOf, num, text, type Obj } from './common.ts';

/** POST /admin/subscriptions with an Idempotency-Key, so a retried subscribe cannot charge twice. */
export async function subscribe(ctx: CommandContext, accountId: string, offerId: string): Promise<Obj> {
  const idempotencyKey = str(ctx.opts, 'idempotency-key') ?? ctx.uuid();
  return asObj(await ctx.client.post('/admin/subscriptions', { accountId, offerId }, { idempotencyKey }));
}

/** Subscribe; when the account was just created, say so in the error, or the operator would create it again. */
export async function subscribeOrExplain(ctx: CommandContext, accountId: string, offerId: string, justCreated: boolean): Promise<Obj> {
  try {
    return await subscribe(ctx, accountId, offerId);
  } catch (e) {
    if (!justCreated || !(e instanceof CliError)) throw e;
    throw new CliError(
      `Account ${accountId} was created, but subscribing it to offer ${offerId} failed: ${e.message} ` +
        `Retry with: tokengrid subscribe --account ${accountId} --offer ${offerId}`,
    );
  }
}

const subscribeCmd: CommandSpec = {
  name: 'subscribe',
  summary: 'Subscribe an account to an offer (a package from the catalog).',
  options: { account: ACCOUNT, offer: OFFER, 'idempotency-key': IDEMPOTENCY_KEY },
  async run(ctx) {
    const accountId = need(ctx.opts, 'account');
    const offerId = need(ctx.opts, 'offer');
    const sub = await subscribe(ctx, accountId, offerId);
    return { json: sub, human: `Subscribed ${accountId} to offer ${offerId} (${text(sub, 'id')}, ${text(sub, 'status')}).` };
  },
};

function priceText(o: Obj): string {
  const minor = num(o, 'priceMinor', 'amountMinor');
  if (minor === undefined) return text(o, 'price');
  const per = text(o, 'cycle', 'period', 'billingPeriod');
  return `${formatMoney(minor, typeof o.currency === 'string' ? o.currency : 'CNY')}${per === '-' ? '' : ` / ${per}`}`;
}

function allowanceText(o: Obj): string {
  const tokens = num(o, 'tokens', 'tokensPerCycle', 'allowanceTokens', 'amount');
  return tokens === undefined ? text(o, 'allowance') : `${formatTokens(tokens)} tokens`;
}

const offers: CommandSpec = {
  name: 'offers',
  aliases: ['offers list', 'offer list'],
  summary: 'List the offers (packages) accounts can subscribe to.',
  options: {},
  async run(ctx) {
    const body = await ctx.client.get('/admin/offers');
    const rows = listOf(body, 'offers').map((o) => [text(o, 'id'), text(o, 'name'), priceText(o), allowanceText(o), text(o, 'status')]);
    const table = rows.length === 0 ? 'No offers.' : formatTable(['ID', 'NAME', 'PRICE', 'ALLOWANCE', 'STATUS'], rows);
    // Catalog warnings (unknown models, prices below vendor cost: docs/catalog.md) are for the operator to see.
    const warnings = Array.isArray((body as Obj).warnings) ? ((body as Obj).warnings as unknown[]).map(String) : [];
    const human = warnings.length === 0 ? table : `${table}\n\nCatalog warnings (${warnings.length}):\n${warnings.map((w) => `- ${w}`).join('\n')}`;
    return { json: jsonObject(body), human };
  },
};

export const offerCommands: CommandSpec[] = [subscribeCmd, offers];
