/**
 * Many nodes (issue 15 item 4): three gateway processes on loopback sharing one PostgreSQL (system of record) and
 * one Redis (shared limits, change feed), one emulator upstream, one account with a small balance. Hundreds of
 * requests, streams included, spread over the nodes: no overspend, exactly one usage record per completed
 * response, no hold left open. Then faults under load: kill -9 of a node, Redis killed and restarted, PostgreSQL
 * restarted. The processes start once for the file; PostgreSQL and Redis are private instances on free ports
 * (cluster.ts), so their restarts never touch the shared servers.
 *
 * Run: node --import tsx --test test/multinode/multinode.test.ts (prints requests/s through the three nodes).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { Cluster, clusterUnavailable } from './cluster.ts';
import { envSchema } from '../../src/config/env.ts';
import { auditAccount } from '../../src/charging/index.ts';
import { openPostgresEngine, type PostgresEngine } from '../../src/store/postgres/engine.ts';

const missing = clusterUnavailable();
if (missing !== undefined && process.env.CI === 'true') throw new Error(`multi-node test needs ${missing}`);
const unavailable = 'TOKENGRID_DATABASE_URL' in envSchema.shape ? missing : 'the PostgreSQL engine (TOKENGRID_DATABASE_URL) is not wired into the app yet';

interface Outcome {
  node: number;
  status: number;
  /** The response was received whole (200 and, for a stream, `[DONE]`). */
  complete: boolean;
  requestId: string | null;
  code?: string;
}

async function chat(url: string, key: string, stream: boolean, model = 'deepseek-v3.2', node = 0): Promise<Outcome> {
  try {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'Say something about many nodes.' }] }),
    });
    const text = await res.text();
    const requestId = res.headers.get('x-request-id');
    if (res.status !== 200) {
      let code: string | undefined;
      try {
        code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
      } catch {
        /* not JSON */
      }
      return { node, status: res.status, complete: false, requestId, ...(code === undefined ? {} : { code }) };
    }
    const complete = stream ? text.trimEnd().endsWith('data: [DONE]') : (JSON.parse(text) as { choices?: unknown[] }).choices?.length === 1;
    return { node, status: 200, complete, requestId };
  } catch {
    return { node, status: 0, complete: false, requestId: null }; // connection refused or reset (a killed node)
  }
}

/**
 * `total` requests, `concurrency` at a time, round robin over the live nodes; every `streamEvery`-th is a stream.
 * `during(done)` is called after each completion (to inject a fault at a point of the load, not at a time).
 */
async function load(
  c: Cluster,
  key: string,
  o: { total: number; concurrency: number; streamEvery: number; model?: (i: number) => string; during?: (completed: number) => void },
): Promise<{ outcomes: Outcome[]; ms: number }> {
  const outcomes: Outcome[] = [];
  let next = 0;
  let completed = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < o.total) {
      const i = next++;
      const node = i % c.nodes.length;
      const stream = i % o.streamEvery === 0;
      const r = await chat(c.nodes[node]!.url, key, stream, o.model?.(i) ?? 'deepseek-v3.2', node);
      outcomes.push(r);
      if (r.complete) o.during?.(++completed);
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  return { outcomes, ms: performance.now() - t0 };
}

describe('three gateway nodes share one account', { skip: unavailable ?? false, timeout: 180_000 }, () => {
  const c = new Cluster();
  /** A pool (not one client), so the test's own queries survive the PostgreSQL restart. */
  let db: pg.Pool;
  let accountId = '';
  let key = '';
  let engine: PostgresEngine;
  /** Wallet money granted, in fen (a request costs at least 1 fen, so a few CNY run out within a few hundred). */
  let grantedMinor = 0;
  let topups = 0;

  const topUp = async (yuan: string): Promise<void> => {
    const r = await c.admin(0, 'POST', '/admin/orders/topup', { accountId, amount: yuan }, { 'idempotency-key': `mn-topup-${++topups}` });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    grantedMinor += Math.round(Number(yuan) * 100);
  };

  /** Usage records of the account by request id (from the shared database). */
  const records = async (): Promise<Map<string, number>> => {
    const r = await db.query<{ request_id: string; n: string }>(
      'SELECT request_id, COUNT(*) AS n FROM charging_usage_records WHERE account_id = $1 GROUP BY request_id',
      [accountId],
    );
    return new Map(r.rows.map((x) => [x.request_id, Number(x.n)]));
  };
  const openHolds = async (): Promise<number> =>
    Number((await db.query<{ n: string }>("SELECT COUNT(*) AS n FROM charging_reservations WHERE state = 'open'")).rows[0]!.n);
  const waitNoHolds = async (withinMs: number): Promise<number> => {
    const t0 = performance.now();
    while (performance.now() - t0 < withinMs) {
      if ((await openHolds()) === 0) return performance.now() - t0;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${await openHolds()} holds still open after ${withinMs} ms`);
  };

  /** The invariants after a run: one record per completed response, no more records than completed, no overspend. */
  const checkBooks = async (outcomes: Outcome[], label: string): Promise<void> => {
    const recs = await records();
    const completed = outcomes.filter((o) => o.complete);
    for (const o of completed) assert.equal(recs.get(o.requestId!), 1, `${label}: one usage record for completed ${o.requestId}`);
    for (const [id, n] of recs) assert.equal(n, 1, `${label}: exactly one record for ${id}`);
    const spent = await db.query<{ minor: string; leak: string }>(
      'SELECT COALESCE(SUM(cost_minor), 0) AS minor, COALESCE(SUM(leak_coins), 0) AS leak FROM charging_usage_records WHERE account_id = $1',
      [accountId],
    );
    const minor = Number(spent.rows[0]!.minor);
    assert.ok(minor <= grantedMinor, `${label}: charged ${minor} fen, granted ${grantedMinor}`);
    assert.equal(Number(spent.rows[0]!.leak), 0, `${label}: nothing delivered unpaid`);
    const bal = await c.admin(0, 'GET', `/admin/accounts/${accountId}/balance`);
    assert.equal(bal.status, 200, JSON.stringify(bal.body));
    let used = 0;
    for (const b of bal.body.buckets as { granted: number; used: number; remaining: number; reserved: number }[]) {
      assert.ok(b.remaining >= 0 && b.used <= b.granted, `${label}: bucket ${JSON.stringify(b)}`);
      used += b.used;
    }
    assert.equal(used, minor, `${label}: the buckets were debited exactly what the usage records charge (no double charge)`);
    // Every bucket's counters equal its ledger, and the ledger's consumption equals the records' charges.
    const report = await auditAccount(engine.charging, accountId);
    assert.deepEqual(report.problems, [], `${label}: audit`);
  };

  before(async () => {
    const t0 = performance.now();
    try {
      await c.start(3);
    } catch (e) {
      await c.stop();
      throw e;
    }
    db = new pg.Pool({ connectionString: c.pg.url, max: 2 });
    db.on('error', () => {});
    db.on('connect', (client) => client.on('error', () => {}));
    engine = await openPostgresEngine(c.pg.url, { changeFeed: false, max: 2 });
    const acct = await c.admin(0, 'POST', '/admin/accounts', { name: 'many nodes' });
    assert.equal(acct.status, 201, JSON.stringify(acct.body));
    accountId = acct.body.id;
    await topUp('2.00');
    const k = await c.admin(0, 'POST', '/admin/keys', { accountId, limits: { concurrentRequests: 64 } });
    assert.equal(k.status, 201, JSON.stringify(k.body));
    key = k.body.key;
    console.log(`multinode: cluster of 3 nodes up in ${Math.round(performance.now() - t0)} ms`);
  });

  after(async () => {
    await db?.end().catch(() => {});
    await engine?.close().catch(() => {});
    await c.stop();
  });

  /** Creates a key on node 0, waits until nodes 1 and 2 accept it, revokes it on node 0, waits until they refuse it. */
  const propagation = async (): Promise<{ accepted: number[]; refused: number[] }> => {
    const k = await c.admin(0, 'POST', '/admin/keys', { accountId });
    const fresh = k.body.key as string;
    const until = async (node: number, want: (s: number) => boolean): Promise<number> => {
      const t0 = performance.now();
      for (;;) {
        // GET /v1/models authenticates like any request and costs nothing (the balance may be used up).
        const r = await fetch(`${c.nodes[node]!.url}/v1/models`, { headers: { authorization: `Bearer ${fresh}` } });
        await r.text();
        if (want(r.status)) return performance.now() - t0;
        if (performance.now() - t0 > 3_000) throw new Error(`node ${node} still answers ${r.status} after 3 s`);
        await new Promise((res) => setTimeout(res, 20));
      }
    };
    const accepted = await Promise.all([until(1, (s) => s === 200), until(2, (s) => s === 200)]);
    assert.equal((await c.admin(0, 'POST', `/admin/keys/${k.body.id}/revoke`)).status, 200);
    const refused = await Promise.all([until(1, (s) => s === 401), until(2, (s) => s === 401)]);
    return { accepted, refused };
  };

  test('a key created on one node is accepted by the others, and revoked on one node is refused by all within a second', async () => {
    const { accepted, refused } = await propagation();
    console.log(
      `multinode: new key usable on the other nodes after ${accepted.map(Math.round).join(', ')} ms; revocation refused after ${refused.map(Math.round).join(', ')} ms`,
    );
    for (const ms of refused) assert.ok(ms < 1_000, `revocation reached every node within a second (${ms} ms)`);
  });

  test('a requests-per-minute limit is shared: 60 requests spread over 3 nodes admit exactly the 20 the key allows, not 3 x 20', async () => {
    const k = await c.admin(0, 'POST', '/admin/keys', { accountId, limits: { requestsPerMinute: 20 } });
    assert.equal(k.status, 201, JSON.stringify(k.body));
    // Every node knows the key before the run (the change feed), so no request is refused as unknown.
    for (const n of [1, 2]) {
      for (let t0 = performance.now(); ; ) {
        const r = await fetch(`${c.nodes[n]!.url}/v1/models`, { headers: { authorization: `Bearer ${k.body.key}` } });
        await r.text();
        if (r.status === 200) break;
        assert.ok(performance.now() - t0 < 3_000, 'the key reached every node');
        await new Promise((res) => setTimeout(res, 20));
      }
    }
    const outcomes = await Promise.all(Array.from({ length: 60 }, (_, i) => chat(c.nodes[i % 3]!.url, k.body.key, false, 'deepseek-v3.2', i % 3)));
    const admitted = outcomes.filter((o) => o.status === 200).length;
    const limited = outcomes.filter((o) => o.status === 429 && o.code === 'rate_limited').length;
    console.log(`multinode: shared limit of 20/min over 3 nodes: ${admitted} admitted, ${limited} rate_limited`);
    assert.equal(admitted, 20);
    assert.equal(limited, 40);
  });

  test("a plan bought on one node limits the account on every node within a second: the plan's 4 concurrent requests are shared", async () => {
    const acct = (await c.admin(0, 'POST', '/admin/accounts', { name: 'plan limits across nodes' })).body;
    const topup = await c.admin(0, 'POST', '/admin/orders/topup', { accountId: acct.id, amount: '50.00' }, { 'idempotency-key': 'mn-plan-topup' });
    assert.equal(topup.status, 201, JSON.stringify(topup.body));
    const k = (await c.admin(0, 'POST', '/admin/keys', { accountId: acct.id })).body.key as string;
    const sub = await c.admin(1, 'POST', '/admin/subscriptions', { accountId: acct.id, offerId: 'ct-personal-light' }, { 'idempotency-key': 'mn-plan-sub' });
    assert.equal(sub.status, 201, JSON.stringify(sub.body));
    await new Promise((res) => setTimeout(res, 1_000));
    // Four slow streams on nodes 0 and 2 take the plan's four slots; a fifth on node 1 is refused by the plan.
    const open = await Promise.all(
      [0, 2, 0, 2].map((n) =>
        fetch(`${c.nodes[n]!.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${k}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'slow-stream', stream: true, messages: [{ role: 'user', content: 'hold a slot' }] }),
        }),
      ),
    );
    for (const r of open) assert.equal(r.status, 200, r.status === 200 ? '' : await r.text());
    const fifth = await chat(c.nodes[1]!.url, k, true, 'slow-stream', 1);
    for (const r of open) await r.body?.cancel();
    assert.equal(fifth.status, 429, JSON.stringify(fifth));
    assert.equal(fifth.code, 'rate_limited');
  });

  test('hundreds of concurrent requests over three nodes, streams included: no overspend, one usage record per completed response, no hold left', async () => {
    const { outcomes, ms } = await load(c, key, { total: 360, concurrency: 48, streamEvery: 3 });
    const byStatus = new Map<string, number>();
    for (const o of outcomes) byStatus.set(`${o.status}${o.code ? ` ${o.code}` : ''}`, (byStatus.get(`${o.status}${o.code ? ` ${o.code}` : ''}`) ?? 0) + 1);
    const completed = outcomes.filter((o) => o.complete).length;
    console.log(
      `multinode: 360 requests (120 streams) over 3 nodes in ${Math.round(ms)} ms = ${Math.round((360 / ms) * 1000)} req/s; completed ${completed}; ${JSON.stringify(Object.fromEntries(byStatus))}`,
    );
    for (const o of outcomes) assert.ok(o.complete || (o.status === 429 && o.code === 'insufficient_quota'), `unexpected ${JSON.stringify(o)}`);
    assert.ok(completed >= 50, `enough completed (${completed})`);
    assert.ok(
      outcomes.some((o) => o.code === 'insufficient_quota'),
      'the small balance ran out during the run (the overspend check means something)',
    );
    for (let i = 0; i < 3; i++)
      assert.ok(
        outcomes.some((o) => o.node === i && o.complete),
        `node ${i} served`,
      );
    await waitNoHolds(2_000);
    await checkBooks(outcomes, 'load');
  });

  test("kill -9 of one node mid-load: every completed response has its record; the dead node's holds are swept by the others", async () => {
    await topUp('3.00');
    let killed: Promise<void> | undefined;
    const { outcomes } = await load(c, key, {
      total: 150,
      concurrency: 30,
      streamEvery: 4,
      // Slow streams on the node that dies, so it has holds in flight when it does.
      model: (i) => (i % 3 === 2 && i % 4 === 0 ? 'slow-stream' : 'deepseek-v3.2'),
      during: (n) => {
        if (n === 40) killed = c.killNode(2);
      },
    });
    await killed;
    const open = await openHolds();
    const swept = await waitNoHolds(15_000);
    console.log(`multinode: kill -9 left ${open} holds open; swept by the surviving nodes after ${Math.round(swept)} ms`);
    assert.ok(
      outcomes.some((o) => o.node === 2 && o.status === 0),
      'requests to the dead node failed',
    );
    await checkBooks(outcomes, 'kill -9');
    await c.restartNode(2);
  });

  test('Redis killed and restarted mid-load: limits fall back to each node, no 5xx, no double charge, no stuck hold', async () => {
    await topUp('3.00');
    let outage: Promise<void> | undefined;
    const { outcomes } = await load(c, key, {
      total: 240,
      concurrency: 30,
      streamEvery: 3,
      during: (n) => {
        if (n === 30) {
          outage = (async () => {
            await c.redis.kill();
            await new Promise((r) => setTimeout(r, 1_000));
            await c.redis.start();
          })();
        }
      },
    });
    await outage;
    const failed = outcomes.filter((o) => !o.complete && !(o.status === 429 && o.code === 'insufficient_quota'));
    assert.deepEqual(failed, [], 'every request answered or refused for quota while Redis was away');
    // The limiter fell back to the nodes (counted), and the change feed is back: a revocation still reaches every node.
    let fallbacks = 0;
    for (const n of c.nodes) {
      const m = await (await fetch(`${n.url}/metrics`)).text();
      fallbacks += Number(/^tokengrid_redis_fallbacks_total (\d+)/m.exec(m)?.[1] ?? 0);
    }
    assert.ok(fallbacks > 0, 'tokengrid_redis_fallbacks_total counted the outage');
    const { refused } = await propagation();
    console.log(
      `multinode: Redis outage: ${fallbacks} fallback admissions; after the restart a revocation reached the nodes in ${refused.map(Math.round).join(', ')} ms`,
    );
    for (const ms of refused) assert.ok(ms < 1_000, `revocation after the Redis restart (${ms} ms)`);
    await waitNoHolds(2_000);
    await checkBooks(outcomes, 'redis restart');
  });

  test('PostgreSQL restarted mid-load: no completed response without its record, and no hold left after the sweep', async () => {
    await topUp('3.00');
    let restart: Promise<void> | undefined;
    const { outcomes } = await load(c, key, {
      total: 240,
      concurrency: 30,
      streamEvery: 3,
      during: (n) => {
        if (n === 30) restart = c.pg.restartAsync();
      },
    });
    await restart;
    const byStatus = new Map<string, number>();
    for (const o of outcomes) byStatus.set(`${o.status}${o.code ? ` ${o.code}` : ''}${o.status === 200 && !o.complete ? ' incomplete' : ''}`, 0);
    for (const o of outcomes) {
      const k = `${o.status}${o.code ? ` ${o.code}` : ''}${o.status === 200 && !o.complete ? ' incomplete' : ''}`;
      byStatus.set(k, byStatus.get(k)! + 1);
    }
    console.log(`multinode: PostgreSQL restart mid-load: ${JSON.stringify(Object.fromEntries(byStatus))}`);
    for (const o of outcomes) {
      if (o.complete || o.status === 429) continue;
      assert.ok(o.status === 503 || (o.status === 200 && !o.complete), `a failure during the restart is a 503 or an ended stream: ${JSON.stringify(o)}`);
    }
    await waitNoHolds(15_000);
    await checkBooks(outcomes, 'postgres restart');
  });
});
