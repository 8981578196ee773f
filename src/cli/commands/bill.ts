import type { CommandSpec } from '../command.ts';
import { UsageError } from '../errors.ts';
import { formatMoney, formatRecord, formatTable, toCsv } from '../format.ts';
import { flag, idArg, need, period, str } from '../validate.ts';
import { ACCOUNT_FILTER, asObj, jsonObject, listOf, num, seg, text, type Obj } from './common.ts';

function totalText(b: Obj): string {
  const minor = num(b, 'totalMinor', 'amountMinor', 'amountDueMinor');
  return minor === undefined ? text(b, 'total') : formatMoney(minor, typeof b.currency === 'string' ? b.currency : 'CNY');
}

function billsTable(bills: Obj[]): string {
  return formatTable(
    ['ID', 'ACCOUNT', 'PERIOD', 'TOTAL', 'STATUS'],
    bills.map((b) => [text(b, 'id'), text(b, 'accountId'), text(b, 'period'), totalText(b), text(b, 'status')]),
  );
}

const run: CommandSpec = {
  name: 'bill run',
  summary: 'Close a billing period: create the bills of every account for that month.',
  options: { period: { type: 'string', value: '<yyyy-mm>', required: true, help: 'the month, e.g. 2026-11' } },
  async run(ctx) {
    const p = period('period', need(ctx.opts, 'period'));
    const started = ctx.nowMs();
    ctx.progress(`Running bills for ${p}...`);
    const body = await ctx.client.post('/admin/bills/run', { period: p }, { timeoutMs: ctx.longTimeoutMs });
    const bills = listOf(body, 'bills');
    const o = asObj(body);
    const count = num(o, 'count', 'created') ?? bills.length;
    ctx.progress(`Done in ${((ctx.nowMs() - started) / 1000).toFixed(1)} s.`);
    const human = bills.length > 0 ? `Bills for ${p}: ${count}\n${billsTable(bills)}` : `Bills for ${p}: ${count}\n${formatRecord(o)}`;
    return { json: jsonObject(body), human: human.trimEnd() };
  },
};

const list: CommandSpec = {
  name: 'bill list',
  summary: 'List bills.',
  options: { account: ACCOUNT_FILTER, period: { type: 'string', value: '<yyyy-mm>', help: 'only this month' } },
  async run(ctx) {
    const p = str(ctx.opts, 'period');
    const query = { account: str(ctx.opts, 'account'), period: p === undefined ? undefined : period('period', p) };
    const body = await ctx.client.get('/admin/bills', { query });
    const bills = listOf(body, 'bills');
    return { json: jsonObject(body), human: bills.length === 0 ? 'No bills.' : billsTable(bills) };
  },
};

const linesOf = (bill: Obj): Obj[] => listOf(bill.lines ?? bill.items ?? []);

/** CSV of the bill's lines; the columns are every scalar field the lines have, in first-seen order. */
export function billCsv(bill: Obj): string {
  const lines = linesOf(bill);
  const rows = lines.length > 0 ? lines : [bill];
  const headers: string[] = [];
  for (const r of rows) for (const [k, v] of Object.entries(r)) if ((typeof v !== 'object' || v === null) && !headers.includes(k)) headers.push(k);
  return toCsv(
    headers,
    rows.map((r) => headers.map((h) => r[h])),
  );
}

function billText(bill: Obj): string {
  const lines = linesOf(bill);
  const total = totalText(bill);
  const head = formatRecord(total === '-' ? bill : { ...bill, total });
  if (lines.length === 0) return head;
  const cols = Object.keys(lines[0]!).filter((k) => lines.some((l) => typeof l[k] !== 'object' || l[k] === null));
  return `${head}\nLines:\n${formatTable(
    cols.map((c) => c.toUpperCase()),
    lines.map((l) => cols.map((c) => text(l, c))),
  )}`;
}

const show: CommandSpec = {
  name: 'bill show',
  summary: 'Show one bill; --csv prints its lines as CSV.',
  options: { bill: { type: 'string', value: '<id>', required: true, help: 'bill id (bill_...)' }, csv: { type: 'boolean', help: 'CSV on stdout' } },
  async run(ctx) {
    const csv = flag(ctx.opts, 'csv');
    if (csv && ctx.json) throw new UsageError('--csv and --json exclude each other', 'bill show');
    const bill = asObj(await ctx.client.get(`/admin/bills/${seg(idArg(ctx.opts, 'bill'))}`));
    return { json: bill, human: csv ? billCsv(bill) : billText(bill) };
  },
};

export const billCommands: CommandSpec[] = [run, list, show];
