/**
 * Issue 12, finding 12: the catalog check, on a real server running the SHIPPED configuration (config/tokengrid.yaml
 * models, coin rates and vendor costs; config/offers.yaml packages). No shipped price sells a model below its vendor
 * cost; an underpriced offer (or one that pays for every model) is reported by GET /admin/offers and the reload.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../support/server.ts';

const SHIPPED_CONFIG = new URL('../../config/tokengrid.yaml', import.meta.url).pathname;
const SHIPPED_OFFERS = readFileSync(new URL('../../config/offers.yaml', import.meta.url), 'utf8');
const offersFile = join(mkdtempSync(join(tmpdir(), 'tg-offers-')), 'offers.yaml');
writeFileSync(offersFile, SHIPPED_OFFERS);
let srv: TestServer;

before(async () => {
  srv = await startTestServer({ configPath: SHIPPED_CONFIG, env: { TOKENGRID_OFFERS_FILE: offersFile } });
});
after(() => srv.close());

test('the shipped catalog sells no model below its configured vendor cost', async () => {
  const r = await srv.admin('GET', '/admin/offers');
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.warnings, []);
  const byId = new Map<string, any>(r.body.data.map((o: any) => [o.id, o]));
  assert.ok(byId.get('ct-personal-light'), 'the shipped offers are on sale');
});

test('an underpriced package, a package paying for every model and a cheap pay-as-you-go rate are reported', async () => {
  writeFileSync(
    offersFile,
    `${SHIPPED_OFFERS}
  cheap-premium:
    name: "Premium for pennies"
    type: plan
    price: "10.00"
    cycle: month
    allowance: { tokens: 10M }
    models: [premium]
  everything-lite:
    name: "Everything, lite"
    type: pack
    price: "39.00"
    validityDays: 30
    allowance: { tokens: 35M }
  cheap-payg:
    name: "Pay-as-you-go, cheap"
    type: payg
    payg: { tokensPerYuan: 2000000 }
`,
  );
  const reload = await srv.admin('POST', '/admin/offers/reload');
  assert.equal(reload.status, 200, JSON.stringify(reload.body));
  const warnings: string[] = (await srv.admin('GET', '/admin/offers')).body.warnings;
  const about = (id: string) => warnings.filter((w) => w.startsWith(`offers.${id}`));
  // 1.00 CNY per 1M coins: claude-4.7 output at 44 coins = 44.00 CNY per 1M, below its 108.00
  assert.ok(
    about('cheap-premium').some((w) => /sells claude-4\.7 below its vendor cost .*output 44\.00 < 108\.00/.test(w)),
    warnings.join('\n'),
  );
  assert.equal(about('cheap-premium').length, 3, 'each premium model once');
  // no models listed: it pays for every model, the premium ones included
  assert.ok(
    about('everything-lite').some((w) => /sells gpt-5\.5 below/.test(w)),
    warnings.join('\n'),
  );
  assert.ok(
    about('cheap-payg.payg').some((w) => /2000000 tokens per CNY sells deepseek-v3\.2 below its vendor cost .*input 0\.50 < 2\.00/.test(w)),
    warnings.join('\n'),
  );
  assert.deepEqual(
    warnings.filter((w) => !/^offers\.(cheap-premium|everything-lite|cheap-payg)/.test(w)),
    [],
    'the shipped offers stay clean',
  );
});
