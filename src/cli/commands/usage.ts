import { formatMinor } from '../../core/index.ts';
import type { CommandContext, CommandSpec } from '../command.ts';
import { UsageError } from '../errors.ts';
import { formatCount, formatMoney, formatTable, formatTokens, formatWhen } from '../format.ts';
import { flag, isoInstant, need, str } from '../validate.ts';
import { ACCOUNT, asObj, listOf, num, seg, text, type Obj } from './common.ts';

function range(ctx: CommandContext): { from?: string; to?: string } {
  const fromText = str(ctx.opts, 'from');
  const toText = str(ctx.opts, 'to');
  const from = fromText === undefined ? undefined : isoInstant('from', fromText);
  const to = toText === undefined ? undefined : isoInstant('to', toText);
  if (from && to && Date.parse(from) >= Date.parse(to)) throw new UsageError('--from must be before --to');
  return { from, to };
}

const n = (o: Obj, key: string): number => num(o, key) ?? 0;

/** Money columns are in the rate table's minor units (fen); shown as a decimal without guessing a currency. */
const charged = (o: Obj, coins: string, minor: string): string =>
  n(o, minor) > 0 ? `${formatTokens(n(o, coins))} + ${formatMinor(n(o, minor), 100)}` : formatTokens(n(o, coins));

function summaryText(rows: Obj[]): string {
  const table = formatTable(
    ['DAY', 'MODEL', 'REQUESTS', 'INPUT', 'OUTPUT', 'CHARGED (tokens + wallet)'],
    rows.map((r) => [
      text(r, 'day'),
      text(r, 'model'),
      formatCount(n(r, 'requests')),
      formatTokens(n(r, 'tokensInput')),
      formatTokens(n(r, 'tokensOutput')),
      charged(r, 'chargedCoins', 'chargedMinor'),
    ]),
  );
  const sum = (k: string): number => rows.reduce((s, r) => s + n(r, k), 0);
  return `${table}\nTotal: ${formatCount(sum('requests'))} requests, ${formatTokens(sum('tokensInput'))} input and ${formatTokens(sum('tokensOutput'))} output tokens.`;
}

/** What the buckets paid for one request: "29 tokens + 0.05 CNY" (the rated cost may differ: a leak, or no price). */
export function chargesText(charges: unknown): string {
  const totals = new Map<string, { unit: string; currency: string | null; amount: number }>();
  for (const c of listOf(charges)) {
    const unit = text(c, 'unit');
    const currency = typeof c.currency === 'string' ? c.currency : null;
    const key = `${unit}:${currency ?? ''}`;
    const t = totals.get(key) ?? { unit, currency, amount: 0 };
    t.amount += n(c, 'amount');
    totals.set(key, t);
  }
  if (totals.size === 0) return 'nothing';
  return [...totals.values()]
    .map((t) =>
      t.unit === 'money' ? formatMoney(t.amount, t.currency) : t.unit === 'requests' ? `${formatCount(t.amount)} requests` : `${formatTokens(t.amount)} tokens`,
    )
    .join(' + ');
}

function recordsText(rows: Obj[]): string {
  return formatTable(
    ['SETTLED', 'REQUEST', 'MODEL', 'INPUT', 'OUTPUT', 'CHARGED', 'STATUS'],
    rows.map((r) => {
      const usage = asObj(r.usage);
      const settled = typeof r.settledAtMs === 'number' ? formatWhen(new Date(r.settledAtMs).toISOString()) : '-';
      return [
        settled,
        text(r, 'requestId'),
        text(r, 'model'),
        formatTokens(n(usage, 'tokensInput')),
        formatTokens(n(usage, 'tokensOutput')),
        chargesText(r.charges),
        `${text(r, 'status')}${r.usageEstimated ? ' (estimated)' : ''}`,
      ];
    }),
  );
}

const usage: CommandSpec = {
  name: 'usage',
  summary: "Show an account's usage by day and model (default: the last 30 days).",
  options: {
    account: ACCOUNT,
    from: { type: 'string', value: '<date>', help: 'from this instant (2026-11-01 or a date-time with offset)' },
    to: { type: 'string', value: '<date>', help: 'up to this instant (exclusive)' },
    records: { type: 'boolean', help: 'one line per request (usage records) instead of the daily summary' },
  },
  async run(ctx) {
    const accountId = need(ctx.opts, 'account');
    const records = flag(ctx.opts, 'records');
    const query = { ...range(ctx), detail: records ? 'records' : undefined };
    const body = asObj(await ctx.client.get(`/admin/accounts/${seg(accountId)}/usage`, { query }));
    const rows = listOf(body);
    const head = `Usage of ${accountId} from ${formatWhen(body.from as string)} to ${formatWhen(body.to as string)}:`;
    const human = rows.length === 0 ? `${head} none.` : `${head}\n${records ? recordsText(rows) : summaryText(rows)}`;
    return { json: body, human };
  },
};

export const usageCommands: CommandSpec[] = [usage];
