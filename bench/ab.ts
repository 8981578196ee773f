/**
 * A/B of TokenGrid's CPU per request between two working trees (e.g. a copy made before a change, and the
 * current one), interleaved so that a noisy minute on a shared machine lands on both:
 *
 *   node --import tsx bench/ab.ts --a /path/to/tree-before --b /path/to/tree-after [--processes 3] [--rounds 2] [--slice 3]
 *   node --import tsx bench/ab.ts --a ... --b ... --load c1 [--processes 3] [--rounds 2] [--requests 1000]
 *
 * Starts one emulator (load core) and the min proxy, then, `processes` times, a fresh bench/tokengrid-server.ts
 * of each tree (server core, one under load at a time): for non-streaming and streaming requests a warm-up of
 * each, and `rounds` rounds of `slice` seconds of autocannon load on proxy, A and B in turn (order rotated per
 * round). Prints per-round CPU us/request and the medians, and B/A. Run it under the bench lock. Fresh
 * processes matter: an A/A run (one tree as both; `--processes 1 --rounds 6`) gave B/A 1.035 and 1.049, every streaming
 * round but one above 1: a process keeps its JIT and heap layout luck for life.
 *
 * `--load c1`: the c1 scenario instead (one request at a time, bench/lib/c1.ts): 15,000 warm-up requests
 * each, then `rounds` rounds of `requests` sequential requests per target in blocks of 250 (order rotated
 * per round); per round the main-thread and all-threads CPU per request, then the medians, B/A, and the
 * latency percentiles over all rounds. A lone request's CPU is what its latency is made of on one core.
 */
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { detectPinning, killAllNow, pinSelf, serverNodeFlags, spawnEmulator, spawnNode, stopAll, type Child } from './lib/procs.ts';
import { makeTarget, type Target } from './lib/targets.ts';
import { runThroughput } from './lib/throughput.ts';
import { runC1Blocks } from './lib/c1.ts';
import { summarize } from './lib/stats.ts';
import { arg } from './lib/args.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const rounds = Number(arg('rounds', '2'));
const processes = Number(arg('processes', '3'));
const slice = Number(arg('slice', '3'));
const load = arg('load', 'throughput');
const c1Requests = Number(arg('requests', '1000'));
if (load !== 'throughput' && load !== 'c1') throw new Error('--load throughput | c1');
const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const pin = detectPinning(os.cpus().length);
  pinSelf(pin);
  const emulator = await spawnEmulator(pin);
  const url = emulator.info.url as string;
  // Each tree's TokenGrid runs with the node flags of its own npm start; the proxy with this tree's.
  const proxy = await spawnNode('min-proxy', join(ROOT, 'bench/min-proxy.ts'), ['--upstream', url], {
    core: pin.serverCore,
    pinning: pin,
    ipc: true,
    nodeFlags: serverNodeFlags(),
  });
  const tg = (tree: string, name: string): Promise<Child> =>
    spawnNode(name, join(tree, 'bench/tokengrid-server.ts'), ['--emulator', url, '--log-level', 'warn'], {
      core: pin.serverCore,
      pinning: pin,
      ipc: true,
      nodeFlags: serverNodeFlags(pathToFileURL(`${tree}/`)),
    });
  const proxyTarget = makeTarget('minProxy', proxy.info.url, proxy.pid, 'bench');
  // A fresh A and B for each of `processes` generations: two processes of the same tree can differ by 5 to
  // 10 % for their whole life (JIT and heap layout), which one pair would report as a difference of code.
  const generation = async (fn: (targets: Target[], g: number) => Promise<void>): Promise<void> => {
    for (let g = 0; g < processes; g++) {
      const a = await tg(arg('a'), 'A');
      const b = await tg(arg('b'), 'B');
      try {
        await fn(
          [
            proxyTarget,
            { ...makeTarget('tokengrid', a.info.url, a.pid, a.info.key), label: 'A' },
            { ...makeTarget('tokengrid', b.info.url, b.pid, b.info.key), label: 'B' },
          ],
          g,
        );
      } finally {
        await a.stop();
        await b.stop();
      }
    }
  };
  if (load === 'c1') {
    await abC1(generation);
    await stopAll();
    return;
  }
  for (const stream of [false, true]) {
    const us: Record<string, number[]> = { 'min proxy': [], A: [], B: [] };
    await generation(async (targets, g) => {
      for (const t of targets) await runThroughput(t, emulator.pid, stream, { connections: 64, durationS: 1, warmupS: 1 }, pin);
      for (let k = 0; k < rounds; k++) {
        const r = g * rounds + k;
        const order = targets.map((_, i) => targets[(i + r) % targets.length]!);
        const line: string[] = [];
        for (const t of order) {
          const res = await runThroughput(t, emulator.pid, stream, { connections: 64, durationS: slice, warmupS: 0 }, pin);
          us[t.label]!.push(res.serverCpuUsPerReq);
          line.push(
            `${t.label} ${res.serverCpuUsPerReq.toFixed(0)}${res.errors + res.non2xx + res.timeouts > 0 ? ' (errors!)' : ''}${res.serverCoreOthers > 0.1 ? ` (others ${(100 * res.serverCoreOthers).toFixed(0)}%)` : ''}`,
          );
        }
        process.stderr.write(`${stream ? 'stream' : 'non-stream'} process ${g + 1} round ${k + 1}: ${line.join(', ')}\n`);
      }
    });
    const n = processes * rounds;
    const m = Object.fromEntries(Object.entries(us).map(([k, v]) => [k, median(v)]));
    console.log(
      `${stream ? 'streaming (20 chunks)' : 'non-streaming'}: CPU us/request, median of ${n} x ${slice} s (${processes} process pairs): min proxy ${m['min proxy']!.toFixed(0)}, A ${m.A!.toFixed(0)}, B ${m.B!.toFixed(0)}; B/A of medians ${(m.B! / m.A!).toFixed(3)}, median of per-round B/A ${median(us.B!.map((v, i) => v / us.A![i]!)).toFixed(3)}; per-round B/A ${us.B!.map((v, i) => (v / us.A![i]!).toFixed(2)).join(' ')}`,
    );
  }
  await stopAll();
}

async function abC1(generation: (fn: (targets: Target[], g: number) => Promise<void>) => Promise<void>): Promise<void> {
  const cpu: Record<string, number[]> = { 'min proxy': [], A: [], B: [] };
  const all: Record<string, number[]> = { 'min proxy': [], A: [], B: [] };
  const samples: Record<string, number[]> = { 'min proxy': [], A: [], B: [] };
  await generation(async (targets, g) => {
    // As the c1 scenario (bench/lib/options.ts): V8 keeps compiling TokenGrid's request path for thousands of requests.
    await runC1Blocks(targets, { requests: 0, warmup: 15_000, block: 250 });
    for (let k = 0; k < rounds; k++) {
      const r = g * rounds + k;
      const order = targets.map((_, i) => targets[(i + r) % targets.length]!);
      const res = await runC1Blocks(order, { requests: c1Requests, warmup: 0, block: 250 });
      const line: string[] = [];
      order.forEach((t, i) => {
        const x = res[i]!;
        cpu[t.label]!.push(x.cpuMsPerReq * 1000);
        all[t.label]!.push(x.allThreadsCpuMsPerReq * 1000);
        samples[t.label]!.push(...x.samplesMs);
        line.push(`${t.label} ${(x.cpuMsPerReq * 1000).toFixed(0)} (all ${(x.allThreadsCpuMsPerReq * 1000).toFixed(0)})${x.errors > 0 ? ' (errors!)' : ''}`);
      });
      process.stderr.write(`c1 process ${g + 1} round ${k + 1}: CPU us/request ${line.join(', ')}\n`);
    }
  });
  const labels = ['min proxy', 'A', 'B'];
  for (const [name, m] of [
    ['main thread', cpu],
    ['all threads', all],
  ] as const) {
    const med = Object.fromEntries(labels.map((l) => [l, median(m[l]!)]));
    console.log(
      `c1 ${name}: CPU us/request, median of ${processes * rounds} x ${c1Requests} (${processes} process pairs): min proxy ${med['min proxy']!.toFixed(0)}, A ${med.A!.toFixed(0)}, B ${med.B!.toFixed(0)}; B/A of medians ${(med.B! / med.A!).toFixed(3)}; per-round B/A ${m.B!.map((v, i) => (v / m.A![i]!).toFixed(2)).join(' ')}`,
    );
  }
  for (const l of labels) {
    const x = summarize(samples[l]!);
    console.log(`c1 latency ${l}: p50 ${x.p50.toFixed(3)} p90 ${x.p90.toFixed(3)} p99 ${x.p99.toFixed(3)} ms (n ${x.n})`);
  }
}

main().catch(async (e: unknown) => {
  console.error(e);
  killAllNow();
  process.exit(1);
});
