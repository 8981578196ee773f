/**
 * `model: "auto"` on the real server (issue 17 item 1): the gateway chooses among the tiered models the key
 * may use, says which and why in `x-tokengrid-route`, names the model in the response and the usage record;
 * a key restricted to one model gets that model; `auto:cheap` picks the cheapest allowed; an unknown policy
 * is a 404 model_not_found in the family's format.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../support/server.ts';

/** The shipped offers with their groups mapped to the test config's, plus a plan that pays for the basic group only. */
function offersFile(): string {
  const text = readFileSync(new URL('../../config/offers.yaml', import.meta.url), 'utf8').replace(/package-basic|package-developer/g, 'basic');
  const plan = [
    '  auto-basic-plan:',
    '    name: "Basic models only"',
    '    type: plan',
    '    price: "1.00"',
    '    cycle: month',
    '    allowance: { tokens: 1M }',
    '    models: [basic]',
    '    channel: wallet',
    '  auto-tiny-plan:',
    '    name: "Basic models, a tiny allowance"',
    '    type: plan',
    '    price: "0.10"',
    '    cycle: month',
    '    allowance: { tokens: 40 }',
    '    overage: wallet',
    '    models: [basic]',
    '    channel: wallet',
    '',
  ].join('\n');
  const file = join(mkdtempSync(join(tmpdir(), 'tg-offers-')), 'offers.yaml');
  writeFileSync(file, `${text.trimEnd()}\n${plan}`);
  return file;
}

let srv: TestServer;
before(async () => {
  srv = await startTestServer({ env: { TOKENGRID_OFFERS_FILE: offersFile() } });
});
after(() => srv.close());

const TIERED = new Set(['deepseek-v3.2', 'claude-4.7', 'gemini-3-pro']);

async function post(
  path: string,
  key: string,
  body: unknown,
): Promise<{ status: number; route: string | null; requestId: string | null; body: any; text: string }> {
  const res = await fetch(srv.url + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, route: res.headers.get('x-tokengrid-route'), requestId: res.headers.get('x-request-id'), body: parsed, text };
}

function routedModel(route: string | null): string {
  assert.ok(route, 'x-tokengrid-route is present');
  const m = /^model=([^;]+); reason=([a-z-]+); tier=(\d)$/.exec(route);
  assert.ok(m, `route header shape: ${route}`);
  return m[1]!;
}

async function keyFor(allowedModels: string[]): Promise<string> {
  const k = await srv.admin('POST', '/admin/keys', { accountId: srv.demoAccountId, allowedModels });
  assert.equal(k.status, 201, JSON.stringify(k.body));
  return k.body.key as string;
}

const hi = [{ role: 'user', content: 'hi' }];

describe('model: "auto"', () => {
  test('chat completions answer 200 with the route header; the response and the usage record name the chosen model', async () => {
    const r = await post('/v1/chat/completions', srv.demoKey, { model: 'auto', messages: hi });
    assert.equal(r.status, 200, r.text);
    const model = routedModel(r.route);
    assert.ok(TIERED.has(model), model);
    assert.equal(r.body.model, model);
    const record = await srv.admin('GET', `/admin/usage/${r.requestId}`);
    assert.equal(record.status, 200);
    assert.equal(record.body.model, model);
    // The choice and its reason are on the usage record too (issue 17 item 1), exactly as the header said.
    assert.equal(record.body.serving?.route, r.route);
  });

  test('a streamed auto chat names the chosen model in every chunk', async () => {
    const r = await post('/v1/chat/completions', srv.demoKey, { model: 'auto', stream: true, messages: hi });
    assert.equal(r.status, 200, r.text);
    const model = routedModel(r.route);
    const chunks = r.text
      .split('\n')
      .filter((l) => l.startsWith('data: {'))
      .map((l) => JSON.parse(l.slice(6)));
    assert.ok(chunks.length > 0);
    for (const c of chunks) assert.equal(c.model, model);
  });

  test('/v1/messages answers 200 with the route header and the chosen model', async () => {
    const r = await post('/v1/messages', srv.demoKey, { model: 'auto', max_tokens: 50, messages: hi });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.type, 'message');
    assert.equal(r.body.model, routedModel(r.route));
  });

  test('/v1/responses answers 200 with the route header and the chosen model', async () => {
    const r = await post('/v1/responses', srv.demoKey, { model: 'auto', input: 'hi' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.model, routedModel(r.route));
  });

  test('a key restricted to one model gets that model, whatever the policy', async () => {
    const key = await keyFor(['claude-4.7']);
    for (const model of ['auto', 'auto:cheap', 'auto:best']) {
      const r = await post('/v1/chat/completions', key, { model, messages: hi });
      assert.equal(r.status, 200, r.text);
      assert.equal(routedModel(r.route), 'claude-4.7', model);
      assert.equal(r.body.model, 'claude-4.7');
    }
  });

  test('auto:cheap picks the cheapest model the key may use', async () => {
    const all = await post('/v1/chat/completions', srv.demoKey, { model: 'auto:cheap', messages: hi });
    assert.equal(all.status, 200, all.text);
    assert.equal(routedModel(all.route), 'deepseek-v3.2');
    assert.match(all.route!, /reason=cheapest-/);
    const premium = await keyFor(['claude-4.7', 'gemini-3-pro']);
    const r = await post('/v1/chat/completions', premium, { model: 'auto:cheap', messages: hi });
    assert.equal(r.status, 200, r.text);
    assert.equal(routedModel(r.route), 'gemini-3-pro', 'gemini (6/30 coins) is cheaper than claude (10/40)');
  });

  test('an auto route records on the usage record the vendor cost it saved against what auto:best would take', async () => {
    const cheap = await post('/v1/chat/completions', srv.demoKey, { model: 'auto:cheap', messages: hi });
    const best = await post('/v1/chat/completions', srv.demoKey, { model: 'auto:best', messages: hi });
    assert.equal(cheap.status, 200, cheap.text);
    assert.equal(best.status, 200, best.text);
    const rc = (await srv.admin('GET', `/admin/usage/${cheap.requestId}`)).body;
    const rb = (await srv.admin('GET', `/admin/usage/${best.requestId}`)).body;
    assert.deepEqual(rc.usage, rb.usage, 'the same prompt and answer: the same usage on both models');
    assert.ok(rc.serving.savings.routing > 0, JSON.stringify(rc.serving));
    assert.equal(rc.serving.savings.routing, rb.vendorCostMicros - rc.vendorCostMicros);
    assert.equal(rb.serving.savings?.routing, undefined, 'auto:best saved nothing against itself');
  });

  test('auto:best picks the highest tier the key may use', async () => {
    const r = await post('/v1/chat/completions', srv.demoKey, { model: 'auto:best', messages: hi });
    assert.equal(r.status, 200, r.text);
    const model = routedModel(r.route);
    assert.ok(model === 'claude-4.7' || model === 'gemini-3-pro', model);
    assert.match(r.route!, /tier=3/);
  });

  async function subscriber(offerId: string): Promise<string> {
    const a = await srv.admin('POST', '/admin/accounts', { name: `auto-${offerId}` });
    const k = await srv.admin('POST', '/admin/keys', { accountId: a.body.id });
    const call = async (path: string, body: unknown, idem: string): Promise<number> =>
      (
        await fetch(srv.url + path, {
          method: 'POST',
          headers: { authorization: `Bearer ${srv.adminKey}`, 'content-type': 'application/json', 'idempotency-key': idem },
          body: JSON.stringify(body),
        })
      ).status;
    assert.equal(await call('/admin/orders/topup', { accountId: a.body.id, amount: '10.00' }, `t-${a.body.id}`), 201);
    assert.equal(await call('/admin/subscriptions', { accountId: a.body.id, offerId, channel: 'wallet' }, `s-${a.body.id}`), 201);
    await srv.app.refreshPlanLimits();
    return k.body.key as string;
  }

  test("a subscriber's auto request goes to what the package pays for, even under auto:best", async () => {
    const r = await post('/v1/chat/completions', await subscriber('auto-basic-plan'), { model: 'auto:best', messages: hi });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.route, 'model=deepseek-v3.2; reason=best-covered; tier=2', 'the tier-3 models would spill to the wallet');
  });

  test('once the allowance is used up, auto no longer prefers its models: everything is paid from the wallet', async () => {
    const key = await subscriber('auto-tiny-plan');
    const first = await post('/v1/chat/completions', key, {
      model: 'auto:best',
      messages: [{ role: 'user', content: 'please write a long answer '.repeat(20) }],
    });
    assert.equal(first.status, 200, first.text);
    assert.match(first.route!, /^model=deepseek-v3.2; reason=best-covered/);
    await srv.app.refreshPlanLimits();
    const r = await post('/v1/chat/completions', key, { model: 'auto:best', messages: hi });
    assert.equal(r.status, 200, r.text);
    assert.match(r.route!, /reason=best-wallet; tier=3$/);
  });

  test('count_tokens accepts auto, as Claude Code sends its model there too', async () => {
    const r = await post('/v1/messages/count_tokens', srv.demoKey, { model: 'auto', messages: hi });
    assert.equal(r.status, 200, r.text);
    assert.ok(r.body.input_tokens > 0);
  });

  test('an ordinary model id has no route header', async () => {
    const r = await post('/v1/chat/completions', srv.demoKey, { model: 'deepseek-v3.2', messages: hi });
    assert.equal(r.status, 200);
    assert.equal(r.route, null);
  });

  test("an unknown policy is a 404 model_not_found in the family's format, naming the policies", async () => {
    const o = await post('/v1/chat/completions', srv.demoKey, { model: 'auto:xyz', messages: hi });
    assert.equal(o.status, 404);
    assert.equal(o.body.error.code, 'model_not_found');
    assert.match(o.body.error.message, /auto:cheap/);
    const a = await post('/v1/messages', srv.demoKey, { model: 'auto:xyz', max_tokens: 10, messages: hi });
    assert.equal(a.status, 404);
    assert.equal(a.body.type, 'error');
    assert.equal(a.body.error.type, 'not_found_error');
    assert.match(a.body.error.message, /auto:cheap/);
  });
});
