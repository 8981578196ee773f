/**
 * Regions and residency on the real server (issue 17 item 3). An account on a plan whose offer carries
 * `regions: [cn-east]` is served only by cn-east deployments: a model with deployments in cn-east and sg is
 * always answered from cn-east (the usage record says so); when the cn-east deployment fails, the request gets
 * an error rather than the healthy sg deployment or the sg fallback model; a model served only outside the
 * region is refused with 400 no_deployment_in_region naming the region. An unpinned account is served by the
 * same fallbacks. An operator's pin (PATCH /admin/accounts/:id regions) overrides the package's, and null lifts it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, TEST_CONFIG, type TestServer } from '../support/server.ts';

let srv: TestServer;

function configFile(): string {
  const model = (id: string, deployments: string[], extra: string[] = []): string =>
    [
      `  ${id}:`,
      '    vendor: deepseek',
      '    groups: [basic]',
      '    contextWindow: 131072',
      '    maxOutputTokens: 8192',
      '    capabilities: []',
      '    deployments:',
      ...deployments.map((d) => `      - ${d}`),
      ...extra,
      '    cost: { input: 2000000, output: 3000000 }',
      '    coins: { input: 1, output: 1 }',
    ].join('\n');
  const models = [
    model('east-model', ['{ provider: mock, upstreamModel: "east-ok", region: cn-east }', '{ provider: mock, upstreamModel: "east-sg", region: sg }']),
    model(
      'home-model',
      ['{ provider: mock, upstreamModel: "home-east@fail=503", region: cn-east }', '{ provider: mock, upstreamModel: "home-sg", region: sg, weight: 0 }'],
      ['    fallback: [abroad-model]'],
    ),
    model('abroad-model', ['{ provider: mock, upstreamModel: "abroad-sg", region: sg }']),
  ].join('\n');
  const text = readFileSync(TEST_CONFIG, 'utf8').replace(/^models:\n/m, `models:\n${models}\n`);
  const file = join(mkdtempSync(join(tmpdir(), 'tg-residency-')), 'tokengrid.yaml');
  writeFileSync(file, text);
  return file;
}

function offersFile(): string {
  const resident = [
    '  resident-east:',
    '    name: "Resident plan, East China"',
    '    description: Requests are served in East China only.',
    '    type: plan',
    '    price: "10.00"',
    '    cycle: month',
    '    allowance: { tokens: 10M }',
    '    regions: [cn-east]',
    '',
  ].join('\n');
  const text = readFileSync(new URL('../../config/offers.yaml', import.meta.url), 'utf8')
    .replace(/package-basic|package-developer/g, 'basic')
    .replace(/^offers:\n/m, `offers:\n${resident}`);
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

async function account(offerId: string): Promise<{ id: string; key: string }> {
  const a = await srv.admin('POST', '/admin/accounts', { name: `res-${offerId}-${Math.random()}` });
  const k = await srv.admin('POST', '/admin/keys', { accountId: a.body.id });
  assert.equal((await post('/admin/orders/topup', { accountId: a.body.id, amount: '100.00' }, `t-${a.body.id}`)).status, 201);
  const plan = await post('/admin/subscriptions', { accountId: a.body.id, offerId, channel: 'wallet' }, `s-${a.body.id}`);
  assert.equal(plan.status, 201, JSON.stringify(plan.body));
  await srv.app.refreshPlanLimits();
  return { id: a.body.id, key: k.body.key };
}

async function chat(key: string, model: string): Promise<{ status: number; body: any; requestId: string }> {
  const r = await fetch(`${srv.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, max_tokens: 16, messages: [{ role: 'user', content: 'hello' }] }),
  });
  return { status: r.status, body: await r.json(), requestId: r.headers.get('x-request-id')! };
}

const upstream = (name: string): number => srv.app.emulator!.stats().byModel[name] ?? 0;
const usage = async (requestId: string): Promise<any> => (await srv.admin('GET', `/admin/usage/${requestId}`)).body;

before(async () => {
  srv = await startTestServer({ configPath: configFile(), env: { TOKENGRID_OFFERS_FILE: offersFile() } });
});
after(() => srv.close());

describe('data residency', () => {
  test("the offer's pin reaches the entitlements, and a pinned account is served only in its region", async () => {
    const a = await account('resident-east');
    assert.deepEqual((await srv.admin('GET', `/admin/accounts/${a.id}/entitlements`)).body.regions, ['cn-east']);
    const sgBefore = upstream('east-sg');
    for (let i = 0; i < 8; i++) {
      const r = await chat(a.key, 'east-model');
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const rec = await usage(r.requestId);
      assert.equal(rec.region, 'cn-east');
      assert.equal(rec.deploymentId, 'mock/east-ok@cn-east');
    }
    assert.equal(upstream('east-sg'), sgBefore, 'the sg deployment never saw a pinned request');
  });

  test('when the in-region deployment fails, a pinned request gets an error, never an out-of-region deployment or fallback', async () => {
    const pinned = await account('resident-east');
    const before = { sg: upstream('home-sg'), abroad: upstream('abroad-sg') };
    // Three failures open the cn-east deployment's breaker; then the plan is empty rather than out of region.
    const codes: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await chat(pinned.key, 'home-model');
      codes.push(`${r.status} ${r.body.error?.code}`);
      if (r.body.error?.code === 'no_healthy_deployment')
        assert.match(r.body.error.message, /'home-model' in region cn-east \(this account's data residency\) is cooling down/);
      assert.equal((await srv.admin('GET', `/admin/usage/${r.requestId}`)).status, 404, 'nothing charged');
    }
    assert.deepEqual(codes, ['502 upstream_error', '502 upstream_error', '502 upstream_error', '503 no_healthy_deployment']);
    assert.deepEqual({ sg: upstream('home-sg'), abroad: upstream('abroad-sg') }, before);

    // The same model for an unpinned account: the out-of-region deployment or fallback answers.
    const free = await account('ct-dev-basic');
    const r = await chat(free.key, 'home-model');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((await usage(r.requestId)).region, 'sg');
  });

  test('a model with no deployment in the region is refused in plain words, before any upstream call', async () => {
    const a = await account('resident-east');
    const before = upstream('abroad-sg');
    const r = await chat(a.key, 'abroad-model');
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'no_deployment_in_region');
    assert.equal(r.body.error.param, 'model');
    assert.match(r.body.error.message, /must stay in region cn-east \(data residency\), and 'abroad-model' has no deployment there/);
    assert.equal(upstream('abroad-sg'), before);
    assert.equal((await srv.admin('GET', `/admin/usage/${r.requestId}`)).status, 404, 'nothing charged');
    // GET /v1/models lists only what the account can be served in its region.
    const list = (await (await fetch(`${srv.url}/v1/models`, { headers: { authorization: `Bearer ${a.key}` } })).json()) as { data: { id: string }[] };
    const ids = list.data.map((m) => m.id);
    assert.ok(ids.includes('east-model') && ids.includes('home-model'), ids.join(' '));
    assert.ok(!ids.includes('abroad-model') && !ids.includes('deepseek-v3.2'), ids.join(' '));
  });

  test("an operator's pin overrides the package's, and null lifts it back to the package's", async () => {
    const a = await account('resident-east');
    const set = await srv.admin('PATCH', `/admin/accounts/${a.id}`, { regions: ['sg'] });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.deepEqual(set.body.regions, ['sg']);
    const abroad = await chat(a.key, 'abroad-model');
    assert.equal(abroad.status, 200, JSON.stringify(abroad.body));
    assert.equal((await usage(abroad.requestId)).region, 'sg');
    const east = await chat(a.key, 'east-model');
    assert.equal(east.status, 200);
    assert.equal((await usage(east.requestId)).region, 'sg', 'the pin applies to every model');

    const lifted = await srv.admin('PATCH', `/admin/accounts/${a.id}`, { regions: null });
    assert.equal(lifted.status, 200);
    assert.equal(lifted.body.regions, undefined);
    assert.equal((await chat(a.key, 'abroad-model')).body.error?.code, 'no_deployment_in_region', "back to the package's cn-east pin");

    const bad = await srv.admin('PATCH', `/admin/accounts/${a.id}`, { regions: [] });
    assert.equal(bad.status, 400);
  });
});
