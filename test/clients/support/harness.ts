/**
 * The compatibility tests' harness: a real TokenGrid server (emulator upstreams) behind a small recording
 * proxy on a random loopback port. Clients talk to the proxy, so every HTTP request a client makes is seen
 * (method, path, status, the server's x-request-id, request and response bodies) without touching the
 * client. `assertChargedOnce` then compares what the clients were answered with the server's usage records:
 * one record per completed inference response, none duplicated, none for a refused request, and the
 * record's tokens equal the usage the client was shown.
 */
import http from 'node:http';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { startTestServer, TEST_CONFIG, type TestServer } from '../../support/server.ts';

export interface Exchange {
  method: string;
  path: string;
  status: number;
  requestId: string | null;
  reqHeaders: http.IncomingHttpHeaders;
  reqBody: string;
  resHeaders: http.IncomingHttpHeaders;
  resBody: string;
}

export interface ClientUsage {
  input: number;
  output: number;
}

export interface Harness {
  srv: TestServer;
  /** The proxy's base URL (no trailing slash, no /v1). */
  url: string;
  exchanges: Exchange[];
  /** Index to pass to `since`/`assertChargedOnce` for the exchanges a test makes from now on. */
  mark(): number;
  since(mark: number): Exchange[];
  /** Inference requests (chat, completions, responses, messages, embeddings) since the mark. */
  inference(mark: number): Exchange[];
  /** Upstream calls the emulator has answered so far. */
  upstreamCalls(): number;
  /** An account's usage records (all of them; the demo account's by default). */
  usageRecords(accountId?: string): Promise<any[]>;
  /** A fresh account with `tokens` in one trial bucket (overage blocked) and an API key for it. */
  account(tokens: number): Promise<{ id: string; key: string }>;
  /** A fresh account subscribed to `offerId` (paid by phone bill) and an API key for it; plan limits and model maps refreshed. */
  subscriber(offerId: string): Promise<{ id: string; key: string }>;
  /**
   * Every inference exchange since `mark` that the server answered 200 has exactly one usage record with
   * its request id, status ok, and tokens equal to the usage the client was shown; refused exchanges have
   * none; and the account gained exactly that many records. Returns the exchanges it checked.
   */
  assertChargedOnce(mark: number, recordsBefore: number, accountId?: string): Promise<{ completed: Exchange[]; records: any[] }>;
  close(): Promise<void>;
}

const INFERENCE = /^\/(v1\/)?(chat\/completions|completions|responses|messages|embeddings)(\?|$)/;

export interface HarnessOptions {
  /** Request body limit; coding agents send 80 KB+ (Claude Code's 24 tools), more than test-config.yaml's 64 KB. */
  bodyLimitBytes?: number;
  /** Upstream header/body timeouts (the shared test config's 1.5 s is tight on a loaded 2-core machine). */
  upstreamTimeoutMs?: number;
  /** An offer catalog (YAML text) to serve instead of config/offers.yaml (written next to the config). */
  offersYaml?: string;
}

/**
 * The shared test config (test/support/test-config.yaml, so models and aliases added there are seen here)
 * with the server limits the clients need, written to a temp file.
 */
function harnessConfig(o: HarnessOptions): { path: string; dir: string } {
  const cfg = parse(readFileSync(TEST_CONFIG, 'utf8'));
  cfg.server.bodyLimitBytes = o.bodyLimitBytes ?? 10 * 1024 * 1024;
  cfg.server.timeoutMsUpstreamHeaders = o.upstreamTimeoutMs ?? 15_000;
  cfg.server.timeoutMsUpstreamBody = o.upstreamTimeoutMs ?? 15_000;
  const dir = mkdtempSync(join(tmpdir(), 'tokengrid-clients-cfg-'));
  const path = join(dir, 'config.yaml');
  writeFileSync(path, stringify(cfg));
  return { path, dir };
}

export async function startHarness(o: HarnessOptions = {}): Promise<Harness> {
  const cfg = harnessConfig(o);
  const env: Record<string, string> = {};
  if (o.offersYaml !== undefined) {
    env.TOKENGRID_OFFERS_FILE = join(cfg.dir, 'offers.yaml');
    writeFileSync(env.TOKENGRID_OFFERS_FILE, o.offersYaml);
  }
  const srv = await startTestServer({ configPath: cfg.path, env });
  const target = new URL(srv.url);
  const exchanges: Exchange[] = [];
  const proxy = http.createServer((req, res) => {
    const reqChunks: Buffer[] = [];
    req.on('data', (c: Buffer) => reqChunks.push(c));
    req.on('end', () => {
      const reqBody = Buffer.concat(reqChunks);
      const up = http.request(
        {
          host: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: target.host },
        },
        (upRes) => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          const resChunks: Buffer[] = [];
          upRes.on('data', (c: Buffer) => {
            resChunks.push(c);
            res.write(c);
          });
          upRes.on('end', () => {
            exchanges.push({
              method: req.method ?? '',
              path: req.url ?? '',
              status: upRes.statusCode ?? 0,
              requestId: (upRes.headers['x-request-id'] as string | undefined) ?? null,
              reqHeaders: req.headers,
              reqBody: reqBody.toString('utf8'),
              resHeaders: upRes.headers,
              resBody: Buffer.concat(resChunks).toString('utf8'),
            });
            res.end();
          });
          upRes.on('error', () => res.destroy());
        },
      );
      up.on('error', () => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
      up.end(reqBody);
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;

  const usageRecords = async (accountId = srv.demoAccountId): Promise<any[]> => {
    const r = await srv.admin('GET', `/admin/accounts/${accountId}/usage?detail=records`);
    assert.equal(r.status, 200);
    return r.body.data;
  };
  const inference = (mark: number) => exchanges.slice(mark).filter((e) => e.method === 'POST' && INFERENCE.test(e.path));

  return {
    srv,
    url,
    exchanges,
    mark: () => exchanges.length,
    since: (mark) => exchanges.slice(mark),
    inference,
    upstreamCalls: () => srv.app.emulator!.stats().requests,
    usageRecords,
    async account(tokens) {
      const a = await srv.admin('POST', '/admin/accounts', { name: `clients-${tokens}-${exchanges.length}-${Date.now()}` });
      assert.equal(a.status, 201);
      assert.equal((await srv.admin('PUT', `/admin/accounts/${a.body.id}/policy`, { overage: 'block' })).status, 200);
      if (tokens > 0) assert.equal((await srv.admin('POST', `/admin/accounts/${a.body.id}/grants`, { amount: tokens, kind: 'trial' })).status, 201);
      const k = await srv.admin('POST', '/admin/keys', { accountId: a.body.id });
      assert.equal(k.status, 201);
      return { id: a.body.id, key: k.body.key };
    },
    async assertChargedOnce(mark, recordsBefore, accountId) {
      const ex = inference(mark);
      const completed = ex.filter((e) => e.status === 200);
      const refused = ex.filter((e) => e.status !== 200);
      const all = await usageRecords(accountId);
      assert.equal(
        all.length - recordsBefore,
        completed.length,
        `one usage record per completed response (${completed.length} completed: ${completed.map((e) => e.path).join(', ')})`,
      );
      const ids = new Set(all.map((r) => r.requestId));
      assert.equal(ids.size, all.length, 'no request id is charged twice');
      const records: any[] = [];
      for (const e of completed) {
        assert.ok(e.requestId, `${e.path} answered with an x-request-id`);
        const rec = all.find((r) => r.requestId === e.requestId);
        assert.ok(rec, `usage record for ${e.path} ${e.requestId}`);
        assert.equal(rec.status, 'ok', `${e.requestId} settled ok`);
        assert.ok(rec.costCoins > 0, `${e.requestId} cost something`);
        const shown = clientUsage(e.resBody);
        if (shown) {
          assert.equal(rec.usage.tokensInput, shown.input, `${e.path} ${e.requestId}: input tokens charged = input tokens shown`);
          assert.equal(rec.usage.tokensOutput, shown.output, `${e.path} ${e.requestId}: output tokens charged = output tokens shown`);
        }
        records.push(rec);
      }
      for (const e of refused) {
        assert.ok(!e.requestId || !ids.has(e.requestId), `refused ${e.path} (${e.status}) is not charged`);
      }
      return { completed, records };
    },
    async subscriber(offerId) {
      const a = await srv.admin('POST', '/admin/accounts', { name: `subscriber-${offerId}-${exchanges.length}-${Date.now()}` });
      assert.equal(a.status, 201);
      const sub = await fetch(`${srv.url}/admin/subscriptions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${srv.adminKey}`, 'content-type': 'application/json', 'idempotency-key': `sub-${a.body.id}` },
        body: JSON.stringify({ accountId: a.body.id, offerId, channel: 'phone_bill' }),
      });
      assert.equal(sub.status, 201, await sub.text());
      const k = await srv.admin('POST', '/admin/keys', { accountId: a.body.id });
      assert.equal(k.status, 201);
      await srv.app.refreshPlanLimits();
      return { id: a.body.id, key: k.body.key };
    },
    async close() {
      await new Promise<void>((resolve) => {
        proxy.close(() => resolve());
        proxy.closeAllConnections();
      });
      await srv.close();
      rmSync(cfg.dir, { recursive: true, force: true });
    },
  };
}

/** The usage a response body (JSON or SSE) showed the client, in TokenGrid's terms (input includes cached). */
export function clientUsage(body: string): ClientUsage | null {
  const objects: any[] = [];
  const trimmed = body.trimStart();
  if (trimmed.startsWith('{')) {
    try {
      objects.push(JSON.parse(trimmed));
    } catch {
      return null;
    }
  } else {
    for (const line of body.split('\n')) {
      if (!line.startsWith('data:')) continue;
      const data = line.slice(5).trim();
      if (!data.startsWith('{')) continue;
      try {
        objects.push(JSON.parse(data));
      } catch {
        /* not JSON */
      }
    }
  }
  const acc: Record<string, number> = {};
  let seen = false;
  const visit = (o: any, depth: number) => {
    if (!o || typeof o !== 'object' || depth > 4) return;
    if (o.usage && typeof o.usage === 'object') {
      seen = true;
      for (const [k, v] of Object.entries(o.usage)) if (typeof v === 'number') acc[k] = v;
    }
    for (const k of ['response', 'message']) if (o[k]) visit(o[k], depth + 1);
  };
  for (const o of objects) visit(o, 0);
  if (!seen) return null;
  if ('prompt_tokens' in acc) return { input: acc.prompt_tokens!, output: acc.completion_tokens ?? 0 };
  if (
    'input_tokens' in acc &&
    ('cache_read_input_tokens' in acc || 'cache_creation_input_tokens' in acc || !('output_tokens_details' in acc || 'input_tokens_details' in acc))
  ) {
    // Anthropic (input excludes cache reads and writes) or a Responses usage without details.
    const anthropic = objects.some((o) => typeof o.type === 'string' && (o.type === 'message' || o.type.startsWith('message_')));
    if (anthropic)
      return { input: acc.input_tokens! + (acc.cache_read_input_tokens ?? 0) + (acc.cache_creation_input_tokens ?? 0), output: acc.output_tokens ?? 0 };
  }
  if ('input_tokens' in acc) return { input: acc.input_tokens!, output: acc.output_tokens ?? 0 };
  return null;
}
