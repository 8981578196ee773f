import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { CommandSpec } from '../command.ts';
import { CliError, UsageError } from '../errors.ts';
import { formatTable } from '../format.ts';
import { flag, positiveInt, str } from '../validate.ts';
import { ACCOUNT_FILTER, asObj, listOf, text } from './common.ts';

/** Audit log, root key rotation and the demo key: the security chores of an operator. */

function isoOpt(name: string, v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const ms = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v);
  if (!Number.isFinite(ms)) throw new UsageError(`--${name} must be a date like 2026-12-01 or an ISO time, got "${v}"`);
  return new Date(ms).toISOString();
}

const audit: CommandSpec = {
  name: 'audit',
  summary: 'Show the audit log: who changed what (newest first).',
  options: {
    account: ACCOUNT_FILTER,
    actor: { type: 'string', value: '<id>', help: 'only this actor (admin key id, root, anonymous)' },
    action: { type: 'string', value: '<name>', help: 'only this action (bucket.grant, key.revoke, auth.failed, ...)' },
    since: { type: 'string', value: '<date>', help: 'from this time on' },
    until: { type: 'string', value: '<date>', help: 'before this time' },
    limit: { type: 'string', value: '<n>', help: 'at most this many entries (default 100)' },
  },
  examples: ['tokengrid audit --account acct_... --json', 'tokengrid audit --action auth.failed --since 2026-12-01'],
  async run(ctx) {
    const limit = str(ctx.opts, 'limit');
    const body = await ctx.client.get('/admin/audit', {
      query: {
        account: str(ctx.opts, 'account'),
        actor: str(ctx.opts, 'actor'),
        action: str(ctx.opts, 'action'),
        since: isoOpt('since', str(ctx.opts, 'since')),
        until: isoOpt('until', str(ctx.opts, 'until')),
        limit: limit === undefined ? undefined : String(positiveInt('limit', limit, 10_000)),
      },
    });
    const rows = listOf(body);
    if (rows.length === 0) return { json: body, human: 'No audit entries match.' };
    const table = formatTable(
      ['#', 'time', 'actor', 'role', 'action', 'target', 'status', 'source'],
      rows.map((e) => [
        text(e, 'seq'),
        text(e, 'at'),
        text(e, 'actor'),
        text(e, 'role'),
        text(e, 'action'),
        text(e, 'target'),
        text(e, 'outcome'),
        text(e, 'source'),
      ]),
    );
    return { json: body, human: table };
  },
};

const auditVerify: CommandSpec = {
  name: 'audit verify',
  summary: "Check the audit log's hash chain; fails if any entry was changed, removed or reordered.",
  options: {},
  async run(ctx) {
    const r = asObj(await ctx.client.get('/admin/audit/verify'));
    if (r.ok !== true) {
      if (ctx.json) throw new CliError(`the audit log is broken at entry ${text(r, 'brokenAt')}: ${text(r, 'reason')} ${JSON.stringify(r)}`);
      throw new CliError(`the audit log is broken at entry ${text(r, 'brokenAt')}: ${text(r, 'reason')}`);
    }
    return { json: r, human: `The audit log is intact: ${text(r, 'entries')} entries, last hash ${text(r, 'lastHash')}.` };
  },
};

const rotate: CommandSpec = {
  name: 'admin-key rotate',
  summary: 'Replace the root admin key (data/admin-key); the old key stops working at once.',
  options: { 'show-key': { type: 'boolean', help: 'also print the new key (default: only the file it was written to)' } },
  async run(ctx) {
    const r = asObj(await ctx.client.post('/admin/root-key/rotate', undefined));
    const show = flag(ctx.opts, 'show-key');
    const json = show ? r : { path: r.path, notice: r.notice };
    return {
      json,
      human: `The root admin key was replaced; the new key is in ${text(r, 'path')} on the server (mode 0600).${show ? `\nnew key: ${text(r, 'key')}` : ''}`,
    };
  },
};

const demoKey: CommandSpec = {
  name: 'demo-key',
  summary: "Print the demo account's API key from the data folder (data/demo-key).",
  options: {},
  async run(ctx) {
    const dir = str(ctx.opts, 'data-dir') ?? ctx.env.TOKENGRID_DATA_DIR ?? 'data';
    const file = join(isAbsolute(dir) ? dir : join(ctx.cwd, dir), 'demo-key');
    let key: string;
    try {
      key = readFileSync(file, 'utf8').trim();
    } catch (e) {
      const why =
        (e as { code?: string }).code === 'ENOENT' ? 'not found (the demo account is made on the first start of a new data folder)' : (e as Error).message;
      throw new CliError(`no demo key: ${file}: ${why}`);
    }
    return { json: { key, path: file }, human: key };
  },
};

export const securityCommands: CommandSpec[] = [audit, auditVerify, rotate, demoKey];
