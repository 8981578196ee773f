/**
 * `tokengrid migrate`: the one offline command of the `tokengrid` binary (bin/tokengrid.js sends it here, every
 * other command goes to the CLI over the admin API). It opens the data folder and the database itself.
 *
 *   tokengrid migrate --from <data-dir> --to <postgres-url>   copy a single-node install (once, into an empty database)
 *   tokengrid migrate --to <postgres-url>                     apply this build's PostgreSQL migrations only (an upgrade)
 *
 * Progress goes to stderr; the result to stdout (plain lines, or one JSON object with --json). Exit codes as the
 * CLI's: 0 done, 1 refused or failed (the message says why and what to do), 2 bad command line.
 */
import { parseArgs } from 'node:util';
import { connectPostgres, redactUrl } from '../store/postgres/db.ts';
import { splitSchema } from '../store/postgres/engine.ts';
import { migrate as migratePostgres, schemaVersion } from '../store/postgres/migrations.ts';
import { MigrateRefused, type MigrateProgress, type MigrateReport, migrateToPostgres } from './migrate.ts';

export interface MigrateIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Record<string, string | undefined>;
  nowMs(): number;
}

export const MIGRATE_HELP = `Usage: tokengrid migrate --from <data-dir> --to <postgres-url> [options]

Copies a single-node install (the SQLite data folder) into an empty PostgreSQL database, once: applies the
PostgreSQL migrations, copies every table in one transaction with progress per table, verifies (row counts,
balances per account, usage and ledger totals, the audit hash chain) and commits only if all agree.
Stop the server on the data folder first. A database that already holds TokenGrid data is refused.
Without --from it only applies this build's PostgreSQL migrations (an upgrade of a running cluster's schema).

Options:
  --from <dir>      the data folder of the install (holds tokengrid.db)
  --to <url>        postgres://user:password@host:5432/db[?schema=name] (default: TOKENGRID_DATABASE_URL)
  --schema <name>   PostgreSQL schema to use (default: the URL's ?schema=, else public)
  --json            print one JSON object (the report) on stdout
  -h, --help        this text

Exit codes: 0 done; 1 refused or failed (nothing committed); 2 bad command line.`;

export async function runMigrateCommand(argv: string[], io: MigrateIo): Promise<number> {
  let values: { from?: string; to?: string; schema?: string; json?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        from: { type: 'string' },
        to: { type: 'string' },
        schema: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
      strict: true,
    }));
  } catch (e) {
    io.stderr(`tokengrid migrate: ${(e as Error).message}\n\n${MIGRATE_HELP}\n`);
    return 2;
  }
  if (values.help === true) {
    io.stdout(`${MIGRATE_HELP}\n`);
    return 0;
  }
  const url = values.to ?? io.env.TOKENGRID_DATABASE_URL;
  if (url === undefined || url === '') {
    io.stderr('tokengrid migrate: --to <postgres-url> is required (or set TOKENGRID_DATABASE_URL).\n');
    return 2;
  }
  if (!/^postgres(ql)?:\/\//.test(url)) {
    io.stderr(`tokengrid migrate: --to must be a postgres:// or postgresql:// URL, got ${redactUrl(url)}.\n`);
    return 2;
  }
  const json = values.json === true;
  try {
    if (values.from === undefined) return await schemaOnly(url, values.schema, json, io);
    const report = await migrateToPostgres({
      dataDir: values.from,
      url,
      schema: values.schema,
      nowMs: io.nowMs(),
      onProgress: (p) => io.stderr(`${progressLine(p)}\n`),
    });
    io.stdout(json ? `${JSON.stringify(report)}\n` : `${summary(report)}\n`);
    return 0;
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    io.stderr(`tokengrid migrate: ${e instanceof MigrateRefused ? '' : 'failed, nothing was committed: '}${message}\n`);
    return 1;
  }
}

async function schemaOnly(url: string, schema: string | undefined, json: boolean, io: MigrateIo): Promise<number> {
  const split = splitSchema(url);
  const db = await connectPostgres(split.url, { schema: schema ?? split.schema ?? 'public', max: 1 });
  try {
    const before = await schemaVersion(db);
    const applied = await migratePostgres(db);
    const after = await schemaVersion(db);
    const out = { to: db.where, schema: db.schema, versionBefore: before, versionAfter: after, migrationsApplied: applied };
    io.stdout(
      json
        ? `${JSON.stringify(out)}\n`
        : `${db.where} (schema ${db.schema}): ${applied.length === 0 ? `already at migration ${after}` : `migrations ${applied.join(', ')} applied, now at ${after}`}\n`,
    );
    return 0;
  } finally {
    await db.close();
  }
}

function progressLine(p: MigrateProgress): string {
  if (p.phase === 'schema') return p.applied.length === 0 ? 'schema: already current' : `schema: applied migration(s) ${p.applied.join(', ')}`;
  if (p.phase === 'table') return `copy ${p.table}: ${p.copied}${p.total === null ? ' rows' : `/${p.total}`}`;
  return `verify ${p.check}: ${p.ok ? 'ok' : 'FAILED'} (${p.detail})`;
}

function summary(r: MigrateReport): string {
  const width = Math.max(...r.tables.map((t) => t.table.length));
  const lines = [
    `Copied ${r.from} into ${r.to} (schema ${r.schema}) in ${(r.durationMs / 1000).toFixed(1)} s.`,
    '',
    `${'table'.padEnd(width)}  ${'sqlite'.padStart(8)}  ${'postgres'.padStart(8)}`,
    ...r.tables.map(
      (t) =>
        `${t.table.padEnd(width)}  ${(t.source === null ? '-' : String(t.source)).padStart(8)}  ${String(t.target).padStart(8)}${t.note === undefined ? '' : `  ${t.note}`}`,
    ),
    '',
    ...r.checks.map((c) => `${c.ok ? 'ok' : 'FAILED'}  ${c.check}: ${c.detail}`),
  ];
  if (r.voidedHolds > 0) lines.push(`${r.voidedHolds} open hold(s) were voided: their balance is free again.`);
  lines.push('', 'Next: start the server with TOKENGRID_DATABASE_URL set to this database; keep the data folder (its admin-key file).');
  return lines.join('\n');
}
