/**
 * The charging engine on PostgreSQL: reserve + settle pairs through the PostgreSQL ChargingStore (holds in the
 * database, one advisory lock per account, one round trip per operation in the steady state), on the server TOKENGRID_TEST_DATABASE_URL
 * names (default the local `test` database), in a schema of its own that is dropped at the end. Cases: 1 or 100
 * accounts, 1 or 16 pairs in flight (a pool of 16 connections). Reports pairs/s, pair latency percentiles and the
 * round trips per operation counted by the store.
 *
 *   node --import tsx bench/pg-charging-bench.ts --seconds 2
 * prints one JSON line {"ready":true,"results":[...]}.
 */
import { createIdGenerator, cryptoRandom, systemClock } from '../src/core/index.ts';
import { createChargingEngine, defaultChargingConfig } from '../src/charging/index.ts';
import { loadConfigFile, resolveConfig } from '../src/config/index.ts';
import { zeroUsage } from '../src/wire/index.ts';
import { openPostgresEngine } from '../src/store/postgres/engine.ts';
import { PG_TEST_URL, testSchemaName } from '../src/store/postgres/test-support.ts';
import { rateTableFromCatalog } from '../src/app.ts';
import { announce } from './lib/child-ipc.ts';
import { summarize } from './lib/stats.ts';
import { arg } from './lib/args.ts';

const MODEL = 'deepseek-v3.2';

async function main(): Promise<void> {
  const seconds = Number(arg('seconds', '2'));
  const cases = [
    { accounts: 1, concurrency: 1 },
    { accounts: 100, concurrency: 1 },
    { accounts: 1, concurrency: 16 },
    { accounts: 100, concurrency: 16 },
  ];
  const schema = testSchemaName();
  const pg = await openPostgresEngine(PG_TEST_URL, { schema, max: 16, changeFeed: false });
  try {
    const config = resolveConfig(loadConfigFile(new URL('./bench-config.yaml', import.meta.url).pathname), {}, { dataDir: '/tmp' });
    const rates = rateTableFromCatalog(config.catalog, 400_000);
    const ids = createIdGenerator(systemClock, cryptoRandom);
    const charging = createChargingEngine({ store: pg.charging, clock: systemClock, ids, rates: () => rates, config: defaultChargingConfig });
    const results = [];
    for (const c of cases) {
      const accounts: string[] = [];
      for (let i = 0; i < c.accounts; i++) {
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
      const pair = async (k: number): Promise<void> => {
        const accountId = accounts[k % accounts.length]!;
        const requestId = ids.next('req');
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
      };
      for (let k = 0; k < 100; k++) await pair(k); // warm-up
      const before = { ...pg.charging.stats };
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
      const ops = pg.charging.stats.ops - before.ops;
      results.push({
        ...c,
        pairs: k,
        pairsPerSec: Math.round(k / wallS),
        pairP50Us: Math.round(s.p50),
        pairP99Us: Math.round(s.p99),
        opsPerPair: ops / k,
        roundTripsPerOp: (pg.charging.stats.roundTrips - before.roundTrips) / ops,
      });
    }
    const v = await pg.db.query<{ v: string }>('SHOW server_version');
    announce({ results, postgres: v.rows[0]?.v });
  } finally {
    await pg.db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
    await pg.close();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
