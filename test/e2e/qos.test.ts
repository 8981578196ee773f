/**
 * QoS that schedules, on the real server (issue 17 item 2). An upstream limited to 2 concurrent requests answers
 * slowly (the emulator's `hangms`); an account with the broadband speed-up pack (qos: priority) and one with the
 * plain developer plan (standard) share it. Standard requests queue; priority requests sent later are admitted
 * ahead of every queued standard request, so they finish before the standard requests that were waiting. A tight
 * upstream (1 slot, queue of 1, 400 ms deadline) refuses beyond its queue with 429 upstream_busy and past the
 * deadline with 503 upstream_queue_timeout, both with Retry-After, in each API family's own error format, and
 * nothing is charged for a refused request. Assertions are on orderings and counts, not on wall-clock thresholds.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, TEST_CONFIG, type TestServer } from '../support/server.ts';

let srv: TestServer;

const SLOW_POOL = 'mock/slow@hangms=1000@local';
const TIGHT_POOL = 'mock/tight@hangms=1000@local';

function configFile(): string {
  const model = (id: string, upstream: string, qos: string): string =>
    [
      `  ${id}:`,
      '    vendor: deepseek',
      '    groups: [basic]',
      '    contextWindow: 131072',
      '    maxOutputTokens: 8192',
      '    capabilities: []',
      `    deployments: [{ provider: mock, upstreamModel: "${upstream}", region: local, qos: ${qos} }]`,
      '    cost: { input: 2000000, output: 3000000 }',
      '    coins: { input: 1, output: 1 }',
    ].join('\n');
  // One slot and no queue shared by every deployment of provider mock-one: a leaked slot shows as a 429.
  const one = (id: string, deployments: string, extra = ''): string =>
    [
      `  ${id}:`,
      '    vendor: deepseek',
      '    groups: [basic]',
      '    contextWindow: 131072',
      '    maxOutputTokens: 8192',
      '    capabilities: []',
      `    deployments: ${deployments}`,
      ...(extra === '' ? [] : [extra]),
      '    cost: { input: 2000000, output: 3000000 }',
      '    coins: { input: 1, output: 1 }',
    ].join('\n');
  const models = [
    model('slow-model', 'slow@hangms=1000', '{ maxConcurrent: 2, queueMax: 8, queueTimeoutMs: 60000 }'),
    model('tight-model', 'tight@hangms=1000', '{ maxConcurrent: 1, queueMax: 1, queueTimeoutMs: 400 }'),
    one('one-stream', '[{ provider: mock-one, upstreamModel: "one@tokens=400@interval=10@chunk=1", region: local }]'),
    one('one-ok', '[{ provider: mock-one, upstreamModel: "ok", region: local }]'),
    one('one-fail', '[{ provider: mock-one, upstreamModel: "bad@fail=500", region: local }]', '    attemptsMax: 1'),
    one(
      'one-retry',
      '[{ provider: mock-one, upstreamModel: "first@fail=503", region: local }, { provider: mock-one, upstreamModel: "second", region: local, weight: 0 }]',
    ),
  ].join('\n');
  // The slow answers take 1 s: the shared config's 1.5 s upstream timeouts are raised so they never race it.
  const text = readFileSync(TEST_CONFIG, 'utf8')
    .replace(/^models:\n/m, `models:\n${models}\n`)
    .replace(/timeoutMsUpstream(Headers|Body): \d+/g, 'timeoutMsUpstream$1: 20000')
    .replace(/^providers:\n/m, 'providers:\n  mock-one: { adapter: mock, dialect: openai-compatible, qos: { maxConcurrent: 1, queueMax: 0 } }\n');
  const file = join(mkdtempSync(join(tmpdir(), 'tg-qos-')), 'tokengrid.yaml');
  writeFileSync(file, text);
  return file;
}

function offersFile(): string {
  const text = readFileSync(new URL('../../config/offers.yaml', import.meta.url), 'utf8').replace(/package-basic|package-developer/g, 'basic');
  const file = join(mkdtempSync(join(tmpdir(), 'tg-offers-')), 'offers.yaml');
  writeFileSync(file, text);
  return file;
}

async function post(path: string, body: unknown, idem: string): Promise<{ status: number; body: any }> {
  const r = await fetch(srv.url + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${srv.adminKey}`, 'content-type': 'application/json', 'idempotency-key': idem },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

/** A funded account on the developer plan; with the speed-up pack (qos: priority) when `speedUp`. */
async function account(speedUp: boolean): Promise<{ id: string; key: string }> {
  const a = await srv.admin('POST', '/admin/accounts', { name: `qos-${speedUp}-${Math.random()}` });
  const k = await srv.admin('POST', '/admin/keys', { accountId: a.body.id });
  assert.equal((await post('/admin/orders/topup', { accountId: a.body.id, amount: '100.00' }, `t-${a.body.id}`)).status, 201);
  const plan = await post('/admin/subscriptions', { accountId: a.body.id, offerId: 'ct-dev-basic', channel: 'wallet' }, `s-${a.body.id}`);
  assert.equal(plan.status, 201, JSON.stringify(plan.body));
  if (speedUp) {
    const pack = await post(`/admin/accounts/${a.body.id}/addons`, { offerId: 'ct-broadband-speedup' }, `a-${a.body.id}`);
    assert.equal(pack.status, 201, JSON.stringify(pack.body));
  }
  await srv.app.refreshPlanLimits();
  const ent = await srv.admin('GET', `/admin/accounts/${a.body.id}/entitlements`);
  assert.equal(ent.body.qos, speedUp ? 'priority' : 'standard');
  return { id: a.body.id, key: k.body.key };
}

interface Answer {
  status: number;
  body: any;
  retryAfter: string | null;
  requestId: string | null;
}

async function chat(key: string, model: string): Promise<Answer> {
  const r = await fetch(`${srv.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, max_tokens: 16, messages: [{ role: 'user', content: 'hello' }] }),
  });
  return { status: r.status, body: await r.json(), retryAfter: r.headers.get('retry-after'), requestId: r.headers.get('x-request-id') };
}

async function message(key: string, model: string): Promise<Answer> {
  const r = await fetch(`${srv.url}/v1/messages`, {
    method: 'POST',
    headers: { 'x-api-key': key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
    body: JSON.stringify({ model, max_tokens: 16, messages: [{ role: 'user', content: 'hello' }] }),
  });
  return { status: r.status, body: await r.json(), retryAfter: r.headers.get('retry-after'), requestId: r.headers.get('x-request-id') };
}

/** The queue depth /metrics reports for one pool and class. */
async function depth(pool: string, cls: string): Promise<number> {
  const text = await (await fetch(`${srv.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`tokengrid_qos_queue_depth{pool="${pool}",class="${cls}"}`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

async function until(what: string, cond: () => Promise<boolean> | boolean): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`timed out waiting for ${what}`);
}

before(async () => {
  srv = await startTestServer({ configPath: configFile(), env: { TOKENGRID_OFFERS_FILE: offersFile() } });
});
after(() => srv.close());

describe('QoS on a limited upstream', () => {
  test('priority requests are admitted ahead of queued standard requests and finish before them', async () => {
    const standard = await account(false);
    const priority = await account(true);
    const finished: string[] = [];
    const run = (who: string, key: string): Promise<Answer> =>
      chat(key, 'slow-model').then((a) => {
        finished.push(who);
        return a;
      });
    // Six standard requests: two run, four queue.
    const std = [1, 2, 3, 4, 5, 6].map((i) => run(`s${i}`, standard.key));
    await until('four standard requests queued', async () => (await depth(SLOW_POOL, 'standard')) === 4);
    // Then two priority requests: they wait for the first free slots, ahead of the four standard ones.
    const pri = [1, 2].map((i) => run(`p${i}`, priority.key));
    await until('two priority requests queued', async () => (await depth(SLOW_POOL, 'priority')) === 2);
    // Standard requests still queued behind them (4 unless the machine was slow enough for a slot to free first).
    const stillQueued = await depth(SLOW_POOL, 'standard');
    assert.ok(stillQueued >= 1, 'some standard requests were queued when the priority requests arrived');
    const answers = await Promise.all([...std, ...pri]);
    for (const a of answers) assert.equal(a.status, 200, JSON.stringify(a.body));
    // Both priority requests finish before any standard request that was still queued when they arrived: the
    // standard ones queued first but are admitted only after them (FIFO within standard: the last to finish).
    const standardOrder = finished.filter((w) => w.startsWith('s'));
    const firstOvertaken = finished.indexOf(standardOrder[6 - stillQueued]!);
    assert.ok(finished.indexOf('p1') < firstOvertaken && finished.indexOf('p2') < firstOvertaken, `${finished.join(' ')} (${stillQueued} queued)`);
    assert.equal(await depth(SLOW_POOL, 'standard'), 0);
  });

  test('beyond the queue: 429 upstream_busy; past the deadline: 503 upstream_queue_timeout; both with Retry-After, nothing charged', async () => {
    const a = await account(false);
    const seen = srv.app.emulator!.stats().byModel.tight ?? 0;
    const running = chat(a.key, 'tight-model');
    await until('the first request at the upstream', () => (srv.app.emulator!.stats().byModel.tight ?? 0) === seen + 1);
    const queued = chat(a.key, 'tight-model');
    await until('the second request queued', async () => (await depth(TIGHT_POOL, 'standard')) === 1);

    const busy = await chat(a.key, 'tight-model');
    assert.equal(busy.status, 429);
    assert.equal(busy.body.error.code, 'upstream_busy');
    assert.equal(busy.body.error.type, 'rate_limit_error');
    assert.match(busy.body.error.message, /limit of 1 concurrent request and its queue for standard requests is full/);
    assert.ok(Number(busy.retryAfter) >= 1, `retry-after ${busy.retryAfter}`);

    const late = await queued;
    assert.equal(late.status, 503);
    assert.equal(late.body.error.code, 'upstream_queue_timeout');
    assert.match(late.body.error.message, /waited its queue deadline of 0.4 s without getting a slot/);
    assert.ok(Number(late.retryAfter) >= 1);

    const first = await running;
    assert.equal(first.status, 200);
    assert.equal(srv.app.emulator!.stats().byModel.tight, seen + 1, 'only the admitted request reached the upstream');
    // Nothing was charged for the refused requests: no usage record.
    assert.equal((await srv.admin('GET', `/admin/usage/${first.requestId}`)).status, 200);
    for (const r of [busy, late]) assert.equal((await srv.admin('GET', `/admin/usage/${r.requestId}`)).status, 404);
  });

  test('once the service time is known, a wait that cannot meet the deadline is refused at once, in the Anthropic format too', async () => {
    const a = await account(false);
    const seen = srv.app.emulator!.stats().byModel.tight ?? 0;
    const running = chat(a.key, 'tight-model');
    await until('the request at the upstream', () => (srv.app.emulator!.stats().byModel.tight ?? 0) === seen + 1);
    // The pool has learned ~1 s per request; the deadline is 400 ms: refused without queueing.
    const refused = await message(a.key, 'tight-model');
    assert.equal(refused.status, 503);
    assert.equal(refused.body.type, 'error');
    assert.equal(refused.body.error.type, 'overloaded_error');
    assert.match(refused.body.error.message, /would wait about \d+ s for a slot \(0 ahead of it\), longer than its queue deadline of 0.4 s/);
    assert.ok(Number(refused.retryAfter) >= 1);
    assert.equal(await depth(TIGHT_POOL, 'standard'), 0);
    assert.equal((await running).status, 200);
  });

  test('the slot is released on every path: a finished stream, a client gone mid-stream, a failed upstream, a retry to another deployment', async () => {
    const a = await account(false);
    const stream = (signal?: AbortSignal): Promise<Response> =>
      fetch(`${srv.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${a.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'one-stream', stream: true, messages: [{ role: 'user', content: 'hello' }] }),
        ...(signal === undefined ? {} : { signal }),
      });
    /** With one slot and no queue, a request admitted now proves no slot is held. */
    const free = async (what: string): Promise<void> => {
      let last: Answer | undefined;
      await until(`the slot is free after ${what}`, async () => {
        last = await chat(a.key, 'one-ok');
        return last.body.error?.code !== 'upstream_busy';
      });
      assert.equal(last!.status, 200, `${what}: ${JSON.stringify(last!.body)}`);
    };

    // While a stream runs, the one slot is taken: another request is refused (no queue).
    const ctl = new AbortController();
    const running = await stream(ctl.signal);
    assert.equal(running.status, 200);
    const reader = running.body!.getReader();
    await reader.read();
    const busy = await chat(a.key, 'one-ok');
    assert.equal(busy.status, 429);
    assert.equal(busy.body.error.code, 'upstream_busy');
    // The client leaves mid-stream.
    ctl.abort();
    await reader.cancel().catch(() => undefined);
    await free('a client gone mid-stream');
    // A failed upstream.
    const failed = await chat(a.key, 'one-fail');
    assert.equal(failed.status, 502, JSON.stringify(failed.body));
    await free('a failed upstream');
    // A stream that runs to its end.
    const done = await stream();
    assert.equal(done.status, 200);
    assert.match(await done.text(), /data: \[DONE\]/);
    await free('a finished stream');
    // A retry to the next deployment of the same pool runs under the one slot, and frees it once.
    const retried = await chat(a.key, 'one-retry');
    assert.equal(retried.status, 200, JSON.stringify(retried.body));
    assert.equal((await srv.admin('GET', `/admin/usage/${retried.requestId}`)).body.upstreamModel, 'second');
    await free('a retry');
  });
});
