import type { CommandContext, CommandSpec } from '../command.ts';
import { UsageError } from '../errors.ts';
import { formatCount, formatTable, formatTokens, formatWhen } from '../format.ts';
import { futureInstant, idArg, nameList, need, positiveInt, str } from '../validate.ts';
import { ACCOUNT, ACCOUNT_FILTER, MODELS, asObj, jsonObject, listOf, seg, text, type Obj } from './common.ts';

const MAX_LIMIT = 1_000_000_000;

interface Limits {
  requestsPerMinute?: number;
  tokensPerMinute?: number;
  concurrentRequests?: number;
}

function limitsFrom(ctx: CommandContext): Limits | undefined {
  const limits: Limits = {};
  const rpm = str(ctx.opts, 'rpm');
  const tpm = str(ctx.opts, 'tpm');
  const concurrency = str(ctx.opts, 'concurrency');
  if (rpm !== undefined) limits.requestsPerMinute = positiveInt('rpm', rpm, MAX_LIMIT);
  if (tpm !== undefined) limits.tokensPerMinute = positiveInt('tpm', tpm, MAX_LIMIT);
  if (concurrency !== undefined) limits.concurrentRequests = positiveInt('concurrency', concurrency, MAX_LIMIT);
  return Object.keys(limits).length > 0 ? limits : undefined;
}

function createBody(ctx: CommandContext): Obj {
  const models = str(ctx.opts, 'models');
  const expires = str(ctx.opts, 'expires');
  return {
    accountId: need(ctx.opts, 'account'),
    memberId: str(ctx.opts, 'member'),
    name: str(ctx.opts, 'name'),
    allowedModels: models === undefined ? undefined : nameList('models', models),
    expiresAt: expires === undefined ? undefined : futureInstant('expires', expires, ctx.nowMs()),
    limits: limitsFrom(ctx),
  };
}

export function limitsText(limits: unknown): string {
  const l = asObj(limits);
  const parts: string[] = [];
  if (typeof l.requestsPerMinute === 'number') parts.push(`${formatCount(l.requestsPerMinute)} requests/min`);
  if (typeof l.tokensPerMinute === 'number') parts.push(`${formatTokens(l.tokensPerMinute)} tokens/min`);
  if (typeof l.concurrentRequests === 'number') parts.push(`${l.concurrentRequests} at a time`);
  return parts.length > 0 ? parts.join(', ') : 'none';
}

const modelsText = (m: unknown): string => (Array.isArray(m) ? m.join(', ') : 'all of the plan');

const create: CommandSpec = {
  name: 'key create',
  summary: 'Create an API key for an account (the key is shown once).',
  options: {
    account: ACCOUNT,
    models: MODELS,
    expires: { type: 'string', value: '<date>', help: 'expiry: 2026-12-25 (00:00 UTC) or 2026-12-25T18:00:00+08:00' },
    rpm: { type: 'string', value: '<n>', help: 'requests per minute' },
    tpm: { type: 'string', value: '<n>', help: 'tokens per minute' },
    concurrency: { type: 'string', value: '<n>', help: 'requests at the same time' },
    member: { type: 'string', value: '<id>', help: 'family or team member the key belongs to (mem_...)' },
    name: { type: 'string', value: '<name>', help: 'a label for the key' },
  },
  examples: ['tokengrid key create --account acct_... --models deepseek-v3.2,glm-5 --rpm 60 --expires 2026-12-31'],
  async run(ctx) {
    const k = asObj(await ctx.client.post('/admin/keys', createBody(ctx)));
    const human = [
      `Created key ${text(k, 'id')} for ${text(k, 'accountId')}:`,
      `  ${text(k, 'key')}`,
      'This is the only time the key is shown: store it now.',
      `  models:  ${modelsText(k.allowedModels)}`,
      `  expires: ${k.expiresAt ? formatWhen(k.expiresAt as string) : 'never'}`,
      `  limits:  ${limitsText(k.limits)}`,
    ].join('\n');
    return { json: k, human };
  },
};

function keyStatus(k: Obj, nowMs: number): string {
  if (k.revokedAt) return 'revoked';
  if (typeof k.expiresAt === 'string' && Date.parse(k.expiresAt) <= nowMs) return 'expired';
  return 'active';
}

const list: CommandSpec = {
  name: 'key list',
  summary: 'List API keys (never the keys themselves, only their prefixes).',
  options: { account: ACCOUNT_FILTER },
  async run(ctx) {
    const body = await ctx.client.get('/admin/keys', { query: { account: str(ctx.opts, 'account') } });
    const rows = listOf(body).map((k) => [
      text(k, 'id'),
      text(k, 'accountId'),
      text(k, 'name'),
      `${text(k, 'prefix')}…`,
      modelsText(k.allowedModels),
      k.expiresAt ? formatWhen(k.expiresAt as string) : 'never',
      keyStatus(k, ctx.nowMs()),
    ]);
    const human = rows.length === 0 ? 'No keys.' : formatTable(['ID', 'ACCOUNT', 'NAME', 'PREFIX', 'MODELS', 'EXPIRES', 'STATUS'], rows);
    return { json: jsonObject(body), human };
  },
};

const revoke: CommandSpec = {
  name: 'key revoke',
  summary: 'Revoke an API key: it stops working at once.',
  options: { key: { type: 'string', value: '<id>', required: true, help: 'key id (key_...)' } },
  async run(ctx) {
    const id = idArg(ctx.opts, 'key');
    if (id.startsWith('tg-')) throw new UsageError('--key takes the key id (key_...), not the secret key; find the id with tokengrid key list');
    const k = asObj(await ctx.client.post(`/admin/keys/${seg(id)}/revoke`, {}));
    return { json: k, human: `Revoked key ${text(k, 'id')} (${text(k, 'prefix')}…) of ${text(k, 'accountId')}.` };
  },
};

export const keyCommands: CommandSpec[] = [create, list, revoke];
