/**
 * Issue 12 item 11 (secrets) and issue 13 item 7 (newcomer stumbles): file modes of the data folder, the admin
 * key never printed, a minimum strength for TOKENGRID_ADMIN_KEY, root key rotation, signed-only webhooks, a
 * token for /metrics, the CLI finding the server through TOKENGRID_PORT, the banner kept out of the JSON log,
 * and the demo key shown again.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startTestServer, TEST_CONFIG, type TestServer } from '../support/server.ts';
import { createApp } from '../../src/app.ts';
import { runCli, type CliIo } from '../../src/cli/main.ts';

const MAIN = new URL('../../src/main.ts', import.meta.url).pathname;
const METRICS_TOKEN = 'metrics-token-for-the-scraper-0123';
const mode = (p: string) => statSync(p).mode & 0o777;

let srv: TestServer;
before(async () => {
  srv = await startTestServer({ env: { TOKENGRID_METRICS_TOKEN: METRICS_TOKEN, TOKENGRID_WEBHOOK_URL: 'http://127.0.0.1:9/hook' } });
});
after(() => srv.close());

async function cli(argv: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    env,
    cwd: process.cwd(),
    fetch: globalThis.fetch,
    nowMs: () => Date.now(),
    uuid: () => `u-${Math.random()}`,
  };
  return { code: await runCli(argv, io), stdout, stderr };
}

/** `npm start` as a newcomer runs it: a child process on a fresh data folder, stopped once it listens. */
function startMain(dataDir: string, env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, '--config', TEST_CONFIG], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const deadline = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
      if (/curl /.test(stderr) || /admin key: in /.test(stderr)) child.kill('SIGTERM');
    });
    child.on('exit', (code) => {
      clearTimeout(deadline);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('the first start of npm start', () => {
  const dataDir = join(mkdtempSync(join(tmpdir(), 'tokengrid-secrets-')), 'data');
  after(() => rmSync(join(dataDir, '..'), { recursive: true, force: true }));
  let run: { code: number | null; stdout: string; stderr: string };
  before(async () => {
    run = await startMain(dataDir);
  });

  test('prints where the admin key is, never the key; the banner is plain text on stderr, stdout holds only JSON log lines', () => {
    const adminKey = readFileSync(join(dataDir, 'admin-key'), 'utf8').trim();
    const demoKey = readFileSync(join(dataDir, 'demo-key'), 'utf8').trim();
    assert.match(adminKey, /^tgadmin-/);
    assert.equal(run.stdout.includes(adminKey), false, 'stdout does not contain the admin key');
    assert.equal(run.stderr.includes(adminKey), false, 'stderr does not contain the admin key');
    assert.equal(run.stdout.includes(demoKey) || run.stderr.includes(demoKey), false, 'the demo key is in its file, not in the output');
    assert.ok(run.stderr.includes(join(dataDir, 'admin-key')), run.stderr);
    assert.ok(run.stderr.includes(join(dataDir, 'demo-key')));
    assert.match(run.stderr, /TokenGrid is listening on http:\/\/127\.0\.0\.1:\d+/);
    const lines = run.stdout.split('\n').filter((l) => l.length > 0);
    assert.ok(lines.length > 0);
    for (const l of lines) assert.doesNotThrow(() => JSON.parse(l), `a JSON log line: ${l}`);
  });

  test('the data folder is 0700 and the database, its WAL and the key files 0600', () => {
    assert.equal(mode(dataDir), 0o700);
    for (const f of ['tokengrid.db', 'admin-key', 'demo-key']) assert.equal(mode(join(dataDir, f)), 0o600, f);
    if (existsSync(join(dataDir, 'tokengrid.db-wal'))) assert.equal(mode(join(dataDir, 'tokengrid.db-wal')), 0o600);
  });

  test('tokengrid demo-key shows the demo key again', async () => {
    const r = await cli(['demo-key', '--data-dir', dataDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), readFileSync(join(dataDir, 'demo-key'), 'utf8').trim());
  });
});

describe('TOKENGRID_ADMIN_KEY', () => {
  test('shorter than 32 characters: the server refuses to start and says why', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tokengrid-weak-'));
    try {
      await assert.rejects(
        createApp({
          configPath: TEST_CONFIG,
          dataDir: dir,
          port: 0,
          env: { TOKENGRID_ADMIN_KEY: 'admin123' },
          timers: false,
          logger: pino({ level: 'silent' }),
        }),
        /TOKENGRID_ADMIN_KEY is too short \(8 characters\): use at least 32/,
      );
      const r = await startMain(join(dir, 'data2'), { TOKENGRID_ADMIN_KEY: 'admin123' });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /TOKENGRID_ADMIN_KEY is too short/);
      assert.equal(r.stderr.includes('    at '), false, 'a message, not a stack trace');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('root admin key rotation', () => {
  test('tokengrid admin-key rotate writes a new key to data/admin-key, prints the path, and the old key stops working', async () => {
    const old = srv.adminKey;
    const r = await cli(['admin-key', 'rotate', '--url', srv.url, '--data-dir', srv.dataDir]);
    assert.equal(r.code, 0, r.stderr);
    const fresh = readFileSync(join(srv.dataDir, 'admin-key'), 'utf8').trim();
    assert.notEqual(fresh, old);
    assert.equal(mode(join(srv.dataDir, 'admin-key')), 0o600);
    assert.ok(r.stdout.includes(join(srv.dataDir, 'admin-key')));
    assert.equal(r.stdout.includes(fresh), false, 'the new key is not printed');
    const get = (key: string) => fetch(`${srv.url}/admin/accounts`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal((await get(old)).status, 401);
    assert.equal((await get(fresh)).status, 200);
    const entry = ((await (await fetch(`${srv.url}/admin/audit?action=root-key.rotate`, { headers: { authorization: `Bearer ${fresh}` } })).json()) as any)
      .data[0];
    assert.equal(entry.actor, 'root');
    srv.adminKey = fresh;
  });
});

describe('webhooks and /metrics', () => {
  test('a webhook without a secret gets a generated one in the data folder (0600); a short one is refused', async () => {
    const file = join(srv.dataDir, 'webhook-secret');
    assert.ok(existsSync(file));
    assert.equal(mode(file), 0o600);
    assert.ok(readFileSync(file, 'utf8').trim().length >= 32);
    assert.match(readFileSync(file, 'utf8').trim(), /^whsec_/, 'a generated secret is in the Standard Webhooks format');
    const dir = mkdtempSync(join(tmpdir(), 'tokengrid-hook-'));
    try {
      await assert.rejects(
        createApp({
          configPath: TEST_CONFIG,
          dataDir: dir,
          port: 0,
          timers: false,
          logger: pino({ level: 'silent' }),
          env: { TOKENGRID_WEBHOOK_URL: 'http://127.0.0.1:9/h', TOKENGRID_WEBHOOK_SECRET: 'short' },
        }),
        /TOKENGRID_WEBHOOK_SECRET is too short/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('with TOKENGRID_METRICS_TOKEN, /metrics needs the token', async () => {
    assert.equal((await fetch(`${srv.url}/metrics`)).status, 401);
    assert.equal((await fetch(`${srv.url}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
    const ok = await fetch(`${srv.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /tokengrid_auth_failures_total/);
  });
});

describe('the CLI finds the server', () => {
  test('through TOKENGRID_PORT (and TOKENGRID_HOST) when neither --url nor TOKENGRID_URL is given', async () => {
    const port = new URL(srv.url).port;
    const r = await cli(['balance', '--account', srv.demoAccountId, '--json', '--data-dir', srv.dataDir], { TOKENGRID_PORT: port });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).accountId, srv.demoAccountId);
    const h = await cli(['balance', '--account', srv.demoAccountId, '--json', '--data-dir', srv.dataDir], { TOKENGRID_PORT: port, TOKENGRID_HOST: '0.0.0.0' });
    assert.equal(h.code, 0, h.stderr);
  });
});
