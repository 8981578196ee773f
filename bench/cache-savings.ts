/**
 * Vendor cost per answered request with the exact response cache and prompt-prefix stickiness each off and on
 * (issue 17 items 4, 5), on the real server with the in-process emulator (its prompt cache per deployment):
 *   node --import tsx bench/cache-savings.ts
 * - cache: 20 questions over one ~1,600-token system prompt, each asked 3 times at temperature 0 (stickiness off).
 * - sticky: 20 documents of ~1,600 tokens, 3 different questions each, temperature 0.7 (response cache off),
 *   on a model with 4 deployments.
 * A quick figure for the feature owners; `npm run bench -- cost` is the published-workload benchmark.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, TEST_CONFIG } from '../test/support/server.ts';

const text = readFileSync(TEST_CONFIG, 'utf8').trimEnd();
const sticky = `
  sticky-model:
    vendor: deepseek
    contextWindow: 131072
    maxOutputTokens: 8192
    deployments:
      - { provider: mock, upstreamModel: sticky-a, region: local, weight: 1 }
      - { provider: mock, upstreamModel: sticky-b, region: local, weight: 1 }
      - { provider: mock, upstreamModel: sticky-c, region: local, weight: 1 }
      - { provider: mock, upstreamModel: sticky-d, region: local, weight: 1 }
    cost: { input: 2000000, output: 3000000, cachedInput: 200000 }
    coins: { input: 1, output: 1, cachedInput: "1/4" }
`;
const cfg = join(mkdtempSync(join(tmpdir(), 'tg-cb-')), 'c.yaml');
writeFileSync(cfg, `${text}\n${sticky}`);
const rules = (i: number) => `Document ${i}: you answer questions about the house rules. Rule: be brief and precise. `.repeat(80);

async function run(feature: 'cache' | 'sticky', mode: 'on' | 'off') {
  const env =
    feature === 'cache'
      ? { TOKENGRID_RESPONSE_CACHE: mode, TOKENGRID_STICKY_PREFIX: 'off' }
      : { TOKENGRID_RESPONSE_CACHE: 'off', TOKENGRID_STICKY_PREFIX: mode };
  const srv = await startTestServer({ configPath: cfg, env });
  let vendor = 0,
    coins = 0,
    n = 0;
  const saved = { cache: 0, prompt_cache: 0 };
  for (let round = 0; round < 3; round++) {
    for (let q = 0; q < 20; q++) {
      // cache: 20 questions asked 3 times at temperature 0 over one system prompt; sticky: 20 documents, 3 different questions each.
      const body =
        feature === 'cache'
          ? {
              model: 'sticky-model',
              temperature: 0,
              messages: [
                { role: 'system', content: rules(0) },
                { role: 'user', content: `question ${q}` },
              ],
            }
          : {
              model: 'sticky-model',
              temperature: 0.7,
              messages: [
                { role: 'system', content: rules(q) },
                { role: 'user', content: `question ${round}` },
              ],
            };
      const r = await fetch(`${srv.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${srv.demoKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      await r.text();
      const rec = (await srv.admin('GET', `/admin/usage/${r.headers.get('x-request-id')}`)).body;
      n++;
      vendor += rec.vendorCostMicros;
      coins += rec.costCoins;
      saved.cache += rec.serving?.savings?.cache ?? 0;
      saved.prompt_cache += rec.serving?.savings?.prompt_cache ?? 0;
    }
  }
  console.log(
    JSON.stringify({
      feature,
      mode,
      answered: n,
      upstreamCalls: srv.app.emulator!.stats().requests,
      vendorMicrosPerAnswered: Math.round(vendor / n),
      coinsPerAnswered: Math.round(coins / n),
      savedMicros: saved,
    }),
  );
  await srv.close();
}
for (const f of ['cache', 'sticky'] as const) for (const m of ['off', 'on'] as const) await run(f, m);
