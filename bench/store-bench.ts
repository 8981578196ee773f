/**
 * `npm run bench -- --store postgres [--quick] [--seconds N] [--concurrency N] [--accounts N] [--out FILE]`
 * (issue 15 item 5): the charging engine's reserve + settle pairs on the embedded store (SQLite file, as the app
 * opens it) and on PostgreSQL with 1 and 2 nodes, in the same run, against one database server.
 *
 * Every case runs in its own process (a "node": one charging engine, one store; on PostgreSQL its own pool of
 * `--pool` connections), so 2 nodes are two processes sharing one account set, as two gateways would. Per case:
 * - latency: sequential pairs (concurrency 1), median and p99 of one reserve + settle; "added latency" is the
 *   PostgreSQL figure minus the embedded one;
 * - throughput: `--concurrency` pairs in flight per node over `--accounts` accounts round-robin (pairs/s, summed
 *   over the nodes), and the same with every pair on ONE account (the per-account lock serializes it: the ceiling
 *   of a single hot account);
 * - round trips: every query sent to the server is counted by wrapping pg's Client#query (one call = one round
 *   trip; a multi-statement text is one), per reserve and per settle, from the sequential pairs.
 * The orchestrator creates a fresh schema `tg_bench_<random>` (dropped at the end), applies the migrations and
 * grants the accounts once; the nodes start measuring together. Results: bench/results/store-<store>.json.
 *
 * Database: TOKENGRID_BENCH_DATABASE_URL, else TOKENGRID_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/test.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createIdGenerator, cryptoRandom, systemClock } from '../src/core/index.ts';
import { createChargingEngine, defaultChargingConfig, type ChargingService } from '../src/charging/index.ts';
import { loadConfigFile, resolveConfig } from '../src/config/index.ts';
import { zeroUsage } from '../src/wire/index.ts';
import { openSqlite } from '../src/store/sqlite/db.ts';
import { openSqliteChargingStore } from '../src/store/sqlite/charging-store.ts';
import { connectPostgres, redactUrl } from '../src/store/postgres/db.ts';
import { migrate } from '../src/store/postgres/migrations.ts';
import { openPostgresChargingStore } from '../src/store/postgres/charging-store.ts';
import { rateTableFromCatalog } from '../src/app.ts';
import { connectRedis } from '../src/store/redis/connect.ts';
import { RedisLimiter } from '../src/store/redis/limiter.ts';
import { summarize } from './lib/stats.ts';

const MODEL = 'deepseek-v3.2';
const ROOT = fileURLToPath(new URL('../', import.meta.url));

// ---- one node (a child process) ----

interface NodeJob {
  engine: 'sqlite' | 'postgres';
  url?: string;
  schema?: string;
  pool: number;
  /** Accounts to use; for sqlite the node grants its own (this many). */
  accounts: string[] | number;
  latencyPairs: number;
  seconds: number;
  concurrency: number;
  /** Pairs of the throughput phase all on the first account. */
  hotAccount: boolean;
  warmup: number;
}

interface NodeResult {
  latency: { pairs: number; p50Us: number; p99Us: number; reserveP50Us: number; settleP50Us: number };
  roundTrips: { perReserve: number; perSettle: number; storeOps: number } | null;
  throughput: { pairs: number; seconds: number; pairsPerSec: number; p50Us: number; p99Us: number };
}

let queries = 0;
function countQueries(): void {
  const proto = pg.Client.prototype as unknown as { query: (...a: unknown[]) => unknown };
  const orig = proto.query;
  proto.query = function (this: unknown, ...a: unknown[]) {
    queries++;
    return orig.apply(this, a);
  };
}

async function grant(charging: ChargingService, accountId: string): Promise<void> {
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
}

function rates(dataDir: string) {
  const config = resolveConfig(loadConfigFile(new URL('./bench-config.yaml', import.meta.url).pathname), {}, { dataDir });
  return rateTableFromCatalog(config.catalog, 400_000);
}

async function runNode(job: NodeJob, waitGo: () => Promise<void>): Promise<NodeResult> {
  countQueries();
  const ids = createIdGenerator(systemClock, cryptoRandom);
  const dir = mkdtempSync(join(os.tmpdir(), 'tokengrid-store-bench-'));
  const table = rates(dir);
  let close: () => Promise<void>;
  let charging: ChargingService;
  let storeOps = (): number => 0;
  if (job.engine === 'sqlite') {
    const db = openSqlite(join(dir, 'tokengrid.db'), { exclusive: true });
    charging = createChargingEngine({ store: openSqliteChargingStore(db), clock: systemClock, ids, rates: () => table, config: defaultChargingConfig });
    close = async () => {
      db.close();
    };
  } else {
    const db = await connectPostgres(job.url!, { schema: job.schema!, max: job.pool });
    const store = openPostgresChargingStore(db);
    storeOps = () => store.stats.ops;
    charging = createChargingEngine({ store, clock: systemClock, ids, rates: () => table, config: defaultChargingConfig });
    close = () => db.close();
  }
  try {
    let accounts: string[];
    if (typeof job.accounts === 'number') {
      accounts = [];
      for (let i = 0; i < job.accounts; i++) {
        const a = ids.next('acct');
        await grant(charging, a);
        accounts.push(a);
      }
    } else accounts = job.accounts;

    let reserveUs: number[] = [];
    let settleUs: number[] = [];
    let reserveQ = 0;
    let settleQ = 0;
    const pair = async (accountId: string): Promise<void> => {
      const requestId = ids.next('req');
      const q0 = queries;
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
      const q1 = queries;
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
      reserveUs.push(Number(b - a) / 1000);
      settleUs.push(Number(process.hrtime.bigint() - b) / 1000);
      reserveQ += q1 - q0;
      settleQ += queries - q1;
    };
    for (let k = 0; k < job.warmup; k++) await pair(accounts[k % accounts.length]!);
    await waitGo();

    // Latency and round trips: sequential pairs (nothing else in flight in this node, so the query deltas are exact).
    reserveUs = [];
    settleUs = [];
    reserveQ = 0;
    settleQ = 0;
    const ops0 = storeOps();
    const pairUs: number[] = [];
    for (let k = 0; k < job.latencyPairs; k++) {
      const t = process.hrtime.bigint();
      await pair(accounts[k % accounts.length]!);
      pairUs.push(Number(process.hrtime.bigint() - t) / 1000);
    }
    const lat = summarize(pairUs);
    const latency = {
      pairs: job.latencyPairs,
      p50Us: lat.p50,
      p99Us: lat.p99,
      reserveP50Us: summarize(reserveUs).p50,
      settleP50Us: summarize(settleUs).p50,
    };
    const roundTrips =
      job.engine === 'postgres'
        ? { perReserve: reserveQ / job.latencyPairs, perSettle: settleQ / job.latencyPairs, storeOps: (storeOps() - ops0) / job.latencyPairs }
        : null;

    // Throughput: `concurrency` pairs in flight.
    const samples: number[] = [];
    let k = 0;
    const t0 = performance.now();
    const deadline = t0 + job.seconds * 1000;
    const worker = async (): Promise<void> => {
      while (performance.now() < deadline) {
        const account = job.hotAccount ? accounts[0]! : accounts[k % accounts.length]!;
        k++;
        const t = process.hrtime.bigint();
        await pair(account);
        samples.push(Number(process.hrtime.bigint() - t) / 1000);
      }
    };
    await Promise.all(Array.from({ length: job.concurrency }, worker));
    const seconds = (performance.now() - t0) / 1000;
    const s = summarize(samples);
    return { latency, roundTrips, throughput: { pairs: samples.length, seconds, pairsPerSec: samples.length / seconds, p50Us: s.p50, p99Us: s.p99 } };
  } finally {
    await close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function nodeMain(): void {
  let go: () => void = () => {};
  const goP = new Promise<void>((r) => {
    go = r;
  });
  process.on('message', (m: { type: string; job?: NodeJob }) => {
    if (m.type === 'go') go();
    if (m.type === 'job') {
      runNode(m.job!, async () => {
        process.send!({ type: 'ready' });
        await goP;
      }).then(
        (result) => process.send!({ type: 'result', result }, () => process.exit(0)),
        (e: unknown) => {
          console.error(e);
          process.exit(1);
        },
      );
    }
  });
}

// ---- the orchestrator ----

interface Child {
  proc: ChildProcess;
  ready: Promise<void>;
  result: Promise<NodeResult>;
}

function startNode(job: NodeJob): Child {
  const proc = fork(fileURLToPath(import.meta.url), ['--node'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let readyRes: () => void = () => {};
  const ready = new Promise<void>((r) => {
    readyRes = r;
  });
  const result = new Promise<NodeResult>((resolve, reject) => {
    proc.on('message', (m: { type: string; result?: NodeResult }) => {
      if (m.type === 'ready') readyRes();
      if (m.type === 'result') resolve(m.result!);
    });
    proc.on('exit', (code) => {
      if (code !== 0) reject(new Error(`bench node exited with ${code}`));
    });
  });
  result.catch(() => readyRes());
  proc.send({ type: 'job', job });
  return { proc, ready, result };
}

/** Runs `n` nodes with the same job; they start measuring together. */
async function runNodes(n: number, job: NodeJob): Promise<NodeResult[]> {
  const nodes = Array.from({ length: n }, () => startNode(job));
  await Promise.all(nodes.map((x) => x.ready));
  for (const x of nodes) x.proc.send({ type: 'go' });
  return Promise.all(nodes.map((x) => x.result));
}

interface CaseResult {
  name: string;
  engine: 'sqlite' | 'postgres';
  nodes: number;
  accounts: number;
  concurrencyPerNode: number;
  pairsPerSec: number;
  latencyP50Us: number;
  latencyP99Us: number;
  reserveP50Us: number;
  settleP50Us: number;
  roundTripsPerReserve: number | null;
  roundTripsPerSettle: number | null;
  throughputP50Us: number;
  throughputP99Us: number;
}

function combine(name: string, job: NodeJob, accounts: number, rs: NodeResult[]): CaseResult {
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
  return {
    name,
    engine: job.engine,
    nodes: rs.length,
    accounts: job.hotAccount ? 1 : accounts,
    concurrencyPerNode: job.concurrency,
    pairsPerSec: rs.reduce((s, r) => s + r.throughput.pairsPerSec, 0),
    latencyP50Us: med(rs.map((r) => r.latency.p50Us)),
    latencyP99Us: Math.max(...rs.map((r) => r.latency.p99Us)),
    reserveP50Us: med(rs.map((r) => r.latency.reserveP50Us)),
    settleP50Us: med(rs.map((r) => r.latency.settleP50Us)),
    roundTripsPerReserve: rs[0]!.roundTrips?.perReserve ?? null,
    roundTripsPerSettle: rs[0]!.roundTrips?.perSettle ?? null,
    throughputP50Us: med(rs.map((r) => r.throughput.p50Us)),
    throughputP99Us: Math.max(...rs.map((r) => r.throughput.p99Us)),
  };
}

interface RedisResult {
  url: string;
  admits: number;
  commandsPerAdmit: number;
  commandsPerDone: number;
  admitP50Us: number;
  admitP99Us: number;
}

/**
 * The shared limiter on Redis (when a key or plan has limits; without any, Redis is never asked): sequential
 * admit + done over 100 accounts, with every limit set (requests, tokens, concurrency), commands counted at
 * ioredis's sendCommand. Its own random key prefix, deleted at the end.
 */
async function redisLimiterCase(url: string, n: number): Promise<RedisResult> {
  const redis = await connectRedis(url, { name: 'tokengrid:bench' });
  const prefix = `tgbench${randomBytes(4).toString('hex')}:`;
  let commands = 0;
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = ((...a: Parameters<typeof send>) => {
    commands++;
    return send(...a);
  }) as typeof redis.sendCommand;
  const limiter = new RedisLimiter({ redis, clock: systemClock, prefix, renew: false });
  const limits = { requestsPerMinute: 1_000_000_000, tokensPerMinute: 1_000_000_000_000, concurrentRequests: 1_000_000 };
  try {
    const run = async (count: number) => {
      const admitUs: number[] = [];
      let admitC = 0;
      let doneC = 0;
      for (let i = 0; i < count; i++) {
        const account = `acct_bench${i % 100}`;
        const req = `req_bench${i}`;
        const c0 = commands;
        const t = process.hrtime.bigint();
        const r = await limiter.admit(req, `key_${account}`, limits, account, limits, 300, systemClock.nowMs());
        admitUs.push(Number(process.hrtime.bigint() - t) / 1000);
        if (!r.ok) throw new Error(`limiter refused: ${r.message}`);
        const c1 = commands;
        limiter.done(req, `key_${account}`, account, 300, 62, systemClock.nowMs());
        admitC += c1 - c0;
        doneC += commands - c1;
      }
      return { admitUs, admitC, doneC };
    };
    await run(100); // warm-up: the scripts are loaded (EVAL once, EVALSHA after)
    const m = await run(n);
    const s = summarize(m.admitUs);
    return { url: redactUrl(url), admits: n, commandsPerAdmit: m.admitC / n, commandsPerDone: m.doneC / n, admitP50Us: s.p50, admitP99Us: s.p99 };
  } finally {
    limiter.close();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
    redis.disconnect();
  }
}

interface Baseline {
  selectP50Ms: number;
  commitP50Ms: number;
  commitP99Ms: number;
  synchronousCommit: string;
}

/** What the server costs before TokenGrid's work: one round trip, and one durable commit (the WAL flush). */
async function serverBaseline(db: Awaited<ReturnType<typeof connectPostgres>>, n: number): Promise<Baseline> {
  const c = await db.pool.connect();
  try {
    const time = async (text: string): Promise<number[]> => {
      const xs: number[] = [];
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        await c.query(text);
        xs.push(performance.now() - t);
      }
      return xs;
    };
    await c.query('CREATE TABLE bench_commit (x int)');
    const select = summarize(await time('SELECT 1'));
    const commit = summarize(await time('BEGIN; INSERT INTO bench_commit VALUES (1); COMMIT'));
    await c.query('DROP TABLE bench_commit');
    const sc = (await c.query<{ v: string }>("SELECT current_setting('synchronous_commit') AS v")).rows[0]!.v;
    return { selectP50Ms: select.p50, commitP50Ms: commit.p50, commitP99Ms: commit.p99, synchronousCommit: sc };
  } finally {
    c.release();
  }
}

function arg(argv: string[], name: string, fallback: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
}

export async function runStoreBench(argv: string[]): Promise<void> {
  const store = arg(argv, 'store', 'postgres');
  if (store !== 'postgres') {
    console.error(`--store ${store}: only postgres is measured against the embedded store (sqlite is always in the run)`);
    process.exit(2);
  }
  const quick = argv.includes('--quick');
  const seconds = Number(arg(argv, 'seconds', quick ? '4' : '10'));
  const concurrency = Number(arg(argv, 'concurrency', '16'));
  const accountsN = Number(arg(argv, 'accounts', '100'));
  const latencyPairs = Number(arg(argv, 'latency-pairs', quick ? '400' : '1000'));
  const pool = Number(arg(argv, 'pool', '10'));
  const out = arg(argv, 'out', join(ROOT, `bench/results/store-${store}.json`));
  const url = process.env.TOKENGRID_BENCH_DATABASE_URL ?? process.env.TOKENGRID_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const t0 = performance.now();
  const log = (m: string): void => {
    process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${m}\n`);
  };

  const schema = `tg_bench_${randomBytes(5).toString('hex')}`;
  const admin = await connectPostgres(url, { schema, max: 4 });
  const results: CaseResult[] = [];
  let redisResult: RedisResult | null = null;
  let serverVersion = '';
  let baseline: Baseline = { selectP50Ms: NaN, commitP50Ms: NaN, commitP99Ms: NaN, synchronousCommit: '?' };
  try {
    await migrate(admin);
    serverVersion = (await admin.query<{ v: string }>('SELECT current_setting($1) AS v', ['server_version'])).rows[0]!.v;
    baseline = await serverBaseline(admin, quick ? 200 : 500);
    log(
      `server baseline: SELECT 1 p50 ${baseline.selectP50Ms.toFixed(3)} ms; one-row INSERT + COMMIT p50 ${baseline.commitP50Ms.toFixed(3)} ms (synchronous_commit ${baseline.synchronousCommit})`,
    );
    log(`PostgreSQL ${serverVersion} at ${redactUrl(url)}, schema ${schema}; ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'})`);
    const ids = createIdGenerator(systemClock, cryptoRandom);
    const dir = mkdtempSync(join(os.tmpdir(), 'tokengrid-store-bench-'));
    const table = rates(dir);
    rmSync(dir, { recursive: true, force: true });
    const setup = createChargingEngine({ store: openPostgresChargingStore(admin), clock: systemClock, ids, rates: () => table, config: defaultChargingConfig });
    const accounts: string[] = [];
    for (let i = 0; i < accountsN; i++) {
      const a = ids.next('acct');
      await grant(setup, a);
      accounts.push(a);
    }
    const base = { pool, latencyPairs, seconds, concurrency, warmup: quick ? 200 : 500 };
    const cases: [string, number, NodeJob][] = [
      ['embedded (SQLite)', 1, { ...base, engine: 'sqlite', accounts: accountsN, hotAccount: false }],
      ['PostgreSQL, 1 node', 1, { ...base, engine: 'postgres', url, schema, accounts, hotAccount: false }],
      ['PostgreSQL, 2 nodes', 2, { ...base, engine: 'postgres', url, schema, accounts, hotAccount: false }],
      [
        'PostgreSQL, 2 nodes, one hot account',
        2,
        { ...base, engine: 'postgres', url, schema, accounts, hotAccount: true, latencyPairs: Math.min(latencyPairs, 100) },
      ],
    ];
    for (const [name, n, job] of cases) {
      log(`${name}: warm-up ${job.warmup} pairs, ${job.latencyPairs} sequential pairs, then ${seconds} s at ${concurrency} in flight per node`);
      const r = combine(name, job, accountsN, await runNodes(n, job));
      results.push(r);
      log(
        `  ${r.pairsPerSec.toFixed(0)} pairs/s; one pair p50 ${(r.latencyP50Us / 1000).toFixed(2)} ms, p99 ${(r.latencyP99Us / 1000).toFixed(2)} ms` +
          (r.roundTripsPerReserve === null
            ? ''
            : `; round trips per reserve ${r.roundTripsPerReserve.toFixed(2)}, per settle ${r.roundTripsPerSettle!.toFixed(2)}`),
      );
    }
    const redisUrl = process.env.TOKENGRID_BENCH_REDIS_URL ?? process.env.TOKENGRID_REDIS_URL ?? 'redis://127.0.0.1:6379';
    try {
      redisResult = await redisLimiterCase(redisUrl, quick ? 1000 : 5000);
      log(
        `Redis limiter: ${redisResult.commandsPerAdmit.toFixed(2)} command(s) per admit, ${redisResult.commandsPerDone.toFixed(2)} per done; admit p50 ${(redisResult.admitP50Us / 1000).toFixed(2)} ms, p99 ${(redisResult.admitP99Us / 1000).toFixed(2)} ms`,
      );
    } catch (e) {
      log(`Redis limiter case skipped: ${e instanceof Error ? e.message : String(e)} (${redactUrl(redisUrl)})`);
    }
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
    await admin.close();
  }

  const embedded = results[0]!;
  const added = results.slice(1).map((r) => ({
    case: r.name,
    addedP50Ms: (r.latencyP50Us - embedded.latencyP50Us) / 1000,
    addedP99Ms: (r.latencyP99Us - embedded.latencyP99Us) / 1000,
    throughputVsEmbedded: r.pairsPerSec / embedded.pairsPerSec,
  }));
  const json = {
    bench: 'store',
    command: `npm run bench -- --store ${store}${quick ? ' --quick' : ''}`,
    at: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? null, loadavg: os.loadavg() },
    postgres: { version: serverVersion, url: redactUrl(url), baseline },
    settings: { seconds, concurrencyPerNode: concurrency, accounts: accountsN, latencyPairs, poolPerNode: pool },
    results,
    addedLatency: added,
    redisLimiter: redisResult,
  };
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(json, null, 2)}\n`);

  const rows = results.map((r) => [
    r.name,
    String(r.accounts),
    r.pairsPerSec.toFixed(0),
    (r.latencyP50Us / 1000).toFixed(2),
    (r.latencyP99Us / 1000).toFixed(2),
    r.roundTripsPerReserve === null ? '-' : r.roundTripsPerReserve.toFixed(2),
    r.roundTripsPerSettle === null ? '-' : r.roundTripsPerSettle.toFixed(2),
  ]);
  const head = ['case', 'accounts', 'pairs/s', 'pair p50 ms', 'pair p99 ms', 'RT/reserve', 'RT/settle'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ');
  console.log(line(head));
  for (const r of rows) console.log(line(r));
  for (const a of added) {
    console.log(
      `${a.case}: added latency per request p50 ${a.addedP50Ms.toFixed(2)} ms, p99 ${a.addedP99Ms.toFixed(2)} ms; throughput ${(100 * a.throughputVsEmbedded).toFixed(0)}% of embedded`,
    );
  }
  if (redisResult !== null) {
    console.log(
      `Redis (shared limits, only when a key or plan has limits): ${redisResult.commandsPerAdmit.toFixed(2)} round trip(s) per admit, ${redisResult.commandsPerDone.toFixed(2)} per done; admit p50 ${(redisResult.admitP50Us / 1000).toFixed(2)} ms, p99 ${(redisResult.admitP99Us / 1000).toFixed(2)} ms`,
    );
  }
  console.log(`results: ${out}`);
}

if (process.argv.includes('--node')) nodeMain();
else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  runStoreBench(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
