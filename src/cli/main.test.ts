import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { optionTypes } from './args.ts';
import { COMMANDS } from './commands/index.ts';
import { runCli, type CliIo } from './main.ts';

/**
 * The dispatcher and the commands against a scripted fetch: the billing routes (subscriptions, codes,
 * redeem, bills, offers) are exercised here at their agreed paths; test/e2e/cli.test.ts covers the rest
 * against a real server.
 */
interface Call {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body: unknown;
}
type Reply = { status?: number; body: unknown };

function harness(routes: Record<string, Reply | ((c: Call) => Reply)> = {}) {
  const calls: Call[] = [];
  let out = '';
  let err = '';
  const fakeFetch = (async (input: string, init: RequestInit) => {
    const call: Call = {
      method: init.method ?? 'GET',
      url: new URL(input),
      headers: init.headers as Record<string, string>,
      body: init.body === undefined ? undefined : JSON.parse(String(init.body)),
    };
    calls.push(call);
    const route = routes[`${call.method} ${call.url.pathname}`];
    const reply =
      typeof route === 'function'
        ? route(call)
        : (route ?? { status: 404, body: { error: { message: `Unknown route ${call.method} ${call.url.pathname}.`, code: 'not_found' } } });
    return new Response(JSON.stringify(reply.body), { status: reply.status ?? 200, headers: { 'content-type': 'application/json' } });
  }) as unknown as typeof globalThis.fetch;
  const io: CliIo = {
    stdout: (t) => {
      out += t;
    },
    stderr: (t) => {
      err += t;
    },
    env: {},
    cwd: '/nonexistent',
    fetch: fakeFetch,
    nowMs: () => Date.parse('2026-11-25T12:00:00Z'),
    uuid: () => '11111111-2222-4333-8444-555555555555',
  };
  const run = async (...argv: string[]) => {
    out = '';
    err = '';
    const code = await runCli([...argv, '--url', 'http://tg.test', '--admin-key', 'tgadmin-x'], io);
    return { code, out, err };
  };
  return { calls, run };
}

describe('dispatch and output contract', () => {
  test('an option name has one type across all commands (the pre-scan relies on it)', () => {
    const types = optionTypes(COMMANDS);
    for (const c of COMMANDS) for (const [name, o] of Object.entries(c.options)) assert.equal(o.type, types.get(name)?.type, `${c.name} --${name}`);
  });

  test('every command has help that exits 0 and names its required options', async () => {
    const h = harness();
    for (const c of COMMANDS) {
      const r = await h.run(...c.name.split(' '), '--help');
      assert.equal(r.code, 0, c.name);
      assert.match(r.out, new RegExp(`^Usage: tokengrid ${c.name}`));
      for (const [n, o] of Object.entries(c.options)) if (o.required) assert.ok(r.out.includes(`--${n}`), `${c.name} --${n}`);
    }
    assert.equal(h.calls.length, 0);
  });

  test('global options may come before the command and --json prints exactly one JSON object', async () => {
    const h = harness({ 'GET /admin/accounts/acct_1/balance': { body: { accountId: 'acct_1', buckets: [] } } });
    const r = await h.run('--json', '--timeout', '5', 'balance', '--account', 'acct_1');
    assert.equal(r.code, 0);
    assert.deepEqual(JSON.parse(r.out), { accountId: 'acct_1', buckets: [] });
    assert.equal(h.calls[0]!.headers.authorization, 'Bearer tgadmin-x');
  });

  test('bad values are usage errors (exit 2) before any request', async () => {
    const h = harness();
    for (const argv of [
      ['topup', '--account', 'a', '--amount', '-5'],
      ['topup', '--account', 'a', '--amount=-5'],
      ['topup', '--account', 'a', '--amount', '1.001'],
      ['grant', '--account', 'a', '--tokens', 'lots'],
      ['key', 'create', '--account', 'a', '--rpm', '0'],
      ['bill', 'run', '--period', '2026-13'],
      ['codes', 'create', '--offer', 'o', '--count', '1000001'],
      ['balance'],
      ['balance', '--account', 'a', '--bogus'],
      ['frobnicate'],
      ['account'],
      ['key', 'revoke', '--key', 'tg-secret'],
    ]) {
      const r = await h.run(...argv);
      assert.equal(r.code, 2, argv.join(' '));
      assert.match(r.err, /^error: /, argv.join(' '));
      assert.equal(r.out, '', argv.join(' '));
      assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
    }
    assert.equal(h.calls.length, 0);
  });

  test("a server error exits 1 with the server's message and code on stderr and nothing on stdout", async () => {
    const h = harness({
      'GET /admin/accounts/acct_x/balance': { status: 404, body: { error: { message: 'account acct_x does not exist', code: 'not_found' } } },
    });
    const r = await h.run('balance', '--account', 'acct_x', '--json');
    assert.deepEqual([r.code, r.out, r.err], [1, '', 'error: account acct_x does not exist (not_found)\n']);
  });

  test('an unreachable server exits 1 with a plain message', async () => {
    const io: CliIo = {
      stdout: () => undefined,
      stderr: (t) => {
        err += t;
      },
      env: { TOKENGRID_ADMIN_KEY: 'k' },
      cwd: '/',
      nowMs: () => 0,
      uuid: () => 'u',
      fetch: (async () => {
        throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
      }) as unknown as typeof fetch,
    };
    let err = '';
    assert.equal(await runCli(['account', 'list', '--url', 'http://127.0.0.1:9'], io), 1);
    assert.match(err, /Cannot reach TokenGrid at http:\/\/127\.0\.0\.1:9 \(ECONNREFUSED\)/);
  });
});

describe('billing commands call the agreed routes', () => {
  test('subscribe posts accountId and offerId with an Idempotency-Key', async () => {
    const h = harness({ 'POST /admin/subscriptions': { status: 201, body: { id: 'sub_1', status: 'active' } } });
    const r = await h.run('subscribe', '--account', 'acct_1', '--offer', 'telecom-light', '--json');
    assert.equal(r.code, 0);
    assert.deepEqual(JSON.parse(r.out), { id: 'sub_1', status: 'active' });
    assert.deepEqual(h.calls[0]!.body, { accountId: 'acct_1', offerId: 'telecom-light' });
    assert.equal(h.calls[0]!.headers['idempotency-key'], '11111111-2222-4333-8444-555555555555');
  });

  test('account create --offer creates then subscribes, and a failed subscribe says the account exists', async () => {
    const ok = harness({
      'POST /admin/accounts': { status: 201, body: { id: 'acct_9', name: 'Li', kind: 'family' } },
      'POST /admin/subscriptions': (c) => ({ status: 201, body: { id: 'sub_9', accountId: (c.body as { accountId: string }).accountId } }),
    });
    const r = await ok.run('account', 'create', '--name', 'Li', '--kind', 'family', '--offer', 'o1', '--json');
    assert.equal(r.code, 0);
    assert.deepEqual(JSON.parse(r.out), { id: 'acct_9', name: 'Li', kind: 'family', subscription: { id: 'sub_9', accountId: 'acct_9' } });
    assert.deepEqual(
      ok.calls.map((c) => c.body),
      [
        { name: 'Li', kind: 'family' },
        { accountId: 'acct_9', offerId: 'o1' },
      ],
    );

    const bad = harness({ 'POST /admin/accounts': { status: 201, body: { id: 'acct_9' } } });
    const f = await bad.run('account', 'create', '--name', 'Li', '--offer', 'o1');
    assert.equal(f.code, 1);
    assert.match(f.err, /Account acct_9 was created, but subscribing it to offer o1 failed.*tokengrid subscribe --account acct_9 --offer o1/);
  });

  test('codes create prints the bare codes on stdout and progress on stderr; --json gives batchId and codes', async () => {
    const h = harness({ 'POST /admin/codes': { status: 201, body: { batchId: 'batch_1', codes: [{ code: 'AAAA-1' }, { code: 'BBBB-2' }] } } });
    const human = await h.run('codes', 'create', '--offer', 'o1', '--count', '2');
    assert.equal(human.out, 'AAAA-1\nBBBB-2\n');
    assert.match(human.err, /Creating 2 codes for offer o1/);
    assert.deepEqual(h.calls[0]!.body, { offerId: 'o1', count: 2 });
    const json = await h.run('codes', 'create', '--offer', 'o1', '--count', '2', '--json', '--quiet');
    assert.deepEqual(JSON.parse(json.out), { batchId: 'batch_1', codes: ['AAAA-1', 'BBBB-2'] });
    assert.equal(json.err, '');
  });

  test('redeem, bill run, bill list, bill show and offers use their routes', async () => {
    const bill = {
      id: 'bill_1',
      accountId: 'acct_1',
      period: '2026-11',
      totalMinor: 2990,
      currency: 'CNY',
      lines: [{ description: 'Plan, light', amountMinor: 2990 }],
    };
    const h = harness({
      'POST /admin/accounts/acct_1/redeem': {
        body: { id: 'bkt_1', unit: 'tokens', kind: 'code', granted: 1000, used: 0, reserved: 0, remaining: 1000, expired: false },
      },
      'POST /admin/bills/run': { body: { period: '2026-11', bills: [bill] } },
      'GET /admin/bills': { body: { data: [bill] } },
      'GET /admin/bills/bill_1': { body: bill },
      'GET /admin/offers': { body: { data: [{ id: 'o1', name: 'Light', priceMinor: 990, currency: 'CNY', tokensPerCycle: 10_000_000 }] } },
    });
    assert.equal((await h.run('redeem', '--account', 'acct_1', '--code', 'AAAA-1')).code, 0);
    assert.deepEqual(h.calls.at(-1)!.body, { code: 'AAAA-1' });
    const run = await h.run('bill', 'run', '--period', '2026-11');
    assert.deepEqual(h.calls.at(-1)!.body, { period: '2026-11' });
    assert.match(run.out, /bill_1\s+acct_1\s+2026-11\s+29\.90 CNY/);
    await h.run('bill', 'list', '--account', 'acct_1', '--period', '2026-11');
    assert.equal(h.calls.at(-1)!.url.search, '?account=acct_1&period=2026-11');
    const csv = await h.run('bill', 'show', '--bill', 'bill_1', '--csv');
    assert.equal(csv.out, 'description,amountMinor\r\n"Plan, light",2990\r\n');
    const offers = await h.run('offers');
    assert.match(offers.out, /o1\s+Light\s+9\.90 CNY\s+10M tokens/);
    assert.equal((await h.run('bill', 'show', '--bill', 'bill_1', '--csv', '--json')).code, 2);
  });
});
