/**
 * Added latency at concurrency 1: one keep-alive connection per target, one request at a time, each timed
 * with process.hrtime.bigint() from send to the last body byte (autocannon rounds to whole ms, too coarse
 * here). Targets are interleaved in blocks so that a burst of noise on the shared machine lands on all
 * three instead of biasing one.
 */
import { Pool } from 'undici';
import { chatBody, PATH, type Target, type TargetName } from './targets.ts';
import { mainThreadCpuMsOf } from './procs.ts';
import { summarize, type Summary } from './stats.ts';

export interface C1Options {
  requests: number;
  warmup: number;
  block: number;
}

export interface C1Result {
  /** Per target, in ms (sub-microsecond resolution). */
  latencyMs: Record<TargetName, Summary>;
  errors: Record<TargetName, number>;
  /**
   * Main-thread CPU of each target's server per request, in ms (direct: the emulator's). For the proxy and
   * TokenGrid it is their whole cost per request; the emulator's share is paid by all three targets.
   */
  serverCpuMsPerReq: Record<TargetName, number>;
}

async function once(pool: Pool, t: Target, body: string): Promise<{ ns: bigint; ok: boolean; text?: string }> {
  const t0 = process.hrtime.bigint();
  const res = await pool.request({ method: 'POST', path: PATH, headers: t.headers, body });
  const buf = await res.body.arrayBuffer();
  const ns = process.hrtime.bigint() - t0;
  return { ns, ok: res.statusCode === 200, text: res.statusCode === 200 ? undefined : Buffer.from(buf).toString('utf8').slice(0, 300) };
}

/** The answer must be a real completion with usage (proof the bytes went through the whole path). */
async function check(pool: Pool, t: Target, body: string): Promise<void> {
  const res = await pool.request({ method: 'POST', path: PATH, headers: t.headers, body });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${t.label}: status ${res.statusCode}: ${text.slice(0, 300)}`);
  const j = JSON.parse(text) as { object?: string; usage?: { completion_tokens?: number }; choices?: { message?: { content?: string } }[] };
  if (j.object !== 'chat.completion' || !j.usage?.completion_tokens || !j.choices?.[0]?.message?.content) {
    throw new Error(`${t.label}: unexpected answer ${text.slice(0, 300)}`);
  }
}

export async function runC1(targets: Target[], o: C1Options): Promise<C1Result> {
  const body = chatBody(false);
  const pools = new Map(targets.map((t) => [t.name, new Pool(t.url, { connections: 1, pipelining: 1, keepAliveTimeout: 60_000 })]));
  const samples = new Map<TargetName, number[]>(targets.map((t) => [t.name, []]));
  const errors = Object.fromEntries(targets.map((t) => [t.name, 0])) as Record<TargetName, number>;
  const cpuPerReq = Object.fromEntries(targets.map((t) => [t.name, NaN])) as Record<TargetName, number>;
  try {
    for (const t of targets) {
      const pool = pools.get(t.name)!;
      await check(pool, t, body);
      for (let i = 0; i < o.warmup; i++) await once(pool, t, body);
    }
    const perTarget = o.requests;
    const cpu0 = new Map(targets.map((t) => [t.name, mainThreadCpuMsOf(t.serverPid)]));
    // The emulator also serves the proxy's and TokenGrid's requests: count its CPU only during direct blocks.
    let directCpuMs = 0;
    for (let done = 0; done < perTarget; done += o.block) {
      const n = Math.min(o.block, perTarget - done);
      for (const t of targets) {
        const pool = pools.get(t.name)!;
        const out = samples.get(t.name)!;
        const c = t.name === 'direct' ? mainThreadCpuMsOf(t.serverPid) : 0;
        for (let i = 0; i < n; i++) {
          const r = await once(pool, t, body);
          if (r.ok) out.push(Number(r.ns) / 1e6);
          else if (errors[t.name]++ === 0) console.error(`c1 ${t.label}: error ${r.text}`);
        }
        if (t.name === 'direct') directCpuMs += mainThreadCpuMsOf(t.serverPid) - c;
      }
    }
    for (const t of targets) {
      const used = t.name === 'direct' ? directCpuMs : mainThreadCpuMsOf(t.serverPid) - cpu0.get(t.name)!;
      cpuPerReq[t.name] = used / perTarget;
    }
  } finally {
    await Promise.all([...pools.values()].map((p) => p.close()));
  }
  const latencyMs = Object.fromEntries(targets.map((t) => [t.name, summarize(samples.get(t.name)!)])) as Record<TargetName, Summary>;
  return { latencyMs, errors, serverCpuMsPerReq: cpuPerReq };
}
