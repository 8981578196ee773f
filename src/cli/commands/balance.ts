import type { CommandSpec } from '../command.ts';
import { bucketKindLabel, describeBucket, spendableSummary, type BucketView } from '../format.ts';
import { flag, need } from '../validate.ts';
import { ACCOUNT, asObj, seg } from './common.ts';

/** The balance in plain terms: one line per bucket, what can be spent now on top. */
export function balanceText(accountId: string, buckets: BucketView[], nowMs: number, all: boolean): string {
  if (buckets.length === 0) {
    return `${accountId} has nothing to spend: no buckets. Grant tokens (tokengrid grant) or top up (tokengrid topup).`;
  }
  const shown = all ? buckets : buckets.filter((b) => !b.expired);
  const width = Math.max(...shown.map((b) => bucketKindLabel(b.kind).length));
  const lines = [`${accountId} can spend ${spendableSummary(buckets, nowMs)} now.`];
  for (const b of shown) lines.push(`  ${bucketKindLabel(b.kind).padEnd(width)}  ${describeBucket(b, nowMs)}`);
  const hidden = buckets.length - shown.length;
  if (hidden > 0) lines.push(`  (${hidden} expired bucket${hidden === 1 ? '' : 's'} not shown; --all shows them)`);
  return lines.join('\n');
}

const balance: CommandSpec = {
  name: 'balance',
  summary: "Show an account's buckets: what is left, until when.",
  options: { account: ACCOUNT, all: { type: 'boolean', help: 'also show expired buckets' } },
  async run(ctx) {
    const accountId = need(ctx.opts, 'account');
    const body = asObj(await ctx.client.get(`/admin/accounts/${seg(accountId)}/balance`));
    const buckets = (Array.isArray(body.buckets) ? body.buckets : []) as BucketView[];
    return { json: body, human: balanceText(String(body.accountId ?? accountId), buckets, ctx.nowMs(), flag(ctx.opts, 'all')) };
  },
};

export const balanceCommands: CommandSpec[] = [balance];
