/**
 * QoS under contention (issue 17 item 2), on the real server with the in-process emulator:
 *   node --import tsx bench/qos-priority.ts
 * One upstream limited to 4 concurrent requests answers each in 300 ms (capacity ~13 requests/s). For 6 s a
 * request arrives every 50 ms (20/s, open loop): one in five from an account with the speed-up pack (qos:
 * priority), the rest from a standard account; both on the developer plan (at most 16 concurrent requests per
 * account: beyond that the plan's own limit answers rate_limited). Prints per class: answered, refusals by code,
 * and latency p50 / p95 / max.
 * Standard requests queue (their latency grows with the backlog); priority ones are admitted ahead of them.
 * A quick figure for the feature owner, not part of `npm run bench`.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, TEST_CONFIG } from '../test/support/server.ts';

const model = `
  busy-model:
    vendor: deepseek
    groups: [basic]
    contextWindow: 131072
    maxOutputTokens: 8192
    deployments: [{ provider: mock, upstreamModel: "busy@hangms=300", region: local, qos: { maxConcurrent: 4, queueMax: 200, queueTimeoutMs: 60000 } }]
    cost: { input: 2000000, output: 3000000 }
    coins: { input: 1, output: 1 }
`;
const dir = mkdtempSync(join(tmpdir(), 'tg-qos-bench-'));
const cfg = join(dir, 'c.yaml');
writeFileSync(
  cfg,
  `${readFileSync(TEST_CONFIG, 'utf8')
    .trimEnd()
    .replace(/timeoutMsUpstream(Headers|Body): \d+/g, 'timeoutMsUpstream$1: 20000')}\n${model}`,
);
const offers = join(dir, 'offers.yaml');
writeFileSync(offers, readFileSync(new URL('../config/offers.yaml', import.meta.url), 'utf8').replace(/package-basic|package-developer/g, 'basic'));

const srv = await startTestServer({ configPath: cfg, env: { TOKENGRID_OFFERS_FILE: offers } });
const post = (path: string, body: unknown, idem: string) =>
  fetch(srv.url + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${srv.adminKey}`, 'content-type': 'application/json', 'idempotency-key': idem },
    body: JSON.stringify(body),
  });
async function account(speedUp: boolean): Promise<string> {
  const a = await srv.admin('POST', '/admin/accounts', { name: `bench-${speedUp}` });
  const k = await srv.admin('POST', '/admin/keys', { accountId: a.body.id });
  await post('/admin/orders/topup', { accountId: a.body.id, amount: '1000.00' }, `t-${a.body.id}`);
  await post('/admin/subscriptions', { accountId: a.body.id, offerId: 'ct-dev-basic', channel: 'wallet' }, `s-${a.body.id}`);
  if (speedUp) await post(`/admin/accounts/${a.body.id}/addons`, { offerId: 'ct-broadband-speedup' }, `a-${a.body.id}`);
  return k.body.key as string;
}
const keys = { standard: await account(false), priority: await account(true) };
await srv.app.refreshPlanLimits();

const results: Record<'standard' | 'priority', { ms: number[]; refused: Record<string, number> }> = {
  standard: { ms: [], refused: {} },
  priority: { ms: [], refused: {} },
};
const inflight: Promise<void>[] = [];
for (let i = 0; i < 120; i++) {
  const cls = i % 5 === 4 ? 'priority' : 'standard';
  const t0 = performance.now();
  inflight.push(
    fetch(`${srv.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keys[cls]}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'busy-model', max_tokens: 16, messages: [{ role: 'user', content: 'hello' }] }),
    }).then(async (r) => {
      const body = (await r.json()) as { error?: { code: string } };
      if (r.status === 200) results[cls].ms.push(performance.now() - t0);
      else results[cls].refused[body.error?.code ?? String(r.status)] = (results[cls].refused[body.error?.code ?? String(r.status)] ?? 0) + 1;
    }),
  );
  await new Promise((r) => setTimeout(r, 50));
}
await Promise.all(inflight);
await srv.close();

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0);
};
for (const cls of ['priority', 'standard'] as const) {
  const r = results[cls];
  console.log(
    `${cls.padEnd(9)} answered ${String(r.ms.length).padStart(3)}  refused ${JSON.stringify(r.refused)}  latency ms p50 ${pct(r.ms, 50)}  p95 ${pct(r.ms, 95)}  max ${Math.round(Math.max(...r.ms))}`,
  );
}
