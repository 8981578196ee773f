/**
 * Crash safety of orders (attack review atk-billing): kill -9 the server while many top-up orders of one account
 * apply at once, restart it on the same data folder, and send every order again with its Idempotency-Key. Each
 * order must have applied exactly once: a key answered before the crash replays the same order, a key in
 * flight at the crash applies now or replays; the wallet holds the sum of all of them; every order has its
 * Idempotency-Key record and its payment, and the charging ledger reconciles (nothing half-written).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { openSqlite } from '../../src/store/sqlite/db.ts';
import { openSqliteChargingStore } from '../../src/store/sqlite/charging-store.ts';
import { auditAccount } from '../../src/charging/index.ts';

const SERVER = new URL('../support/crash-server.ts', import.meta.url).pathname;

interface Started {
  child: ChildProcess;
  url: string;
  demoAccountId?: string;
}

function startServer(dataDir: string): Promise<Started> {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER, dataDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start in 30 s')), 30_000);
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      resolve({ child, ...JSON.parse(line) });
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

const AMOUNT = (i: number): number => 100 + i; // distinct amounts: the wallet's sum says which orders applied

async function topUp(url: string, adminKey: string, accountId: string, i: number): Promise<{ status: number; orderId: string | null; replayed: boolean }> {
  try {
    const res = await fetch(`${url}/admin/orders/topup`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json', 'idempotency-key': `crash-topup-${i}` },
      body: JSON.stringify({ accountId, amountMinor: AMOUNT(i) }),
    });
    const body = (await res.json()) as { order?: { id: string } };
    return { status: res.status, orderId: body.order?.id ?? null, replayed: res.headers.get('idempotent-replayed') === 'true' };
  } catch {
    return { status: 0, orderId: null, replayed: false }; // connection reset by the crash
  }
}

test('after kill -9 among concurrent orders and a restart, every order applied exactly once and nothing is half-written', { timeout: 120_000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tokengrid-crash-orders-'));
  try {
    const first = await startServer(dataDir);
    const adminKey = readFileSync(join(dataDir, 'admin-key'), 'utf8').trim();
    const accountId = first.demoAccountId!;
    const walletOf = async (url: string): Promise<number> => {
      const bal = (await (await fetch(`${url}/admin/accounts/${accountId}/balance`, { headers: { authorization: `Bearer ${adminKey}` } })).json()) as {
        buckets: { kind: string; remaining: number }[];
      };
      return bal.buckets.filter((b) => b.kind === 'wallet').reduce((s, b) => s + b.remaining, 0);
    };
    const start = await walletOf(first.url); // the demo account's own wallet
    const N = 120;
    const answered = new Map<number, string>();
    const attempts: Promise<void>[] = [];
    // Waves of 12 concurrent orders; the crash comes once 30 were answered (counted, not timed), with a wave in flight.
    let next = 0;
    while (next < N) {
      const wave: Promise<void>[] = [];
      for (let j = 0; j < 12 && next < N; j++, next++) {
        const i = next;
        wave.push(
          topUp(first.url, adminKey, accountId, i).then((r) => {
            if (r.status === 201 && r.orderId !== null) answered.set(i, r.orderId);
          }),
        );
      }
      attempts.push(...wave);
      if (answered.size >= 30) break;
      await Promise.all(wave);
    }
    first.child.kill('SIGKILL');
    await Promise.all(attempts);
    assert.ok(answered.size >= 30, `orders answered before the crash (${answered.size})`);

    const second = await startServer(dataDir);
    try {
      let total = 0;
      for (let i = 0; i < next; i++) {
        const r = await topUp(second.url, adminKey, accountId, i);
        assert.equal(r.status, 201, `order ${i} after the restart`);
        const before = answered.get(i);
        if (before !== undefined) {
          assert.equal(r.replayed, true, `order ${i} was answered before the crash: replayed`);
          assert.equal(r.orderId, before, `order ${i}: the same order`);
        }
        total += AMOUNT(i);
      }
      assert.equal(await walletOf(second.url), start + total, 'the wallet holds every order exactly once');
    } finally {
      second.child.kill('SIGTERM');
      await new Promise((r) => second.child.once('exit', r));
    }
    const db = openSqlite(join(dataDir, 'tokengrid.db'));
    try {
      const orders = db.prepare("SELECT id, data FROM billing_orders WHERE account_id = ? AND json_extract(data, '$.type') = 'topup'").all(accountId) as {
        id: string;
        data: string;
      }[];
      assert.equal(orders.length, next, 'one order per Idempotency-Key');
      const keys = db.prepare("SELECT key FROM billing_idempotency WHERE scope = ? AND key LIKE 'crash-topup-%'").all(`account:${accountId}`);
      assert.equal(keys.length, next, 'one Idempotency-Key record per order');
      const paid = db
        .prepare(
          "SELECT COUNT(DISTINCT order_id) AS n FROM billing_payments WHERE account_id = ? AND order_id IN (SELECT id FROM billing_orders WHERE json_extract(data, '$.type') = 'topup')",
        )
        .get(accountId) as { n: number };
      assert.equal(paid.n, next, 'every order has its payment');
      const report = await auditAccount(openSqliteChargingStore(db), accountId);
      assert.deepEqual(report.problems, [], 'bucket counters = ledger fold');
    } finally {
      db.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
