/**
 * Memory under 1,000 concurrent paced streams: all streams are started at once against one target, the
 * server's VmRSS is sampled every 100 ms until they all end (peak = the plateau), then the server is asked
 * for a full GC (children run with --expose-gc) and its RSS and heap are read again ("after"). After an
 * unmeasured warm-up round, three rounds: growth = after(last round) - after(first round); a leak shows as
 * growth, the allocator's high-water mark does not (it is reached in the warm-up round and stays).
 */
import { setMaxListeners } from 'node:events';
import { Pool } from 'undici';
import { rssMbOf, type Child } from './procs.ts';
import { chatBody, PATH, type Target } from './targets.ts';

export interface MemoryOptions {
  streams: number;
  rounds: number;
  /** Unmeasured rounds first: JIT, connection pools and the allocator's high-water mark settle there. */
  warmupRounds: number;
  /** Idle time after a round before the GC and the "after" reading. */
  settleMs: number;
  /** A round that takes longer is cut (the streams are aborted and counted as errors). */
  roundTimeoutMs: number;
}

export interface MemoryRound {
  peakRssMb: number;
  /** Median of the samples taken while at least 90 % of the streams were open. */
  plateauRssMb: number;
  afterRssMb: number;
  afterHeapUsedMb: number | null;
  durationMs: number;
  completed: number;
  errors: number;
  /** Most streams open at once as seen by the client (headers received, body not finished). */
  openMax: number;
}

export interface MemoryResult {
  baselineRssMb: number;
  rounds: MemoryRound[];
  rssPlateauMb: number;
  rssGrowthMb: number;
  heapGrowthMb: number | null;
}

async function afterGc(server: Child | undefined): Promise<number | null> {
  if (!server) return null;
  try {
    const r = await server.request('gc', 30_000);
    return r?.gc ? r.memory.heapUsed / 1048576 : null;
  } catch {
    return null;
  }
}

async function round(t: Target, o: MemoryOptions, pool: Pool): Promise<Omit<MemoryRound, 'afterRssMb' | 'afterHeapUsedMb'>> {
  const body = chatBody(true);
  const samples: { rss: number; open: number; started: number }[] = [];
  let open = 0;
  let openMax = 0;
  let started = 0;
  let completed = 0;
  let errors = 0;
  const abort = new AbortController();
  setMaxListeners(0, abort.signal); // one listener per in-flight request: 1,000 is expected, not a leak
  const timer = setInterval(() => samples.push({ rss: rssMbOf(t.serverPid), open, started }), 100);
  const cut = setTimeout(() => abort.abort(), o.roundTimeoutMs);
  const t0 = performance.now();
  const one = async (): Promise<void> => {
    try {
      const res = await pool.request({ method: 'POST', path: PATH, headers: t.headers, body, signal: abort.signal });
      started++;
      open++;
      openMax = Math.max(openMax, open);
      let tail = '';
      try {
        for await (const c of res.body) tail = (tail + (c as Buffer).toString('latin1')).slice(-64);
      } finally {
        open--;
      }
      if (res.statusCode === 200 && tail.includes('[DONE]')) completed++;
      else errors++;
    } catch {
      errors++;
    }
  };
  await Promise.all(Array.from({ length: o.streams }, one));
  const durationMs = performance.now() - t0;
  clearInterval(timer);
  clearTimeout(cut);
  samples.push({ rss: rssMbOf(t.serverPid), open, started });
  const peak = Math.max(...samples.map((s) => s.rss));
  const busy = samples
    .filter((s) => s.open >= 0.9 * o.streams)
    .map((s) => s.rss)
    .sort((a, b) => a - b);
  const plateau = busy.length > 0 ? busy[Math.floor(busy.length / 2)]! : peak;
  return { peakRssMb: peak, plateauRssMb: plateau, durationMs, completed, errors, openMax };
}

export async function runMemory(t: Target, server: Child | undefined, o: MemoryOptions): Promise<MemoryResult> {
  const pool = new Pool(t.url, {
    connections: o.streams,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    headersTimeout: o.roundTimeoutMs,
    bodyTimeout: o.roundTimeoutMs,
  });
  const rounds: MemoryRound[] = [];
  await afterGc(server);
  const baselineRssMb = rssMbOf(t.serverPid);
  try {
    for (let i = 0; i < o.warmupRounds; i++) await round(t, o, pool);
    for (let i = 0; i < o.rounds; i++) {
      const r = await round(t, o, pool);
      await new Promise((res) => setTimeout(res, o.settleMs));
      const heap = await afterGc(server);
      rounds.push({ ...r, afterRssMb: rssMbOf(t.serverPid), afterHeapUsedMb: heap });
    }
  } finally {
    await pool.close();
  }
  const first = rounds[0]!;
  const last = rounds[rounds.length - 1]!;
  return {
    baselineRssMb,
    rounds,
    rssPlateauMb: Math.max(...rounds.map((r) => r.peakRssMb)),
    rssGrowthMb: last.afterRssMb - first.afterRssMb,
    heapGrowthMb: first.afterHeapUsedMb !== null && last.afterHeapUsedMb !== null ? last.afterHeapUsedMb - first.afterHeapUsedMb : null,
  };
}
