/** Turns the raw scenario results into bench/results/latest.json and the human table on stdout. */
import type { C1Result } from './c1.ts';
import type { MemoryResult } from './memory.ts';
import type { PacedTargetResult } from './streaming.ts';
import type { ThroughputResult } from './throughput.ts';
import { LABELS, TARGET_ORDER, type TargetName } from './targets.ts';
import { r1, r3 } from './stats.ts';

export interface ChargingBenchResult {
  results: {
    accounts: number;
    db: 'file' | 'memory';
    concurrency: number;
    pairs: number;
    seconds: number;
    pairsPerSec: number;
    pairP50Us: number;
    pairP99Us: number;
    reserveMeanUs: number;
    settleMeanUs: number;
  }[];
  sqliteVersion: string;
}

export interface RawResults {
  c1?: C1Result;
  throughput?: { nonStream: Partial<Record<TargetName, ThroughputResult>>; stream: Partial<Record<TargetName, ThroughputResult>> };
  paced?: Record<TargetName, PacedTargetResult>;
  pacedChunks?: number;
  memoryStreams?: number;
  memory?: Partial<Record<TargetName, MemoryResult>>;
  charging?: ChargingBenchResult;
  tokengridUsage?: { usageRecords: number; coinsUsed: number; coinsHeld: number };
}

/** "No growth": the bench's reading of the issue, stated in bench/README.md. */
export const GROWTH_LIMIT_MB = 10;

type Check = { value: number | null; limit: string; met: boolean | null };
const check = (value: number | undefined, ok: (v: number) => boolean, limit: string): Check =>
  value === undefined || !Number.isFinite(value) ? { value: null, limit, met: null } : { value: r3(value), limit, met: ok(value) };

export function buildJson(raw: RawResults, meta: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...meta };
  const c1 = raw.c1?.latencyMs;
  if (c1) {
    out.addedLatencyC1 = {
      p50Ms: r3(c1.tokengrid.p50 - c1.direct.p50),
      p99Ms: r3(c1.tokengrid.p99 - c1.direct.p99),
      minProxyP50Ms: r3(c1.minProxy.p50 - c1.direct.p50),
      minProxyP99Ms: r3(c1.minProxy.p99 - c1.direct.p99),
      perTarget: Object.fromEntries(
        TARGET_ORDER.map((t) => [
          t,
          {
            p50Ms: r3(c1[t].p50),
            p90Ms: r3(c1[t].p90),
            p99Ms: r3(c1[t].p99),
            p999Ms: r3(c1[t].p999),
            maxMs: r3(c1[t].max),
            meanMs: r3(c1[t].mean),
            n: c1[t].n,
            errors: raw.c1!.errors[t],
            serverCpuUsPerReq: r1(raw.c1!.serverCpuMsPerReq[t] * 1000),
            serverAllThreadsCpuUsPerReq: r1(raw.c1!.serverAllThreadsCpuMsPerReq[t] * 1000),
          },
        ]),
      ),
    };
  }
  const tp = raw.throughput;
  if (tp) {
    const rps = (m: Partial<Record<TargetName, ThroughputResult>>, t: TargetName): number | null => (m[t] ? r1(m[t]!.rps) : null);
    const ratio = (m: Partial<Record<TargetName, ThroughputResult>>): number | null =>
      m.tokengrid && m.minProxy ? r3(m.tokengrid.rps / m.minProxy.rps) : null;
    // Capacity ratio from CPU cost per request: immune to a load-bound proxy run and to other processes.
    const cpuRatio = (m: Partial<Record<TargetName, ThroughputResult>>): number | null =>
      m.tokengrid && m.minProxy ? r3(m.minProxy.serverCpuUsPerReq / m.tokengrid.serverCpuUsPerReq) : null;
    const round = (m: Partial<Record<TargetName, ThroughputResult>>) =>
      Object.fromEntries(Object.entries(m).map(([k, v]) => [k, Object.fromEntries(Object.entries(v).map(([f, n]) => [f, typeof n === 'number' ? r3(n) : n]))]));
    out.throughput = {
      directRps: rps(tp.nonStream, 'direct'),
      minProxyRps: rps(tp.nonStream, 'minProxy'),
      tokengridRps: rps(tp.nonStream, 'tokengrid'),
      tokengridToMinProxy: ratio(tp.nonStream),
      tokengridToMinProxyByCpu: cpuRatio(tp.nonStream),
      stream: {
        directRps: rps(tp.stream, 'direct'),
        minProxyRps: rps(tp.stream, 'minProxy'),
        tokengridRps: rps(tp.stream, 'tokengrid'),
        tokengridToMinProxy: ratio(tp.stream),
        tokengridToMinProxyByCpu: cpuRatio(tp.stream),
      },
      details: { nonStream: round(tp.nonStream), stream: round(tp.stream) },
    };
  }
  const p = raw.paced;
  if (p) {
    // CPU per chunk: (CPU per paced stream - CPU per non-streaming request at c1) / chunks; needs both scenarios.
    const perChunkCpuUs = (t: TargetName): number | null => {
      const req = raw.c1?.serverCpuMsPerReq[t];
      return req === undefined || !raw.pacedChunks ? null : r1(((p[t].serverCpuMsPerStream - req) * 1000) / raw.pacedChunks);
    };
    out.streaming = {
      tokengridPerChunkCpuUs: perChunkCpuUs('tokengrid'),
      minProxyPerChunkCpuUs: perChunkCpuUs('minProxy'),
      // What TokenGrid spends per chunk beyond a bare relay (the wake-up cost both pay cancels out).
      addedPerChunkCpuUs:
        perChunkCpuUs('tokengrid') !== null && perChunkCpuUs('minProxy') !== null ? r1(perChunkCpuUs('tokengrid')! - perChunkCpuUs('minProxy')!) : null,
      addedTtftMs: r3(p.tokengrid.ttftMs.p50 - p.direct.ttftMs.p50),
      addedPerChunkMs: r3(p.tokengrid.meanGapMs.p50 - p.direct.meanGapMs.p50),
      minProxyAddedTtftMs: r3(p.minProxy.ttftMs.p50 - p.direct.ttftMs.p50),
      minProxyAddedPerChunkMs: r3(p.minProxy.meanGapMs.p50 - p.direct.meanGapMs.p50),
      perTarget: Object.fromEntries(
        TARGET_ORDER.map((t) => [
          t,
          {
            ttftP50Ms: r3(p[t].ttftMs.p50),
            ttftP99Ms: r3(p[t].ttftMs.p99),
            meanGapP50Ms: r3(p[t].meanGapMs.p50),
            meanGapMeanMs: r3(p[t].meanGapMs.mean),
            gapP50Ms: r3(p[t].gapMs.p50),
            gapP99Ms: r3(p[t].gapMs.p99),
            gapMaxMs: r3(p[t].gapMs.max),
            streams: p[t].ttftMs.n,
            chunksPerStream: p[t].chunksPerStream.p50,
            errors: p[t].errors,
            serverCpuMsPerStream: r3(p[t].serverCpuMsPerStream),
          },
        ]),
      ),
    };
  }
  const m = raw.memory;
  if (m) {
    const tg = m.tokengrid;
    out.memory = {
      rssPlateauMb: tg ? r1(tg.rssPlateauMb) : null,
      rssGrowthMb: tg ? r1(tg.rssGrowthMb) : null,
      heapGrowthMb: tg?.heapGrowthMb != null ? r1(tg.heapGrowthMb) : null,
      perTarget: Object.fromEntries(
        Object.entries(m).map(([k, v]) => [
          k,
          {
            baselineRssMb: r1(v.baselineRssMb),
            rssPlateauMb: r1(v.rssPlateauMb),
            rssGrowthMb: r1(v.rssGrowthMb),
            heapGrowthMb: v.heapGrowthMb === null ? null : r1(v.heapGrowthMb),
            rounds: v.rounds.map((x) => ({
              peakRssMb: r1(x.peakRssMb),
              plateauRssMb: r1(x.plateauRssMb),
              afterRssMb: r1(x.afterRssMb),
              afterHeapUsedMb: x.afterHeapUsedMb === null ? null : r1(x.afterHeapUsedMb),
              durationMs: Math.round(x.durationMs),
              completed: x.completed,
              errors: x.errors,
              openMax: x.openMax,
            })),
          },
        ]),
      ),
    };
  }
  if (raw.charging) {
    const one = raw.charging.results.find((x) => x.accounts === 1 && x.db === 'file' && x.concurrency === 1);
    const many = raw.charging.results.find((x) => x.accounts > 1 && x.db === 'file');
    const conc = raw.charging.results.find((x) => x.db === 'file' && x.concurrency > 1);
    const mem = raw.charging.results.find((x) => x.db === 'memory');
    out.charging = {
      pairsPerSec: one ? r1(one.pairsPerSec) : null,
      pairsPerSecManyAccounts: many ? r1(many.pairsPerSec) : null,
      pairsPerSecConcurrent64: conc ? r1(conc.pairsPerSec) : null,
      pairsPerSecInMemoryDb: mem ? r1(mem.pairsPerSec) : null,
      // The charging share of request latency: one reserve + settle pair (p50, same store as the app) against
      // TokenGrid's whole request at concurrency 1 (p50), both measured in this run.
      pairP50Us: one ? r1(one.pairP50Us) : null,
      shareOfC1LatencyPct: one && raw.c1 ? r1((100 * one.pairP50Us) / (1000 * raw.c1.latencyMs.tokengrid.p50)) : null,
      sqliteVersion: raw.charging.sqliteVersion,
      details: raw.charging.results.map((x) => ({
        ...x,
        pairsPerSec: r1(x.pairsPerSec),
        seconds: r3(x.seconds),
        pairP50Us: r1(x.pairP50Us),
        pairP99Us: r1(x.pairP99Us),
        reserveMeanUs: r1(x.reserveMeanUs),
        settleMeanUs: r1(x.settleMeanUs),
      })),
    };
  }
  if (raw.tokengridUsage) out.tokengridChargingCheck = raw.tokengridUsage;
  out.notes = notes(raw);
  const a = out.addedLatencyC1 as { p99Ms: number } | undefined;
  const t = out.throughput as { tokengridToMinProxy: number | null; tokengridToMinProxyByCpu: number | null } | undefined;
  const s = out.streaming as { addedTtftMs: number; addedPerChunkMs: number; addedPerChunkCpuUs: number | null } | undefined;
  const mm = out.memory as { rssPlateauMb: number | null; rssGrowthMb: number | null } | undefined;
  out.targets = {
    addedP99C1Ms: check(a?.p99Ms, (v) => v <= 1, '<= 1 ms'),
    throughputToMinProxy: check(t?.tokengridToMinProxy ?? undefined, (v) => v >= 0.6, '>= 0.60'),
    throughputToMinProxyByCpu: check(t?.tokengridToMinProxyByCpu ?? undefined, (v) => v >= 0.6, '>= 0.60 (same target, CPU-cost view)'),
    addedTtftMs: check(s?.addedTtftMs, (v) => v <= 1, '<= 1 ms'),
    addedPerChunkMs: check(s?.addedPerChunkMs, (v) => v <= 0.05, '<= 0.050 ms (gap drift)'),
    addedPerChunkCpuUs: check(s?.addedPerChunkCpuUs ?? undefined, (v) => v <= 50, '<= 50 us (CPU per chunk beyond min proxy)'),
    rssPlateauMb: check(mm?.rssPlateauMb ?? undefined, (v) => v <= 250, '<= 250 MB'),
    rssGrowthMb: check(mm?.rssGrowthMb ?? undefined, (v) => v <= GROWTH_LIMIT_MB, `<= ${GROWTH_LIMIT_MB} MB over 3 rounds`),
  };
  return out;
}

/** What a reader must know to trust (or not) this run's figures; printed and stored with them. */
function notes(raw: RawResults): string[] {
  const n: string[] = [];
  for (const [mode, m] of Object.entries(raw.throughput ?? {})) {
    const mp = m.minProxy;
    if (mp && mp.loadCoreBusy >= 0.95)
      n.push(
        `throughput ${mode}: the load core was ${(100 * mp.loadCoreBusy).toFixed(0)}% busy during the min-proxy run, so the proxy's req/s is load-bound (a floor); the CPU-cost ratio is the better capacity comparison`,
      );
    for (const [t, r] of Object.entries(m)) {
      if (r.serverCoreOthers > 0.1)
        n.push(
          `throughput ${mode} ${t}: other processes used ${(100 * r.serverCoreOthers).toFixed(0)}% of the server core; its req/s is low by about that share`,
        );
    }
  }
  const tg = raw.memory?.tokengrid;
  const want = raw.memoryStreams ?? 1000;
  if (tg && Math.max(...tg.rounds.map((r) => r.openMax)) < 0.9 * want) {
    n.push(
      `memory: TokenGrid never had more than ${Math.max(...tg.rounds.map((r) => r.openMax))} of the ${want} streams open at once: its upstream pool (src/app.ts, undici Agent connections: 256 per origin) queues the rest, so the plateau is for ${want} client connections but at most that many live upstream streams`,
    );
  }
  return n;
}

const f = (n: number | null | undefined, d = 3): string => (n === null || n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(d));

function table(title: string, head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const w = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ');
  return `\n${title}\n${line(head)}\n${w.map((n) => '-'.repeat(n)).join('  ')}\n${rows.map((r) => line(r.map(String))).join('\n')}\n`;
}

export function printTables(raw: RawResults, json: Record<string, unknown>): void {
  const out: string[] = [];
  if (raw.c1) {
    const l = raw.c1.latencyMs;
    out.push(
      table(
        'Added latency at concurrency 1 (non-streaming, sequential client, ms with us precision)',
        ['target', 'p50', 'p90', 'p99', 'p99.9', 'max', 'mean', 'added p50', 'added p99', 'CPU us/req', 'all threads', 'n', 'err'],
        TARGET_ORDER.map((t) => [
          LABELS[t],
          f(l[t].p50),
          f(l[t].p90),
          f(l[t].p99),
          f(l[t].p999),
          f(l[t].max),
          f(l[t].mean),
          t === 'direct' ? '' : f(l[t].p50 - l.direct.p50),
          t === 'direct' ? '' : f(l[t].p99 - l.direct.p99),
          f(raw.c1!.serverCpuMsPerReq[t] * 1000, 0),
          f(raw.c1!.serverAllThreadsCpuMsPerReq[t] * 1000, 0),
          l[t].n,
          raw.c1!.errors[t],
        ]),
      ),
    );
  }
  if (raw.throughput) {
    for (const [name, m] of [
      ['non-streaming', raw.throughput.nonStream],
      ['streaming, 20 chunks', raw.throughput.stream],
    ] as const) {
      const mp = m.minProxy?.rps;
      out.push(
        table(
          `Max throughput, 64 connections, ${name} (latency in whole ms: autocannon)`,
          ['target', 'req/s', 'vs proxy', 'vs proxy (CPU)', 'p50 ms', 'p99 ms', 'errors', 'server CPU', 'CPU us/req', 'others on core', 'load core'],
          TARGET_ORDER.filter((t) => m[t]).map((t) => {
            const r = m[t]!;
            const mc = m.minProxy?.serverCpuUsPerReq;
            return [
              LABELS[t],
              f(r.rps, 0),
              mp ? `${((100 * r.rps) / mp).toFixed(0)}%` : '-',
              mc && t !== 'direct' ? `${((100 * mc) / r.serverCpuUsPerReq).toFixed(0)}%` : '-',
              f(r.latencyP50Ms, 0),
              f(r.latencyP99Ms, 0),
              r.errors + r.timeouts + r.non2xx,
              `${(100 * r.serverCpuCores).toFixed(0)}%`,
              f(r.serverCpuUsPerReq, 0),
              Number.isFinite(r.serverCoreOthers) ? `${(100 * r.serverCoreOthers).toFixed(0)}%` : '-',
              `${(100 * r.loadCoreBusy).toFixed(0)}%`,
            ];
          }),
        ),
      );
    }
  }
  if (raw.paced) {
    const p = raw.paced;
    const st = json.streaming as { tokengridPerChunkCpuUs: number | null; minProxyPerChunkCpuUs: number | null };
    const cpuChunk: Record<TargetName, number | null> = { direct: null, minProxy: st.minProxyPerChunkCpuUs, tokengrid: st.tokengridPerChunkCpuUs };
    const addedCpu = (t: TargetName): string =>
      t === 'tokengrid' && cpuChunk.tokengrid !== null && cpuChunk.minProxy !== null ? f(cpuChunk.tokengrid - cpuChunk.minProxy, 1) : '';
    out.push(
      table(
        'Paced streaming (20 ms TTFT, 64 chunks every 20 ms); times in ms, CPU per chunk in us',
        ['target', 'TTFT p50', 'TTFT p99', 'added TTFT', 'mean gap p50', 'added gap', 'gap p99', 'CPU/chunk', 'added CPU/chunk', 'streams', 'err'],
        TARGET_ORDER.map((t) => [
          LABELS[t],
          f(p[t].ttftMs.p50),
          f(p[t].ttftMs.p99),
          t === 'direct' ? '' : f(p[t].ttftMs.p50 - p.direct.ttftMs.p50),
          f(p[t].meanGapMs.p50, 4),
          t === 'direct' ? '' : f(p[t].meanGapMs.p50 - p.direct.meanGapMs.p50, 4),
          f(p[t].gapMs.p99),
          f(cpuChunk[t], 1),
          addedCpu(t),
          p[t].ttftMs.n,
          p[t].errors,
        ]),
      ),
    );
  }
  if (raw.memory) {
    const rows: (string | number)[][] = [];
    for (const t of TARGET_ORDER) {
      const m = raw.memory[t];
      if (!m) continue;
      m.rounds.forEach((r, i) =>
        rows.push([
          i === 0 ? LABELS[t] : '',
          i + 1,
          f(r.peakRssMb, 1),
          f(r.plateauRssMb, 1),
          f(r.afterRssMb, 1),
          f(r.afterHeapUsedMb, 1),
          (r.durationMs / 1000).toFixed(1),
          r.openMax,
          r.completed,
          r.errors,
        ]),
      );
    }
    out.push(
      table(
        'Memory, 1,000 concurrent paced streams (server process RSS, MB)',
        ['target', 'round', 'peak', 'plateau', 'after+GC', 'heap after', 'secs', 'open max', 'done', 'err'],
        rows,
      ),
    );
  }
  if (raw.charging) {
    out.push(
      table(
        'Charging engine alone (sequential reserve + settle pairs; file = SQLite WAL as the app opens it)',
        ['accounts', 'db', 'in flight', 'pairs/s', 'pair p50 us', 'pair p99 us', 'reserve us', 'settle us', 'pairs'],
        raw.charging.results.map((x) => [
          x.accounts,
          x.db,
          x.concurrency,
          f(x.pairsPerSec, 0),
          f(x.pairP50Us, 0),
          f(x.pairP99Us, 0),
          f(x.reserveMeanUs, 0),
          f(x.settleMeanUs, 0),
          x.pairs,
        ]),
      ),
    );
    const share = (json.charging as { shareOfC1LatencyPct: number | null } | undefined)?.shareOfC1LatencyPct;
    if (share !== null && share !== undefined)
      out.push(`Charging share of request latency at concurrency 1: one reserve+settle pair (p50) is ${share}% of TokenGrid's p50 request.\n`);
  }
  const targets = json.targets as Record<string, Check>;
  out.push(
    table(
      'Targets (issue), TokenGrid',
      ['figure', 'value', 'target', 'met'],
      Object.entries(targets).map(([k, v]) => [k, v.value === null ? '-' : String(v.value), v.limit, v.met === null ? 'not run' : v.met ? 'yes' : 'NO']),
    ),
  );
  const n = json.notes as string[];
  if (n.length > 0) out.push(`\nNotes:\n${n.map((x) => `- ${x}`).join('\n')}\n`);
  console.log(out.join(''));
}
