import type { CommandSpec } from '../command.ts';
import { bucketKindLabel, describeBucket, formatMoney, formatTokens, type BucketView } from '../format.ts';
import { currencyCode, futureInstant, moneyAmount, nameList, need, oneOf, str, tokenCount } from '../validate.ts';
import { ACCOUNT, IDEMPOTENCY_KEY, MODELS, asObj, seg } from './common.ts';

const topup: CommandSpec = {
  name: 'topup',
  summary: "Top up an account's wallet (pay-as-you-go money).",
  options: {
    account: ACCOUNT,
    amount: { type: 'string', value: '<decimal>', required: true, help: 'amount in major units, e.g. 10.00' },
    currency: { type: 'string', value: '<code>', help: 'currency (default CNY)' },
    reference: { type: 'string', value: '<ref>', help: 'your payment reference (e.g. an order number)' },
    'idempotency-key': { ...IDEMPOTENCY_KEY, help: 'Idempotency-Key of the top-up order (default: a random uuid)' },
  },
  examples: ['tokengrid topup --account acct_... --amount 50.00'],
  async run(ctx) {
    const accountId = need(ctx.opts, 'account');
    const currency = currencyCode(str(ctx.opts, 'currency') ?? 'CNY');
    const amountMinor = moneyAmount('amount', need(ctx.opts, 'amount'), currency);
    // A top-up is an order (with its payment record), so it shows in bills and finance reports.
    const idempotencyKey = str(ctx.opts, 'idempotency-key') ?? ctx.uuid();
    const body = { accountId, amountMinor, currency, reference: str(ctx.opts, 'reference') };
    const placed = asObj(await ctx.client.post('/admin/orders/topup', body, { idempotencyKey }));
    const buckets = asObj(await ctx.client.get(`/admin/accounts/${seg(accountId)}/balance`)).buckets as unknown as BucketView[];
    const wallet = buckets.find((b) => b.kind === 'wallet' && (b.currency ?? currency) === currency);
    const json = { ...(wallet ?? {}), order: placed.order };
    const now = wallet && typeof wallet.remaining === 'number' ? `; the wallet now has ${formatMoney(wallet.remaining, wallet.currency ?? currency)}` : '';
    return { json, human: `Topped up ${accountId} with ${formatMoney(amountMinor, currency)}${now}.` };
  },
};

const GRANT_KINDS = ['trial', 'manual', 'addon'] as const;

const grant: CommandSpec = {
  name: 'grant',
  summary: 'Grant an account a bucket of tokens (trial, manual or add-on).',
  options: {
    account: ACCOUNT,
    tokens: { type: 'string', value: '<n>', required: true, help: 'how many tokens: 30000000, 30M, 1.5M, 500K' },
    expires: { type: 'string', value: '<date>', help: 'expiry: 2026-12-25 (00:00 UTC) or 2026-12-25T18:00:00+08:00; default never' },
    kind: { type: 'string', value: '<kind>', help: 'trial, manual (default) or addon' },
    models: MODELS,
    member: { type: 'string', value: '<id>', help: 'only for this family or team member (mem_...)' },
    reference: { type: 'string', value: '<ref>', help: 'why (kept with the bucket)' },
  },
  examples: ['tokengrid grant --account acct_... --tokens 30M --kind trial --expires 2026-12-25'],
  async run(ctx) {
    const accountId = need(ctx.opts, 'account');
    const amount = tokenCount('tokens', need(ctx.opts, 'tokens'));
    const expires = str(ctx.opts, 'expires');
    const kindText = str(ctx.opts, 'kind');
    const models = str(ctx.opts, 'models');
    const body = {
      unit: 'tokens',
      amount,
      kind: kindText === undefined ? 'manual' : oneOf('kind', kindText, GRANT_KINDS),
      expiresAt: expires === undefined ? undefined : futureInstant('expires', expires, ctx.nowMs()),
      models: models === undefined ? undefined : nameList('models', models),
      memberId: str(ctx.opts, 'member'),
      reference: str(ctx.opts, 'reference'),
    };
    const b = asObj(await ctx.client.post(`/admin/accounts/${seg(accountId)}/grants`, body)) as unknown as BucketView;
    const detail = typeof b.remaining === 'number' ? `: ${describeBucket(b, ctx.nowMs())}` : '';
    return { json: b, human: `Granted ${formatTokens(amount)} tokens (${bucketKindLabel(body.kind)}) to ${accountId}${detail}.` };
  },
};

export const fundsCommands: CommandSpec[] = [topup, grant];
