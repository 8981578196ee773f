/**
 * Added latency at concurrency 1: one keep-alive connection per target, one request at a time, each timed
 * with process.hrtime.bigint() from send to the last body byte (autocannon rounds to whole ms, too coarse
 * here). Targets are interleaved in blocks so that a burst of noise on the shared machine lands on all
 * three instead of biasing one. Each target's server CPU is read around its own blocks only: the emulator
 * also serves the proxy's and TokenGrid's requests, and an idle server's timers are not request work.
 */
import { Pool } from 'undici';
import { chatBody, PATH, type Target, type TargetName } from './targets.ts';
import { allThreadsCpuMsOf, mainThreadCpuMsOf } from './procs.ts';
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
  /** The same for all of the server's threads (they share the server's one core). */
  serverAllThreadsCpuMsPerReq: Record<TargetName, number>;
}

/** One target's figures from runC1Blocks, in the order the targets were given. */
export interface C1TargetResult {
  samplesMs: number[];
  errors: number;
  cpuMsPerReq: number;
  allThreadsCpuMsPerReq: number;
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

/**
 * The c1 loop for any list of targets (several may share a name, as A and B in bench/ab.ts): check, warm-up,
 * then `requests` per target in interleaved blocks of `block`.
 */
export async function runC1Blocks(targets: Target[], o: C1Options): Promise<C1TargetResult[]> {
  const body = chatBody(false);
  const pools = targets.map((t) => new Pool(t.url, { connections: 1, pipelining: 1, keepAliveTimeout: 60_000 }));
  const out: C1TargetResult[] = targets.map(() => ({ samplesMs: [], errors: 0, cpuMsPerReq: NaN, allThreadsCpuMsPerReq: NaN }));
  const cpuMs = targets.map(() => 0);
  const allMs = targets.map(() => 0);
  try {
    for (let i = 0; i < targets.length; i++) {
      await check(pools[i]!, targets[i]!, body);
      for (let k = 0; k < o.warmup; k++) await once(pools[i]!, targets[i]!, body);
    }
    for (let done = 0; done < o.requests; done += o.block) {
      const n = Math.min(o.block, o.requests - done);
      for (let i = 0; i < targets.length; i++) {
        const t = targets[i]!;
        const r = out[i]!;
        const c0 = mainThreadCpuMsOf(t.serverPid);
        const a0 = allThreadsCpuMsOf(t.serverPid);
        for (let k = 0; k < n; k++) {
          const x = await once(pools[i]!, t, body);
          if (x.ok) r.samplesMs.push(Number(x.ns) / 1e6);
          else if (r.errors++ === 0) console.error(`c1 ${t.label}: error ${x.text}`);
        }
        cpuMs[i]! += mainThreadCpuMsOf(t.serverPid) - c0;
        allMs[i]! += allThreadsCpuMsOf(t.serverPid) - a0;
      }
    }
    for (let i = 0; i < targets.length; i++) {
      out[i]!.cpuMsPerReq = cpuMs[i]! / o.requests;
      out[i]!.allThreadsCpuMsPerReq = allMs[i]! / o.requests;
    }
  } finally {
    await Promise.all(pools.map((p) => p.close()));
  }
  return out;
}

export async function runC1(targets: Target[], o: C1Options): Promise<C1Result> {
  const res = await runC1Blocks(targets, o);
  const by = <T>(f: (r: C1TargetResult) => T): Record<TargetName, T> =>
    Object.fromEntries(targets.map((t, i) => [t.name, f(res[i]!)])) as Record<TargetName, T>;
  return {
    latencyMs: by((r) => summarize(r.samplesMs)),
    errors: by((r) => r.errors),
    serverCpuMsPerReq: by((r) => r.cpuMsPerReq),
    serverAllThreadsCpuMsPerReq: by((r) => r.allThreadsCpuMsPerReq),
  };
}
