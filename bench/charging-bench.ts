/**
 * The charging engine alone: reserve + settle pairs per second on the embedded store (SQLite file, WAL,
 * synchronous=NORMAL, as the app opens it), the rate table built from bench/bench-config.yaml exactly as
 * the app builds it. Sequential pairs (better-sqlite3 is synchronous: one transaction at a time anyway),
 * each pair timed with process.hrtime. Two cases: one account with one big plan bucket, and 100 accounts
 * used round-robin.
 *
 *   node --import tsx bench/charging-bench.ts --seconds 3 [--accounts 1,100]
 * prints one JSON line {"ready":true,"results":[...]}.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createIdGenerator, cryptoRandom, systemClock } from '../src/core/index.ts';
import { createChargingEngine, defaultChargingConfig } from '../src/charging/index.ts';
import { loadConfigFile, resolveConfig } from '../src/config/index.ts';
import { zeroUsage } from '../src/wire/index.ts';
import { openSqlite } from '../src/store/sqlite/db.ts';
import { openSqliteChargingStore } from '../src/store/sqlite/charging-store.ts';
import { rateTableFromCatalog } from '../src/app.ts';
import { announce } from './lib/child-ipc.ts';
import { summarize } from './lib/stats.ts';
import { arg } from './lib/args.ts';

const MODEL = 'deepseek-v3.2';

async function main(): Promise<void> {
  const seconds = Number(arg('seconds', '3'));
  const cases: { accounts: number; db: 'file' | 'memory'; concurrency: number }[] = arg('accounts', '1,100')
    .split(',')
    .map((n) => ({ accounts: Number(n), db: 'file', concurrency: 1 }));
  // 64 pairs in flight, as under the throughput load: what a store that groups commits gains.
  cases.push({ accounts: 1, db: 'file', concurrency: 64 });
  if (arg('memory-case', 'true') === 'true') cases.push({ accounts: 1, db: 'memory', concurrency: 1 });
  const dir = mkdtempSync(join(tmpdir(), 'tokengrid-charging-bench-'));
  const fileDb = openSqlite(join(dir, 'tokengrid.db'), { exclusive: true }); // as the gateway opens it
  const memDb = openSqlite(':memory:');
  try {
    const config = resolveConfig(loadConfigFile(new URL('./bench-config.yaml', import.meta.url).pathname), {}, { dataDir: dir });
    const rates = rateTableFromCatalog(config.catalog, 400_000);
    const ids = createIdGenerator(systemClock, cryptoRandom);
    const engine = (db: typeof fileDb) =>
      createChargingEngine({ store: openSqliteChargingStore(db), clock: systemClock, ids, rates: () => rates, config: defaultChargingConfig });
    const engines = { file: engine(fileDb), memory: engine(memDb) };
    const results = [];
    for (const c of cases) {
      const n = c.accounts;
      const charging = engines[c.db];
      const accounts: string[] = [];
      for (let i = 0; i < n; i++) {
        const accountId = ids.next('acct');
        const now = systemClock.nowMs();
        const g = await charging.grantBucket({
          accountId,
          unit: 'tokens',
          amount: 1e15,
          kind: 'plan_allowance',
          effectiveAtMs: now,
          expiresAtMs: now + 86_400_000,
          sourceRef: 'bench-plan',
        });
        if (!g.ok) throw new Error(g.message);
        accounts.push(accountId);
      }
      let reserveUs = 0;
      let settleUs = 0;
      const pair = async (k: number): Promise<void> => {
        const accountId = accounts[k % n]!;
        const requestId = ids.next('req');
        const a = process.hrtime.bigint();
        const r = await charging.reserve({
          requestId,
          accountId,
          memberId: null,
          keyId: 'key_bench',
          model: MODEL,
          tokensInputEstimate: 40,
          tokensOutputMax: 256,
          stream: false,
        });
        if (!r.ok) throw new Error(`reserve refused: ${r.code}`);
        const b = process.hrtime.bigint();
        await charging.settle({
          reservationId: r.value.reservationId,
          requestId,
          usage: { ...zeroUsage(), tokensInput: 38, tokensOutput: 24 },
          usageEstimated: false,
          status: 'ok',
          provider: 'mock',
          upstreamModel: MODEL,
          region: 'local',
          deploymentId: `mock/${MODEL}@local`,
          latencyMs: 1,
          ttftMs: null,
        });
        reserveUs += Number(b - a) / 1000;
        settleUs += Number(process.hrtime.bigint() - b) / 1000;
      };
      for (let k = 0; k < 300; k++) await pair(k); // warm-up: JIT, statement cache, page cache
      reserveUs = 0;
      settleUs = 0;
      const samplesUs: number[] = [];
      const deadline = performance.now() + seconds * 1000;
      const t0 = performance.now();
      let k = 0;
      const worker = async (): Promise<void> => {
        while (performance.now() < deadline) {
          const a = process.hrtime.bigint();
          await pair(k++);
          samplesUs.push(Number(process.hrtime.bigint() - a) / 1000);
        }
      };
      await Promise.all(Array.from({ length: c.concurrency }, worker));
      const wallS = (performance.now() - t0) / 1000;
      const s = summarize(samplesUs);
      results.push({
        accounts: n,
        db: c.db,
        concurrency: c.concurrency,
        pairs: k,
        seconds: wallS,
        pairsPerSec: k / wallS,
        pairP50Us: s.p50,
        pairP99Us: s.p99,
        reserveMeanUs: reserveUs / k,
        settleMeanUs: settleUs / k,
      });
    }
    announce({ results, sqliteVersion: (fileDb.prepare('select sqlite_version() as v').get() as { v: string }).v });
  } finally {
    fileDb.close();
    memDb.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
