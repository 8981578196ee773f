/**
 * The `tokengrid` CLI as an operator runs it: a child process (`node bin/tokengrid.js ... --json`) talking to a
 * real server over the admin API. Checks the JSON it prints and the state the server ends up in.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { basename, dirname } from 'node:path';
import { startTestServer, type TestServer } from '../support/server.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const BIN = new URL('../../bin/tokengrid.js', import.meta.url).pathname;

let srv: TestServer;
before(async () => {
  srv = await startTestServer();
});
after(() => srv.close());

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The operator's shell, minus any TOKENGRID_* of the machine running the tests. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TOKENGRID_')) env[k] = v;
  return { ...env, ...extra };
}

function runCli(args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: opts.cwd ?? ROOT, env: cleanEnv({ TOKENGRID_CLI_FROM_SOURCE: '1', ...opts.env }), timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** With the server address and admin key, asking for JSON. */
const cli = (...args: string[]): Promise<Run> => runCli([...args, '--url', srv.url, '--admin-key', srv.adminKey, '--json']);

async function ok(...args: string[]): Promise<any> {
  const r = await cli(...args);
  assert.equal(r.code, 0, `tokengrid ${args.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const nextYear = new Date().getUTCFullYear() + 1;

describe('tokengrid against a running server', () => {
  let accountId: string;

  test('account create prints the new account and the server has it', async () => {
    const account = await ok('account', 'create', '--name', 'Li Wei family', '--kind', 'family');
    assert.match(account.id, /^acct_/);
    accountId = account.id;
    const stored = await srv.admin('GET', `/admin/accounts/${accountId}`);
    assert.equal(stored.status, 200);
    assert.equal(stored.body.name, 'Li Wei family');
    assert.equal(stored.body.kind, 'family');
    const list = await ok('account', 'list');
    assert.ok(list.data.some((a: { id: string }) => a.id === accountId));
  });

  test('grant and topup add buckets that balance reports in tokens and minor units', async () => {
    const bucket = await ok('grant', '--account', accountId, '--tokens', '30M', '--kind', 'trial', '--expires', `${nextYear}-12-25`);
    assert.equal(bucket.granted, 30_000_000);
    assert.equal(bucket.kind, 'trial');
    assert.equal(bucket.expiresAt, `${nextYear}-12-25T00:00:00.000Z`);
    const wallet = await ok('topup', '--account', accountId, '--amount', '10.50');
    assert.equal(wallet.remaining, 1050);
    assert.equal(wallet.currency, 'CNY');

    const balance = await ok('balance', '--account', accountId);
    assert.equal(balance.accountId, accountId);
    const byKind = Object.fromEntries(balance.buckets.map((b: { kind: string }) => [b.kind, b]));
    assert.deepEqual(
      { unit: byKind.trial.unit, granted: byKind.trial.granted, used: byKind.trial.used, reserved: byKind.trial.reserved, remaining: byKind.trial.remaining },
      { unit: 'tokens', granted: 30_000_000, used: 0, reserved: 0, remaining: 30_000_000 },
    );
    assert.equal(byKind.wallet.remaining, 1050);
    const server = await srv.admin('GET', `/admin/accounts/${accountId}/balance`);
    assert.deepEqual(balance, server.body);
  });

  test('balance without --json speaks plain terms', async () => {
    const r = await runCli(['balance', '--account', accountId, '--url', srv.url, '--admin-key', srv.adminKey]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`30M of 30M tokens left, expires ${nextYear}-12-25`));
    assert.match(r.stdout, /wallet\s+10\.50 CNY left/);
  });

  test('key create returns a working key with the asked limits; usage then shows the request', async () => {
    const key = await ok(
      'key',
      'create',
      '--account',
      accountId,
      '--models',
      'deepseek-v3.2,glm-5',
      '--rpm',
      '60',
      '--tpm',
      '100000',
      '--concurrency',
      '2',
      '--expires',
      `${nextYear}-06-30T12:00:00+08:00`,
    );
    assert.match(key.key, /^tg-/);
    assert.match(key.id, /^key_/);
    const keys = await srv.admin('GET', `/admin/keys?account=${accountId}`);
    const stored = keys.body.data.find((k: { id: string }) => k.id === key.id);
    assert.deepEqual(stored.allowedModels, ['deepseek-v3.2', 'glm-5']);
    assert.deepEqual(stored.limits, { requestsPerMinute: 60, tokensPerMinute: 100_000, concurrentRequests: 2 });
    assert.equal(stored.expiresAt, `${nextYear}-06-30T04:00:00.000Z`);

    const chat = await fetch(`${srv.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'deepseek-v3.2', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(chat.status, 200);
    await chat.text();
    const summary = await ok('usage', '--account', accountId);
    assert.equal(summary.data.length, 1);
    assert.equal(summary.data[0].requests, 1);
    const records = await ok('usage', '--account', accountId, '--records');
    assert.equal(records.data.length, 1);
    assert.equal(records.data[0].keyId, key.id);

    const listed = await ok('key', 'list', '--account', accountId);
    assert.deepEqual(
      listed.data.map((k: { id: string }) => k.id),
      [key.id],
    );
    const revoked = await ok('key', 'revoke', '--key', key.id);
    assert.ok(revoked.revokedAt);
    const after = await fetch(`${srv.url}/v1/models`, { headers: { authorization: `Bearer ${key.key}` } });
    assert.equal(after.status, 401);
  });

  test("an unknown account exits 1 with the server's message on stderr and nothing on stdout", async () => {
    const r = await cli('balance', '--account', 'acct_doesnotexist');
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /account acct_doesnotexist does not exist/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  test('a bad amount exits 2 and changes nothing on the server', async () => {
    for (const amount of ['=-5', '1.234', 'ten']) {
      const args = amount.startsWith('=') ? ['topup', '--account', accountId, `--amount${amount}`] : ['topup', '--account', accountId, '--amount', amount];
      const r = await cli(...args);
      assert.equal(r.code, 2, `--amount ${amount}: ${r.stderr}`);
      assert.match(r.stderr, /--amount/);
      assert.equal(r.stdout, '');
    }
    const balance = await srv.admin('GET', `/admin/accounts/${accountId}/balance`);
    assert.equal(balance.body.buckets.find((b: { kind: string }) => b.kind === 'wallet').remaining, 1050);
  });

  test("the admin key is read from the data folder's admin-key file, relative to the working directory", async () => {
    const r = await runCli(['account', 'show', '--account', accountId, '--url', srv.url, '--data-dir', basename(srv.dataDir), '--json'], {
      cwd: dirname(srv.dataDir),
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).id, accountId);
    const env = await runCli(['account', 'list', '--json'], { env: { TOKENGRID_URL: srv.url, TOKENGRID_DATA_DIR: srv.dataDir } });
    assert.equal(env.code, 0, env.stderr);
  });

  test('a wrong admin key exits 1 and says where the key came from', async () => {
    const r = await runCli(['account', 'list', '--json'], { env: { TOKENGRID_URL: srv.url, TOKENGRID_ADMIN_KEY: 'tgadmin-wrong' } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /admin key is required.*TOKENGRID_ADMIN_KEY/);
  });
});

describe('tokengrid and the admin API do the same things with the same results', () => {
  test('subscribe, codes, redeem and offers through the CLI leave the state the admin API would', async () => {
    const offers = await ok('offers');
    const ids = (offers.data ?? offers.offers ?? []).map((o: { id: string }) => o.id);
    assert.ok(ids.includes('ct-personal-light'), 'the shipped catalog is listed');

    // The same subscription once through the CLI, once through the admin API: same offer, same buckets.
    const viaCli = await ok('account', 'create', '--name', 'via cli', '--offer', 'ct-personal-light');
    const viaApi = (await srv.admin('POST', '/admin/accounts', { name: 'via api' })).body;
    const sub = await fetch(`${srv.url}/admin/subscriptions`, {
      method: 'POST',
      body: JSON.stringify({ accountId: viaApi.id, offerId: 'ct-personal-light' }),
      headers: { authorization: `Bearer ${srv.adminKey}`, 'content-type': 'application/json', 'idempotency-key': 'cli-vs-api' },
    });
    assert.equal(sub.status, 201);
    const shape = async (id: string) =>
      (await ok('balance', '--account', id)).buckets
        .map((b: any) => ({ kind: b.kind, unit: b.unit, granted: b.granted, remaining: b.remaining, expiresAt: b.expiresAt?.slice(0, 10) ?? null }))
        .sort((a: any, b: any) => a.kind.localeCompare(b.kind));
    assert.deepEqual(await shape(viaCli.id), await shape(viaApi.id));

    const batch = await ok('codes', 'create', '--offer', 'ct-tokens-10m', '--count', '2');
    assert.equal(batch.codes.length, 2);
    const redeemed = await ok('redeem', '--account', viaCli.id, '--code', batch.codes[0]);
    assert.ok(redeemed);
    const again = await cli('redeem', '--account', viaApi.id, '--code', batch.codes[0]);
    assert.equal(again.code, 1, 'a used code is refused');
    assert.match(again.stderr, /code/i);
    const forged = await cli('redeem', '--account', viaApi.id, '--code', 'AAAA-BBBB-CCCC-DDDD');
    assert.equal(forged.code, 1, 'a forged code is refused');
    const granted = (await ok('balance', '--account', viaCli.id)).buckets.reduce((s: number, b: any) => s + (b.unit === 'tokens' ? b.granted : 0), 0);
    assert.equal(granted, 20_000_000, 'plan 10M + redeemed 10M pack');
  });
});
