import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ManualClock } from '../core/index.ts';
import { emptyMutation } from '../charging/index.ts';
import { openMemoryChargingStore, type MemoryChargingStore } from '../store/memory/charging-store.ts';
import { Webhook } from 'standardwebhooks';
import { backoffMs, createWebhookDeliverer, verifyWebhook, type Timer } from './webhook.ts';

const T = Date.UTC(2026, 0, 1);
const SECRET = 'test-webhook-secret-0123456789';
interface Hit {
  headers: IncomingMessage['headers'];
  body: string;
}

let server: Server | null = null;
afterEach(async () => {
  if (server !== null) await new Promise<void>((r) => server!.close(() => r()));
  server = null;
});

/** A local receiver answering with the given statuses in turn (the last one repeats). */
async function receiver(statuses: number[]): Promise<{ url: string; hits: Hit[] }> {
  const hits: Hit[] = [];
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      hits.push({ headers: req.headers, body });
      res.statusCode = statuses[Math.min(hits.length - 1, statuses.length - 1)]!;
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, hits };
}

async function storeWithEvents(n: number): Promise<MemoryChargingStore> {
  const store = openMemoryChargingStore();
  const events = Array.from({ length: n }, (_, i) => ({
    id: `evt_${i}`,
    accountId: 'acct_1',
    type: 'threshold_80' as const,
    subjectId: 'bkt_1',
    data: { percent: 80, used: 800, amount: 1000 },
    atMs: T,
  }));
  await store.runAccountOp({ accountId: 'acct_1', nowMs: T }, () => ({ mutation: { ...emptyMutation(), events }, result: null }));
  return store;
}

describe('webhook delivery', () => {
  test('a pending event is POSTed once, signed with Standard Webhooks, and marked delivered', async () => {
    const { url, hits } = await receiver([204]);
    const store = await storeWithEvents(1);
    const clock = new ManualClock(T);
    const d = createWebhookDeliverer({ outbox: store, clock, config: { url, secret: 's3cret-s3cret-s3cret' } });
    assert.deepEqual(await d.deliverDue(), { delivered: 1, failed: 0 });
    assert.deepEqual(await d.deliverDue(), { delivered: 0, failed: 0 });
    assert.equal(hits.length, 1);
    const hit = hits[0]!;
    assert.equal(hit.headers['x-tokengrid-event-id'], 'evt_0');
    assert.equal(hit.headers['webhook-id'], 'evt_0');
    assert.equal(hit.headers['webhook-timestamp'], String(T / 1000));
    assert.deepEqual(verifyWebhook('s3cret-s3cret-s3cret', hit.headers, hit.body, T), { ok: true });
    assert.deepEqual(verifyWebhook('s3cret-s3cret-s3cret', hit.headers, hit.body.replace('800', '801'), T), { ok: false, reason: 'bad_signature' });
    assert.deepEqual(JSON.parse(hit.body), {
      id: 'evt_0',
      type: 'threshold_80',
      accountId: 'acct_1',
      subjectId: 'bkt_1',
      data: { percent: 80, used: 800, amount: 1000 },
      atMs: T,
      attempt: 1,
    });
    assert.equal((await store.listEvents('acct_1', null, 10))[0]!.deliveryState, 'delivered');
  });

  test('a failing receiver is retried after an exponential backoff, then the event is delivered', async () => {
    const { url, hits } = await receiver([500, 503, 200]);
    const store = await storeWithEvents(1);
    const clock = new ManualClock(T);
    const d = createWebhookDeliverer({ outbox: store, clock, config: { url, secret: SECRET, backoffMsBase: 1000, leaseMs: 100 } });
    assert.deepEqual(await d.deliverDue(), { delivered: 0, failed: 1 });
    clock.advance(999);
    assert.deepEqual(await d.deliverDue(), { delivered: 0, failed: 0 }, 'not before the backoff');
    clock.advance(1);
    assert.deepEqual(await d.deliverDue(), { delivered: 0, failed: 1 });
    clock.advance(2000);
    assert.deepEqual(await d.deliverDue(), { delivered: 1, failed: 0 });
    assert.deepEqual(
      hits.map((h) => JSON.parse(h.body).attempt),
      [1, 2, 3],
    );
  });

  test('after attemptsMax failures the event is given up and stays readable as failed', async () => {
    const { url } = await receiver([500]);
    const store = await storeWithEvents(1);
    const clock = new ManualClock(T);
    const d = createWebhookDeliverer({ outbox: store, clock, config: { url, secret: SECRET, attemptsMax: 2, backoffMsBase: 10 } });
    await d.deliverDue();
    clock.advance(10);
    await d.deliverDue();
    clock.advance(1_000_000);
    assert.deepEqual(await d.deliverDue(), { delivered: 0, failed: 0 });
    const [e] = await store.listEvents('acct_1', null, 10);
    assert.deepEqual([e!.deliveryState, e!.attempts], ['failed', 2]);
  });

  test('a refused connection counts as a failed attempt and is retried', async () => {
    const { url } = await receiver([200]);
    await new Promise<void>((r) => server!.close(() => r()));
    server = null;
    const store = await storeWithEvents(2);
    const clock = new ManualClock(T);
    const d = createWebhookDeliverer({ outbox: store, clock, config: { url, secret: SECRET } });
    assert.deepEqual(await d.deliverDue(), { delivered: 0, failed: 2 });
    const events = await store.listEvents('acct_1', null, 10);
    assert.deepEqual(
      events.map((e) => [e.deliveryState, e.attempts, e.nextAttemptAtMs]),
      [
        ['pending', 1, T + 5000],
        ['pending', 1, T + 5000],
      ],
    );
  });

  test('the polling loop runs on the injected timer and stops cleanly', async () => {
    const { url, hits } = await receiver([200]);
    const store = await storeWithEvents(1);
    const pending: (() => void)[] = [];
    const timer: Timer = { setTimeout: (fn) => pending.push(fn), clearTimeout: () => pending.splice(0) };
    const d = createWebhookDeliverer({ outbox: store, clock: new ManualClock(T), timer, config: { url, secret: SECRET } });
    d.start();
    assert.equal(pending.length, 1);
    pending.shift()!();
    await d.stop();
    assert.equal(hits.length, 1);
    assert.equal(pending.length, 0, 'no timer left after stop');
  });

  test('backoff doubles from the base and is capped', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 20].map((n) => backoffMs(n, 1000, 6000)),
      [1000, 2000, 4000, 6000, 6000],
    );
  });
});

describe('webhook signing is mandatory', () => {
  test('a whsec_ secret signs so that the official standardwebhooks library verifies the delivery', async () => {
    const { url, hits } = await receiver([200]);
    const store = await storeWithEvents(1);
    const secret = `whsec_${Buffer.alloc(24, 3).toString('base64')}`;
    const d = createWebhookDeliverer({ outbox: store, clock: new ManualClock(Date.now()), config: { url, secret } });
    assert.deepEqual(await d.deliverDue(), { delivered: 1, failed: 0 });
    const h = hits[0]!.headers as Record<string, string>;
    assert.equal((new Webhook(secret).verify(hits[0]!.body, h) as { id: string }).id, 'evt_0');
  });

  test('a whsec_ secret that is not base64 is refused at start', () => {
    assert.throws(
      () =>
        createWebhookDeliverer({
          outbox: openMemoryChargingStore(),
          clock: new ManualClock(T),
          config: { url: 'http://127.0.0.1:9/hook', secret: 'whsec_not*base64*at*all**' },
        }),
      /base64/,
    );
  });

  test('a deliverer without a secret refuses to start instead of sending unsigned webhooks', () => {
    const store = openMemoryChargingStore();
    assert.throws(
      () => createWebhookDeliverer({ outbox: store, clock: new ManualClock(T), config: { url: 'http://127.0.0.1:9/hook' } as never }),
      /signing secret/,
    );
    assert.throws(
      () => createWebhookDeliverer({ outbox: store, clock: new ManualClock(T), config: { url: 'http://127.0.0.1:9/hook', secret: '' } }),
      /signing secret/,
    );
  });
});
