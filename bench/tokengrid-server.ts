/**
 * TokenGrid as the benchmark runs it: createApp with bench/bench-config.yaml, a fresh temp data folder
 * (SQLite charging store, WAL), the emulator child process as the 'mock' upstream, then, through the
 * admin API, one account, one API key and a plan allowance far larger than the run can spend, so every
 * request is authenticated, routed, reserved, settled and recorded, and none is refused.
 *
 *   node --import tsx bench/tokengrid-server.ts --emulator http://127.0.0.1:PORT [--port 0] [--log-level warn]
 * prints one JSON line {"ready":true,"url":...,"key":...,"accountId":...,"pid":...}.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createApp } from '../src/app.ts';
import { announce, serveControl } from './lib/child-ipc.ts';
import { arg } from './lib/args.ts';

/** 1e15 coins: the admin API's upper bound; a full run spends well under 1e9. */
const ALLOWANCE_COINS = 1e15;

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tokengrid-bench-'));
  const app = await createApp({
    configPath: new URL('./bench-config.yaml', import.meta.url).pathname,
    dataDir,
    port: Number(arg('port', '0')),
    env: {},
    emulatorUrl: arg('emulator'),
    bootstrapDemo: false,
    logger: pino({ level: arg('log-level', 'warn') }),
  });
  const { url } = await app.listen();
  const adminKey = app.firstStart?.adminKey;
  if (!adminKey) throw new Error('expected a fresh data folder with a new admin key');

  const admin = async (path: string, body: unknown): Promise<any> => {
    const res = await fetch(url + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`admin ${path}: ${res.status} ${text}`);
    return JSON.parse(text);
  };
  const account = await admin('/admin/accounts', { name: 'bench', kind: 'individual' });
  const key = await admin(`/admin/accounts/${account.id}/keys`, { name: 'bench' });
  const expiresAt = new Date(Date.now() + 7 * 86_400_000).toISOString();
  await admin(`/admin/accounts/${account.id}/grants`, { unit: 'tokens', amount: ALLOWANCE_COINS, kind: 'plan_allowance', expiresAt, reference: 'bench-plan' });
  await app.refreshKeys();

  serveControl({
    handlers: {
      // Proof that charging ran: open holds must be 0 after the load, one usage record per request.
      async usage() {
        const buckets = await app.charging.listBuckets(account.id);
        const records = await app.charging.listUsage(account.id, { fromMs: 0, toMs: Date.now() + 60_000 });
        return {
          usageRecords: records.length,
          coinsUsed: buckets.reduce((s, b) => s + b.used, 0),
          coinsHeld: buckets.reduce((s, b) => s + b.reserved, 0),
        };
      },
    },
    async stop() {
      await app.close(1000);
      rmSync(dataDir, { recursive: true, force: true });
    },
  });
  announce({ url, key: key.key, accountId: account.id });
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
