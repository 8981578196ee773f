/**
 * Paced streaming (emulator: 20 ms to first token, 64 chunks 20 ms apart). A client timestamps, with
 * process.hrtime, the arrival of every SSE data frame that carries content. Per target:
 * - TTFT: request sent -> first content frame;
 * - inter-chunk gap: time between consecutive content frames; its mean over a stream is
 *   (last - first) / (n - 1), so any time a gateway adds per chunk *and accumulates* shows up as a larger
 *   mean gap. A constant per-chunk delay (every chunk late by the same d) cancels out of gaps; it is the
 *   same d as the TTFT's share, so it is bounded by the added TTFT.
 * Each round runs `concurrency` streams of EVERY target at the same time, their starts spread over one chunk
 * interval (direct, proxy, TokenGrid, direct, ... `staggerMs` apart), so that the three targets see the same
 * emulator conditions (its timer drift is the main noise in gaps) while their chunks do not collide on a core.
 * The main-thread CPU the proxy and TokenGrid spend over the measured rounds is read too: per stream, minus
 * the CPU of a non-streaming request (measured in the c1 scenario), over the chunk count, it estimates the
 * CPU, hence the latency at low load, that each chunk costs in the gateway.
 */
import { Pool } from 'undici';
import { chatBody, PATH, type Target, type TargetName } from './targets.ts';
import { mainThreadCpuMsOf } from './procs.ts';
import { summarize, type Summary } from './stats.ts';

export interface PacedOptions {
  rounds: number;
  concurrency: number;
  /** Offset between consecutive stream starts inside a round (all targets interleaved). */
  staggerMs: number;
  expectedChunks: number;
}

interface StreamTiming {
  ok: boolean;
  ttftMs: number;
  arrivalsMs: number[];
  done: boolean;
  error?: string;
}

export interface PacedTargetResult {
  ttftMs: Summary;
  /** Per-stream mean gaps. */
  meanGapMs: Summary;
  /** All gaps of all streams. */
  gapMs: Summary;
  chunksPerStream: Summary;
  errors: number;
  /** Server main-thread CPU per stream over the measured rounds (ms); NaN for direct (the emulator serves all). */
  serverCpuMsPerStream: number;
}

async function oneStream(pool: Pool, t: Target, body: string): Promise<StreamTiming> {
  const t0 = process.hrtime.bigint();
  const arrivals: number[] = [];
  let done = false;
  try {
    const res = await pool.request({ method: 'POST', path: PATH, headers: t.headers, body });
    if (res.statusCode !== 200)
      return { ok: false, ttftMs: NaN, arrivalsMs: [], done, error: `status ${res.statusCode}: ${(await res.body.text()).slice(0, 200)}` };
    res.body.setEncoding('utf8');
    let buf = '';
    for await (const chunk of res.body as AsyncIterable<string>) {
      const at = Number(process.hrtime.bigint() - t0) / 1e6;
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const frame = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (!frame.startsWith('data: ')) continue;
        const data = frame.slice(6);
        if (data === '[DONE]') {
          done = true;
          continue;
        }
        const j = JSON.parse(data) as { choices?: { delta?: { content?: string } }[] };
        const c = j.choices?.[0]?.delta?.content;
        if (typeof c === 'string' && c.length > 0) arrivals.push(at);
      }
    }
  } catch (e) {
    return { ok: false, ttftMs: NaN, arrivalsMs: arrivals, done, error: String(e) };
  }
  return { ok: done && arrivals.length > 0, ttftMs: arrivals[0] ?? NaN, arrivalsMs: arrivals, done };
}

export async function runPaced(targets: Target[], o: PacedOptions): Promise<Record<TargetName, PacedTargetResult>> {
  const body = chatBody(true);
  const pools = new Map(targets.map((t) => [t.name, new Pool(t.url, { connections: o.concurrency, pipelining: 1, keepAliveTimeout: 60_000 })]));
  const timings = new Map<TargetName, StreamTiming[]>(targets.map((t) => [t.name, []]));
  const round = async (keep: boolean): Promise<void> => {
    const all: Promise<void>[] = [];
    for (let k = 0; k < o.concurrency; k++) {
      targets.forEach((t, j) => {
        const delay = (k * targets.length + j) * o.staggerMs;
        all.push(
          new Promise<StreamTiming>((resolve) => setTimeout(() => resolve(oneStream(pools.get(t.name)!, t, body)), delay)).then((s) => {
            if (keep) timings.get(t.name)!.push(s);
          }),
        );
      });
    }
    await Promise.all(all);
  };
  const cpu = new Map<TargetName, number>();
  try {
    await round(false); // warm-up: opens the connections, JIT-compiles the stream path
    for (const t of targets) cpu.set(t.name, mainThreadCpuMsOf(t.serverPid));
    for (let r = 0; r < o.rounds; r++) await round(true);
    for (const t of targets) cpu.set(t.name, mainThreadCpuMsOf(t.serverPid) - cpu.get(t.name)!);
  } finally {
    await Promise.all([...pools.values()].map((p) => p.close()));
  }
  const out = {} as Record<TargetName, PacedTargetResult>;
  for (const t of targets) {
    const all = timings.get(t.name)!;
    const good = all.filter((s) => s.ok);
    const bad = all.filter((s) => !s.ok);
    if (bad.length > 0) console.error(`paced ${t.label}: ${bad.length} failed streams, first: ${bad[0]!.error ?? 'no [DONE]'}`);
    const gaps: number[] = [];
    const meanGaps: number[] = [];
    for (const s of good) {
      const a = s.arrivalsMs;
      for (let i = 1; i < a.length; i++) gaps.push(a[i]! - a[i - 1]!);
      if (a.length > 1) meanGaps.push((a[a.length - 1]! - a[0]!) / (a.length - 1));
    }
    const chunkCounts = good.map((s) => s.arrivalsMs.length);
    if (chunkCounts.some((n) => n !== o.expectedChunks))
      console.error(`paced ${t.label}: expected ${o.expectedChunks} content frames per stream, saw ${[...new Set(chunkCounts)].join(',')}`);
    out[t.name] = {
      ttftMs: summarize(good.map((s) => s.ttftMs)),
      meanGapMs: summarize(meanGaps),
      gapMs: summarize(gaps),
      chunksPerStream: summarize(chunkCounts),
      errors: bad.length,
      serverCpuMsPerStream: t.name === 'direct' ? NaN : cpu.get(t.name)! / all.length,
    };
  }
  return out;
}
