import type { CommandSpec } from '../command.ts';
import { describeBucket, formatRecord, type BucketView } from '../format.ts';
import { need, positiveInt, str } from '../validate.ts';
import { ACCOUNT, IDEMPOTENCY_KEY, OFFER, asObj, seg, text, type Obj } from './common.ts';

export const MAX_CODES_PER_BATCH = 100_000;

/** { batchId, codes: ["..."] } whatever the exact answer shape (codes as strings or as { code } objects). */
export function normalizeBatch(body: unknown): { batchId: string | null; codes: string[] } {
  const o = asObj(body);
  const batch = asObj(o.batch);
  const batchId = [o.batchId, batch.id, o.id].find((v): v is string => typeof v === 'string') ?? null;
  const raw = Array.isArray(o.codes) ? o.codes : Array.isArray(batch.codes) ? batch.codes : [];
  const codes = raw.map((c: unknown) => (typeof c === 'string' ? c : text(asObj(c), 'code'))).filter((c) => c !== '-');
  return { batchId, codes };
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

const create: CommandSpec = {
  name: 'codes create',
  summary: 'Create a batch of redemption codes for an offer. The codes go to stdout, one a line.',
  options: {
    offer: OFFER,
    count: { type: 'string', value: '<n>', required: true, help: `how many codes (at most ${MAX_CODES_PER_BATCH})` },
    'idempotency-key': { ...IDEMPOTENCY_KEY, help: 'Idempotency-Key of the batch (default: a random uuid); reuse it to retry safely' },
  },
  examples: ['tokengrid codes create --offer unicom-trial-30m --count 10000 > codes.txt'],
  async run(ctx) {
    const offerId = need(ctx.opts, 'offer');
    const count = positiveInt('count', need(ctx.opts, 'count'), MAX_CODES_PER_BATCH);
    const started = ctx.nowMs();
    ctx.progress(`Creating ${count} codes for offer ${offerId}...`);
    const idempotencyKey = str(ctx.opts, 'idempotency-key') ?? ctx.uuid();
    const body = await ctx.client.post('/admin/codes', { offerId, count }, { timeoutMs: ctx.longTimeoutMs, idempotencyKey });
    const batch = normalizeBatch(body);
    ctx.progress(`Created ${batch.codes.length} codes (batch ${batch.batchId ?? '-'}) in ${seconds(ctx.nowMs() - started)}.`);
    // Human output is the bare codes so `> codes.txt` gives a clean file; the summary went to stderr.
    return { json: { ...asObj(body), ...batch }, human: batch.codes.join('\n') };
  },
};

function redeemedText(accountId: string, o: Obj, nowMs: number): string {
  const bucket = asObj(o.bucket ?? o);
  const detail =
    typeof bucket.remaining === 'number' && typeof bucket.unit === 'string' ? describeBucket(bucket as unknown as BucketView, nowMs) : formatRecord(o);
  return `Redeemed the code for ${accountId}:\n  ${detail.split('\n').join('\n  ')}`;
}

const redeem: CommandSpec = {
  name: 'redeem',
  summary: 'Redeem a code for an account.',
  options: { account: ACCOUNT, code: { type: 'string', value: '<code>', required: true, help: 'the code, as printed' } },
  async run(ctx) {
    const accountId = need(ctx.opts, 'account');
    const body = asObj(await ctx.client.post(`/admin/accounts/${seg(accountId)}/redeem`, { code: need(ctx.opts, 'code') }));
    return { json: body, human: redeemedText(accountId, body, ctx.nowMs()) };
  },
};

export const codeCommands: CommandSpec[] = [create, redeem];
