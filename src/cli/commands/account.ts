import type { CommandContext, CommandSpec } from '../command.ts';
import { formatRecord, formatTable, formatWhen } from '../format.ts';
import { need, oneOf, str } from '../validate.ts';
import { ACCOUNT, IDEMPOTENCY_KEY, asObj, jsonObject, listOf, seg, text, type Obj } from './common.ts';
import { subscribeOrExplain } from './offers.ts';

const KINDS = ['individual', 'family', 'team'] as const;

const create: CommandSpec = {
  name: 'account create',
  summary: 'Create an account; with --offer also subscribe it to an offer.',
  options: {
    name: { type: 'string', value: '<name>', required: true, help: 'display name' },
    kind: { type: 'string', value: '<kind>', help: 'individual (default), family or team' },
    offer: { type: 'string', value: '<id>', help: 'subscribe the new account to this offer' },
    'idempotency-key': { ...IDEMPOTENCY_KEY, help: 'Idempotency-Key of the subscription (default: a random uuid)' },
  },
  examples: ['tokengrid account create --name "Li Wei" --kind family --offer telecom-family-standard'],
  async run(ctx) {
    const name = need(ctx.opts, 'name');
    const kindText = str(ctx.opts, 'kind');
    const kind = kindText === undefined ? undefined : oneOf('kind', kindText, KINDS);
    const offerId = str(ctx.opts, 'offer');
    const account = asObj(await ctx.client.post('/admin/accounts', { name, kind }));
    const lines = [`Created account ${text(account, 'id')} "${text(account, 'name')}" (${text(account, 'kind')}).`];
    if (offerId === undefined) return { json: account, human: lines.join('\n') };
    const subscription = await subscribeOrExplain(ctx, String(account.id), offerId, true);
    lines.push(`Subscribed to offer ${offerId} (${text(subscription, 'id')}).`);
    return { json: { ...account, subscription }, human: lines.join('\n') };
  },
};

const list: CommandSpec = {
  name: 'account list',
  summary: 'List the accounts.',
  options: {},
  async run(ctx) {
    const body = await ctx.client.get('/admin/accounts');
    const rows = listOf(body).map((a) => [text(a, 'id'), text(a, 'name'), text(a, 'kind'), text(a, 'status'), formatWhen(a.createdAt as string)]);
    const human = rows.length === 0 ? 'No accounts yet (tokengrid account create --name ...).' : formatTable(['ID', 'NAME', 'KIND', 'STATUS', 'CREATED'], rows);
    return { json: jsonObject(body), human };
  },
};

function membersTable(members: Obj[]): string {
  if (members.length === 0) return 'Members: none';
  return `Members:\n${formatTable(
    ['ID', 'NAME', 'ROLE'],
    members.map((m) => [text(m, 'id'), text(m, 'name'), text(m, 'role')]),
  )}`;
}

const show: CommandSpec = {
  name: 'account show',
  summary: 'Show one account and its members.',
  options: { account: ACCOUNT },
  async run(ctx: CommandContext) {
    const account = asObj(await ctx.client.get(`/admin/accounts/${seg(need(ctx.opts, 'account'))}`));
    const human = [formatRecord(account, ['createdAtMs']), membersTable(listOf(account.members))].join('\n');
    return { json: account, human };
  },
};

export const accountCommands: CommandSpec[] = [create, list, show];
