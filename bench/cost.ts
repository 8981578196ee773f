/**
 * `npm run bench -- cost [--quick] [--out FILE]` (issue 17, "Done when"): replays the published workload
 * (bench/workloads/cost.jsonl: chat, agent loops with repeated context, coding sessions) through TokenGrid and
 * the upstream emulator, in-process, at the catalog's vendor prices (config/tokengrid.yaml: every model's
 * `cost`), once per configuration: everything off (baseline), each saving feature alone, and everything on. For
 * each it reports answered requests, answer success (each request's check: the emulator answers from the context
 * it received, so a feature that drops needed context fails it), vendor cost per answered request (the usage
 * records' vendorCostMicros; a cache hit costs the vendor nothing), the saving against the baseline, and the
 * usage records' `serving.savings` (each record carries what its features saved). Writes
 * bench/results/cost-<quick|full>.json. See bench/README.md ("Cost").
 *
 * Deployments: every catalog model is served by the emulator from two deployments (regions a and b, different
 * upstream model names, so a vendor prompt cache is per deployment and keeping a prefix on one deployment
 * matters), with the emulator's `recall` directive. A feature this build does not have is reported as not
 * available (its switch is read from src/config/env.ts), never faked.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { createApp } from '../src/app.ts';
import { SeededRandom } from '../src/core/index.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const at = (p: string): string => join(ROOT, p);
const t0 = performance.now();
const log = (msg: string): void => {
  process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);
};

type Feature = 'routing' | 'cache' | 'sticky' | 'compression';
const FEATURES: Feature[] = ['routing', 'cache', 'sticky', 'compression'];
const FEATURE_LABEL: Record<Feature, string> = {
  routing: 'auto routing (model "auto:cheap" where the workload allows)',
  cache: 'exact response cache',
  sticky: 'prompt-prefix stickiness',
  compression: 'context compression (x-tokengrid-compress: on)',
};

/** Whether this build has the feature, and how it is switched (read from the source, not assumed). */
function availability(): Record<Feature, { available: boolean; why: string }> {
  const env = readFileSync(at('src/config/env.ts'), 'utf8');
  return {
    routing: { available: existsSync(at('src/routing/auto.ts')), why: 'src/routing/auto.ts' },
    cache: { available: env.includes('TOKENGRID_RESPONSE_CACHE'), why: 'env TOKENGRID_RESPONSE_CACHE' },
    sticky: { available: env.includes('TOKENGRID_STICKY_PREFIX'), why: 'env TOKENGRID_STICKY_PREFIX' },
    compression: { available: existsSync(at('src/app/compress-stage.ts')), why: 'src/app/compress-stage.ts' },
  };
}

interface Configuration {
  name: string;
  features: Feature[];
  /** Compression without its guard: shows what the guard keeps (not a configuration anyone should run). */
  noGuard?: boolean;
}

const CONFIGS: Configuration[] = [
  { name: 'baseline (all off)', features: [] },
  ...FEATURES.map((f) => ({ name: f, features: [f] })),
  { name: 'compression, guard off', features: ['compression'], noGuard: true },
  { name: 'all on', features: FEATURES },
];

interface Session {
  type: 'session';
  id: string;
  kind: 'chat' | 'agent' | 'coding';
  quick: boolean;
  model: string;
  autoOk: boolean;
  temperature: number;
  maxTokens: number;
  tools?: unknown[];
  messages: Record<string, unknown>[];
  requests: { upTo: number; expect: string }[];
}

function loadWorkload(quick: boolean): { meta: Record<string, unknown>; sessions: Session[] } {
  const lines = readFileSync(at('bench/workloads/cost.jsonl'), 'utf8').trim().split('\n');
  const meta = JSON.parse(lines[0]!) as Record<string, unknown>;
  const sessions = lines.slice(1).map((l) => JSON.parse(l) as Session);
  return { meta, sessions: quick ? sessions.filter((s) => s.quick) : sessions };
}

/** config/tokengrid.yaml with every model served by the emulator from two deployments, prices unchanged. */
function benchConfig(dir: string): string {
  const file = parseYaml(readFileSync(at('config/tokengrid.yaml'), 'utf8')) as Record<string, any>;
  for (const [id, m] of Object.entries(file['models'] as Record<string, any>)) {
    m.deployments = [
      { provider: 'mock', upstreamModel: `${id}@recall`, region: 'a' },
      { provider: 'mock', upstreamModel: `${id}-b@recall`, region: 'b' },
    ];
  }
  const path = join(dir, 'tokengrid.yaml');
  writeFileSync(path, stringifyYaml(file));
  return path;
}

interface KindFigures {
  requests: number;
  answered: number;
  passed: number;
  vendorCostMicros: number;
}

interface Result {
  configuration: string;
  features: Feature[];
  missing: Feature[];
  requests: number;
  answered: number;
  passed: number;
  successRate: number;
  vendorCostMicros: number;
  vendorCostPerAnsweredMicros: number;
  savingVsBaselinePct: number | null;
  byKind: Record<string, KindFigures & { costPerAnsweredMicros: number }>;
  /** Sums over the usage records' serving notes. */
  serving: {
    records: number;
    withNote: number;
    cacheHits: number;
    compressedTokens: number;
    stickyPrefix: number;
    routed: number;
    /** Routed records that carry savings.routing (against what auto:best would have taken; none when it took that model). */
    routedWithSaving: number;
    savings: Record<string, number>;
    /** Records where a feature acted (cache hit, compression, stickiness) but no saving is on the record. */
    actedWithoutSaving: number;
  };
  failedChecks: string[];
  seconds: number;
}

async function runConfiguration(c: Configuration, sessions: Session[], configPath: string, avail: ReturnType<typeof availability>): Promise<Result> {
  const started = performance.now();
  const on = new Set(c.features.filter((f) => avail[f].available));
  const missing = c.features.filter((f) => !avail[f].available);
  const dataDir = mkdtempSync(join(tmpdir(), 'tokengrid-cost-'));
  const env: Record<string, string> = {};
  if (avail.cache.available) env['TOKENGRID_RESPONSE_CACHE'] = on.has('cache') ? 'on' : 'off';
  if (avail.sticky.available) env['TOKENGRID_STICKY_PREFIX'] = on.has('sticky') ? 'on' : 'off';
  const app = await createApp({
    configPath,
    dataDir,
    port: 0,
    env,
    bootstrapDemo: false,
    timers: false,
    random: new SeededRandom(17),
    logger: pino({ level: 'silent' }),
    ...(c.noGuard === true ? { compression: { guard: false } } : {}),
  });
  try {
    const { url } = await app.listen();
    const adminKey = app.firstStart?.adminKey;
    if (adminKey === undefined) throw new Error('expected a fresh data folder with a new admin key');
    const admin = async (path: string, body: unknown): Promise<any> => {
      const res = await fetch(url + path, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      if (res.status >= 300) throw new Error(`admin ${path}: ${res.status} ${text}`);
      return JSON.parse(text);
    };
    const account = await admin('/admin/accounts', { name: 'cost-bench', kind: 'individual' });
    const key = await admin(`/admin/accounts/${account.id}/keys`, { name: 'cost-bench' });
    const expiresAt = new Date(Date.now() + 86_400_000).toISOString();
    await admin(`/admin/accounts/${account.id}/grants`, { unit: 'tokens', amount: 1e12, kind: 'plan_allowance', expiresAt, reference: 'cost-bench' });
    await app.refreshKeys();

    const kindOf = new Map<string, string>();
    const byKind: Record<string, KindFigures> = {};
    const failedChecks: string[] = [];
    let requests = 0;
    let answered = 0;
    let passed = 0;
    for (const s of sessions) {
      byKind[s.kind] ??= { requests: 0, answered: 0, passed: 0, vendorCostMicros: 0 };
      const k = byKind[s.kind]!;
      for (const [i, rq] of s.requests.entries()) {
        const body: Record<string, unknown> = {
          model: on.has('routing') && s.autoOk ? 'auto:cheap' : s.model,
          messages: s.messages.slice(0, rq.upTo),
          temperature: s.temperature,
          max_tokens: s.maxTokens,
        };
        if (s.tools !== undefined) body['tools'] = s.tools;
        const headers: Record<string, string> = { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' };
        if (on.has('compression')) headers['x-tokengrid-compress'] = 'on';
        const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers, body: JSON.stringify(body) });
        const json = (await res.json()) as any;
        requests++;
        k.requests++;
        const requestId = res.headers.get('x-request-id') ?? '';
        kindOf.set(requestId, s.kind);
        if (res.status !== 200) {
          failedChecks.push(`${s.id}#${i}: HTTP ${res.status} ${json?.error?.code ?? ''}`);
          continue;
        }
        answered++;
        k.answered++;
        const text = String(json.choices?.[0]?.message?.content ?? '');
        if (text.includes(rq.expect)) {
          passed++;
          k.passed++;
        } else if (failedChecks.length < 20) failedChecks.push(`${s.id}#${i}: expected "${rq.expect.slice(0, 60)}", got "${text.slice(0, 80)}"`);
      }
    }
    const records = await app.charging.listUsage(account.id, { fromMs: 0, toMs: Date.now() + 3_600_000 });
    const serving: Result['serving'] = {
      records: records.length,
      withNote: 0,
      cacheHits: 0,
      compressedTokens: 0,
      stickyPrefix: 0,
      routed: 0,
      routedWithSaving: 0,
      savings: {},
      actedWithoutSaving: 0,
    };
    let cost = 0;
    for (const r of records) {
      const v = r.vendorCostMicros ?? 0;
      cost += v;
      const kind = kindOf.get(r.requestId);
      if (kind !== undefined) byKind[kind]!.vendorCostMicros += v;
      const n = r.serving;
      if (n === undefined) continue;
      serving.withNote++;
      if (n.cache === 'hit') serving.cacheHits++;
      if (n.stickyPrefix === true) serving.stickyPrefix++;
      if (n.route !== undefined) serving.routed++;
      if (n.route !== undefined && (n.savings?.routing ?? 0) > 0) serving.routedWithSaving++;
      serving.compressedTokens += n.compressedTokens ?? 0;
      for (const [f, micros] of Object.entries(n.savings ?? {})) serving.savings[f] = (serving.savings[f] ?? 0) + (micros ?? 0);
      const acted = n.cache === 'hit' || (n.compressedTokens ?? 0) > 0;
      const saved = Object.values(n.savings ?? {}).some((x) => (x ?? 0) > 0);
      if (acted && !saved) serving.actedWithoutSaving++;
    }
    const per = (c2: number, n2: number): number => (n2 === 0 ? 0 : Math.round(c2 / n2));
    return {
      configuration: c.name,
      features: [...on],
      missing,
      requests,
      answered,
      passed,
      successRate: requests === 0 ? 0 : passed / requests,
      vendorCostMicros: cost,
      vendorCostPerAnsweredMicros: per(cost, answered),
      savingVsBaselinePct: null,
      byKind: Object.fromEntries(Object.entries(byKind).map(([k2, f]) => [k2, { ...f, costPerAnsweredMicros: per(f.vendorCostMicros, f.answered) }])),
      serving,
      failedChecks,
      seconds: Math.round((performance.now() - started) / 100) / 10,
    };
  } finally {
    await app.close(500);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
const micros = (m: number): string => (m / 1_000_000).toFixed(6);

export async function runCost(argv: string[]): Promise<void> {
  const quick = argv.includes('--quick');
  const outAt = argv.indexOf('--out');
  const out = outAt >= 0 ? argv[outAt + 1]! : at(`bench/results/cost-${quick ? 'quick' : 'full'}.json`);
  for (const a of argv) {
    if (!['--quick', '--out', out].includes(a)) {
      console.error(`unknown argument ${a}\nusage: npm run bench -- cost [--quick] [--out FILE]`);
      process.exit(2);
    }
  }
  const avail = availability();
  const { meta, sessions } = loadWorkload(quick);
  const total = sessions.reduce((n, s) => n + s.requests.length, 0);
  log(
    `workload bench/workloads/cost.jsonl (seed ${String(meta['seed'])}, synthetic): ${sessions.length} sessions, ${total} requests${quick ? ' (--quick subset)' : ''}`,
  );
  for (const f of FEATURES) log(`  ${FEATURE_LABEL[f]}: ${avail[f].available ? 'available' : `not available in this build (${avail[f].why} not found)`}`);
  const dir = mkdtempSync(join(tmpdir(), 'tokengrid-cost-config-'));
  const configPath = benchConfig(dir);
  const results: (Result | { configuration: string; available: false; missing: Feature[] })[] = [];
  let baseline: Result | undefined;
  try {
    for (const c of CONFIGS) {
      const missing = c.features.filter((f) => !avail[f].available);
      if (c.features.length > 0 && missing.length === c.features.length) {
        results.push({ configuration: c.name, available: false, missing });
        log(`${c.name}: not available`);
        continue;
      }
      const r = await runConfiguration(c, sessions, configPath, avail);
      if (baseline === undefined) baseline = r;
      r.savingVsBaselinePct =
        baseline.vendorCostPerAnsweredMicros === 0
          ? null
          : Math.round((1000 * (baseline.vendorCostPerAnsweredMicros - r.vendorCostPerAnsweredMicros)) / baseline.vendorCostPerAnsweredMicros) / 10;
      results.push(r);
      log(
        `${c.name}: ${r.answered}/${r.requests} answered, ${pct(r.successRate)} passed, ${micros(r.vendorCostPerAnsweredMicros)} CNY per answered request (${r.seconds} s)`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  // Table.
  const rows: string[][] = [
    ['configuration', 'answered', 'success', 'vendor CNY / answered', 'vs baseline', 'chat', 'agent', 'coding', "records' serving.savings (CNY)"],
  ];
  for (const r of results) {
    if ('available' in r) {
      rows.push([r.configuration, 'not available', '', '', '', '', '', '', '']);
      continue;
    }
    const k = (name: string): string => (r.byKind[name] === undefined ? '' : micros(r.byKind[name]!.costPerAnsweredMicros));
    const sv = Object.entries(r.serving.savings)
      .filter(([, v]) => v > 0)
      .map(([f, v]) => `${f} ${micros(v)}`)
      .join(', ');
    rows.push([
      r.configuration + (r.missing.length > 0 ? ` (without ${r.missing.join(', ')}: not available)` : ''),
      `${r.answered}/${r.requests}`,
      pct(r.successRate),
      micros(r.vendorCostPerAnsweredMicros),
      r.savingVsBaselinePct === null ? '' : `${r.savingVsBaselinePct > 0 ? '-' : '+'}${Math.abs(r.savingVsBaselinePct).toFixed(1)}%`,
      k('chat'),
      k('agent'),
      k('coding'),
      sv === '' ? '-' : sv,
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const line = (row: string[]): string => `| ${row.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(
    `\nVendor cost per answered request, ${quick ? '--quick subset' : 'full workload'} (${total} requests; CNY at the catalog's vendor prices; per kind: CNY per answered request)\n`,
  );
  console.log(line(rows[0]!));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of rows.slice(1)) console.log(line(row));
  const all = results.find((r): r is Result => !('available' in r) && r.configuration === 'all on');
  if (all !== undefined && baseline !== undefined) {
    console.log(
      `\nall on vs baseline: ${all.savingVsBaselinePct?.toFixed(1)}% lower vendor cost per answered request (goal >= 30%), success ${pct(all.successRate)} vs ${pct(baseline.successRate)}` +
        (all.missing.length > 0 ? `; not in this build: ${all.missing.join(', ')}` : ''),
    );
    console.log(
      `usage records (all on): ${all.serving.records}; a cache hit or compression without a saving on the record: ${all.serving.actedWithoutSaving}; ` +
        `auto-routed: ${all.serving.routed}, of which with savings.routing: ${all.serving.routedWithSaving}`,
    );
  }
  const json = {
    command: `npm run bench -- cost${quick ? ' --quick' : ''}`,
    finishedAt: new Date().toISOString(),
    durationS: Math.round((performance.now() - t0) / 100) / 10,
    workload: { file: 'bench/workloads/cost.jsonl', meta, sessions: sessions.length, requests: total, quick },
    availability: avail,
    currency: 'CNY (vendorCostMicros: micros of it)',
    results,
  };
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(json, null, 2)}\n`);
  log(`wrote ${out}`);
}
