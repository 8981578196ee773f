/**
 * `npm run bench [-- --quick | --profile | --only ...]` (and `npm run bench -- cost [--quick]`: bench/cost.ts): TokenGrid against a bare Node proxy and the
 * upstream emulator itself, on loopback, in one run, with the same emulator, bodies and load for all three.
 *
 * Placement (2 cores): the server under test (min proxy or TokenGrid, one at a time under load) on core 0;
 * this orchestrator (autocannon and the timing clients) and the emulator on core 1. The server under test
 * thus has a core of its own, and its throughput reflects its own CPU cost per request; the load core's
 * busy share is reported with each throughput figure so a load-bound run is visible. See bench/README.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runC1 } from './lib/c1.ts';
import { mainThreadCpuMsOf } from './lib/procs.ts';
import { machineInfo, versions } from './lib/machine.ts';
import { runMemory } from './lib/memory.ts';
import { parseOptions, type BenchOptions } from './lib/options.ts';
import { detectPinning, killAllNow, pinSelf, serverNodeFlags, spawnEmulator, spawnNode, stopAll, type Child, type Pinning } from './lib/procs.ts';
import { buildJson, printTables, type ChargingBenchResult, type RawResults } from './lib/report.ts';
import { runPaced } from './lib/streaming.ts';
import { makeTarget, type Target, type TargetName } from './lib/targets.ts';
import { mergeSlices, runThroughput, type ThroughputResult } from './lib/throughput.ts';
import { summarizeProfile } from './profile-summary.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const at = (p: string): string => join(ROOT, p);
const t0 = performance.now();
const log = (msg: string): void => {
  process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);
};

/** npm start's node flags: TokenGrid and the min proxy run with them. */
const SERVER_FLAGS = serverNodeFlags();

const PACED = { ttftMs: 20, chunkIntervalMs: 20, tokensPerChunk: 1, outputTokens: 64 };

function startTokenGrid(o: BenchOptions, pin: Pinning, emulatorUrl: string, nodeFlags: string[]): Promise<Child> {
  return spawnNode('tokengrid', at('bench/tokengrid-server.ts'), ['--emulator', emulatorUrl, '--log-level', o.logLevel], {
    core: pin.serverCore,
    pinning: pin,
    ipc: true,
    nodeFlags: [...SERVER_FLAGS, ...nodeFlags],
  });
}

function startMinProxy(pin: Pinning, emulatorUrl: string, nodeFlags: string[]): Promise<Child> {
  return spawnNode('min-proxy', at('bench/min-proxy.ts'), ['--upstream', emulatorUrl], {
    core: pin.serverCore,
    pinning: pin,
    ipc: true,
    nodeFlags: [...SERVER_FLAGS, ...nodeFlags],
  });
}

async function setEmulatorDefaults(url: string, body: Record<string, number>): Promise<void> {
  const res = await fetch(`${url}/__emulator/defaults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (res.status !== 200) throw new Error(`emulator defaults: ${res.status} ${await res.text()}`);
}

function fmtTp(r: ThroughputResult): string {
  return `${r.rps.toFixed(0)} req/s, p50 ${r.latencyP50Ms} ms, p99 ${r.latencyP99Ms} ms, errors ${r.errors + r.timeouts + r.non2xx}, server CPU ${(100 * r.serverCpuCores).toFixed(0)}%${Number.isFinite(r.serverCoreOthers) ? ` (others on its core ${(100 * r.serverCoreOthers).toFixed(0)}%)` : ''}, load core ${(100 * r.loadCoreBusy).toFixed(0)}%`;
}

async function runCharging(o: BenchOptions, pin: Pinning): Promise<ChargingBenchResult> {
  const child = await spawnNode('charging', at('bench/charging-bench.ts'), ['--seconds', String(o.chargingSeconds), '--accounts', '1,100'], {
    core: pin.serverCore,
    pinning: pin,
    timeoutMs: 60_000 + 4 * o.chargingSeconds * 1000,
  });
  await child.stop();
  return child.info as unknown as ChargingBenchResult;
}

/**
 * --profile: TokenGrid (and, for reference, the min proxy) under the throughput load, V8 CPU profiler on for
 * the measured window only (after the warm-up; see lib/child-ipc.ts), one .cpuprofile per run.
 */
async function profile(o: BenchOptions, pin: Pinning, emulator: Child): Promise<void> {
  const dir = at('bench/results/profiles');
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const runs: { who: 'tokengrid' | 'minProxy'; stream: boolean }[] = [
    { who: 'tokengrid', stream: false },
    { who: 'tokengrid', stream: true },
    { who: 'minProxy', stream: false },
  ];
  for (const r of o.scenarios.has('throughput') ? runs : []) {
    const file = join(dir, `${stamp}-${r.who}-${r.stream ? 'stream' : 'nonstream'}.cpuprofile`);
    const child = r.who === 'tokengrid' ? await startTokenGrid(o, pin, emulator.info.url, []) : await startMinProxy(pin, emulator.info.url, []);
    const target = makeTarget(r.who, child.info.url, child.pid, r.who === 'tokengrid' ? child.info.key : 'bench');
    log(
      `profiling ${target.label} ${r.stream ? 'streaming' : 'non-streaming'} (${o.throughput.warmupS} s warm-up, then ${o.throughput.durationS} s profiled at ${o.throughput.connections} connections)`,
    );
    const res = await runThroughput(target, emulator.pid, r.stream, o.throughput, pin, {
      beforeMeasure: async () => {
        await child.request('profileStart', 10_000, '250');
      },
      afterMeasure: async () => {
        await child.request('profileStop', 60_000, file);
      },
    });
    log(`  ${fmtTp(res)}, ${res.serverCpuUsPerReq.toFixed(0)} CPU us/req`);
    await child.stop();
    console.log(
      `\n=== ${target.label}, ${r.stream ? 'streaming' : 'non-streaming'}: ${res.rps.toFixed(0)} req/s, ${res.serverCpuUsPerReq.toFixed(0)} CPU us/req (profiler on) ===`,
    );
    console.log(summarizeProfile(file, 25));
  }
  // Paced streams: where a chunk's time goes when chunks arrive one by one (the paced scenario's load).
  if (o.scenarios.has('paced')) {
    const file = join(dir, `${stamp}-tokengrid-paced.cpuprofile`);
    const child = await startTokenGrid(o, pin, emulator.info.url, []);
    const target = makeTarget('tokengrid', child.info.url, child.pid, child.info.key);
    await setEmulatorDefaults(emulator.info.url, PACED);
    log(`profiling TokenGrid under paced streams (${o.paced.rounds} rounds of ${o.paced.concurrency} streams, after a warm-up round)`);
    await runPaced([target], { ...o.paced, rounds: 1 });
    await child.request('profileStart', 10_000, '250');
    const cpu0 = mainThreadCpuMsOf(child.pid);
    await runPaced([target], { ...o.paced, rounds: o.paced.rounds * 4 });
    const cpuMs = mainThreadCpuMsOf(child.pid) - cpu0;
    await child.request('profileStop', 60_000, file);
    await child.stop();
    await setEmulatorDefaults(emulator.info.url, { ttftMs: 0, chunkIntervalMs: 0, outputTokens: o.answerTokens });
    const streams = o.paced.rounds * 4 * o.paced.concurrency;
    console.log(
      `\n=== TokenGrid, paced streams: ${streams} streams of ${o.paced.expectedChunks} chunks, ${((cpuMs * 1000) / streams / o.paced.expectedChunks).toFixed(0)} main-thread CPU us per chunk (profiler on) ===`,
    );
    console.log(summarizeProfile(file, 25));
  }
  // Concurrency 1: where a lone request's time goes (sequential client, as the c1 scenario).
  if (!o.scenarios.has('c1')) return;
  const file = join(dir, `${stamp}-tokengrid-c1.cpuprofile`);
  const child = await startTokenGrid(o, pin, emulator.info.url, []);
  const target = makeTarget('tokengrid', child.info.url, child.pid, child.info.key);
  log(`profiling TokenGrid at concurrency 1 (${o.c1.warmup} warm-up, then ${o.c1.requests} sequential requests profiled)`);
  await runC1([target], { requests: 0, warmup: o.c1.warmup, block: o.c1.block });
  await child.request('profileStart', 10_000, '250');
  const c1 = await runC1([target], { requests: o.c1.requests, warmup: 0, block: o.c1.block });
  await child.request('profileStop', 60_000, file);
  await child.stop();
  const l = c1.latencyMs.tokengrid;
  console.log(
    `\n=== TokenGrid, concurrency 1: p50 ${l.p50.toFixed(3)} ms, p99 ${l.p99.toFixed(3)} ms, ${(c1.serverCpuMsPerReq.tokengrid * 1000).toFixed(0)} CPU us/req (profiler on) ===`,
  );
  console.log(summarizeProfile(file, 25));
}

async function main(): Promise<void> {
  // `--store postgres`: the scale-out engines' charging bench (bench/store-bench.ts), its own run and options.
  if (process.argv.includes('--store')) {
    const { runStoreBench } = await import('./store-bench.ts');
    await runStoreBench(process.argv.slice(2));
    return;
  }
  const o = parseOptions(process.argv.slice(2));
  const pin = detectPinning(os.cpus().length);
  if (!pin.available || pin.serverCore === pin.loadCore) console.error(`WARNING: ${pin.note}`);
  pinSelf(pin);
  log(
    `mode ${o.mode}${o.profile ? ' (profile)' : ''}; ${pin.note}; load generator: autocannon ${versions().autocannon} (in this process) + undici clients, on core ${pin.loadCore}`,
  );
  const machine = machineInfo(pin);
  const emulator = await spawnEmulator(pin, o.answerTokens);
  log(`emulator ${emulator.info.url} (pid ${emulator.pid}, core ${pin.loadCore}, zero think time, ${o.answerTokens}-token answers)`);
  if (o.profile) {
    await profile(o, pin, emulator);
    return;
  }
  const gcFlags = ['--expose-gc'];
  const proxy = await startMinProxy(pin, emulator.info.url, gcFlags);
  const tg = await startTokenGrid(o, pin, emulator.info.url, gcFlags);
  log(`min proxy ${proxy.info.url} (pid ${proxy.pid}), TokenGrid ${tg.info.url} (pid ${tg.pid}, account ${tg.info.accountId}), both on core ${pin.serverCore}`);
  const targets: Target[] = [
    makeTarget('direct', emulator.info.url, emulator.pid, 'bench'),
    makeTarget('minProxy', proxy.info.url, proxy.pid, 'bench'),
    makeTarget('tokengrid', tg.info.url, tg.pid, tg.info.key),
  ];
  const raw: RawResults = {};
  const s = o.scenarios;

  if (s.has('c1')) {
    log(`c1: ${o.c1.requests} sequential requests per target (+${o.c1.warmup} warm-up), interleaved in blocks of ${o.c1.block}`);
    raw.c1 = await runC1(targets, o.c1);
    for (const t of targets)
      log(
        `  ${t.label}: p50 ${raw.c1.latencyMs[t.name].p50.toFixed(3)} ms, p99 ${raw.c1.latencyMs[t.name].p99.toFixed(3)} ms, server CPU ${(raw.c1.serverCpuMsPerReq[t.name] * 1000).toFixed(0)} us/req (all threads ${(raw.c1.serverAllThreadsCpuMsPerReq[t.name] * 1000).toFixed(0)})`,
      );
  }
  if (s.has('throughput')) {
    raw.throughput = { nonStream: {}, stream: {} };
    // Interleaved: each target is measured in `slices` slices, the order rotated every round, so a noisy
    // stretch of the shared machine lands on every target instead of biasing one ratio (bench/README.md).
    const slices = o.throughput.slices ?? 1;
    const sliceS = o.throughput.durationS / slices;
    for (const stream of [false, true]) {
      const mode = stream ? 'streaming' : 'non-streaming';
      log(
        `throughput ${mode}: ${o.throughput.connections} connections, ${o.throughput.warmupS} s warm-up per target, then ${slices} interleaved slices of ${sliceS} s per target`,
      );
      for (const t of targets) await runThroughput(t, emulator.pid, stream, { ...o.throughput, durationS: o.throughput.warmupS, warmupS: 0 }, pin);
      const got = new Map<TargetName, ThroughputResult[]>(targets.map((t) => [t.name, []]));
      for (let i = 0; i < slices; i++) {
        for (let k = 0; k < targets.length; k++) {
          const t = targets[(i + k) % targets.length]!;
          got.get(t.name)!.push(await runThroughput(t, emulator.pid, stream, { ...o.throughput, durationS: sliceS, warmupS: 0 }, pin));
        }
      }
      for (const t of targets) {
        const r = mergeSlices(got.get(t.name)!);
        raw.throughput[stream ? 'stream' : 'nonStream'][t.name] = r;
        log(`  ${t.label}: ${fmtTp(r)}${slices > 1 ? `; CPU us/req per slice ${r.sliceCpuUsPerReq!.map((v) => v.toFixed(0)).join(' ')}` : ''}`);
      }
    }
  }
  if (s.has('charging')) {
    log(
      `charging engine alone: ${o.chargingSeconds} s each: file db with 1 account, 100 accounts, 1 account x 64 in flight; in-memory db with 1 account (child process on core ${pin.serverCore})`,
    );
    raw.charging = await runCharging(o, pin);
    for (const r of raw.charging.results)
      log(
        `  ${r.accounts} account(s), ${r.db} db, ${r.concurrency} in flight: ${r.pairsPerSec.toFixed(0)} pairs/s (reserve ${r.reserveMeanUs.toFixed(0)} us, settle ${r.settleMeanUs.toFixed(0)} us)`,
      );
  }
  if (s.has('paced') || s.has('memory')) {
    await setEmulatorDefaults(emulator.info.url, PACED);
    log(`emulator paced: ${PACED.ttftMs} ms to first token, ${PACED.outputTokens} chunks ${PACED.chunkIntervalMs} ms apart`);
  }
  if (s.has('paced')) {
    log(
      `paced streaming: ${o.paced.rounds} rounds, each ${o.paced.concurrency} streams per target, all targets interleaved ${o.paced.staggerMs} ms apart (+1 warm-up round)`,
    );
    raw.paced = await runPaced(targets, o.paced);
    raw.pacedChunks = o.paced.expectedChunks;
    for (const t of targets)
      log(`  ${t.label}: TTFT p50 ${raw.paced[t.name].ttftMs.p50.toFixed(3)} ms, median per-stream mean gap ${raw.paced[t.name].meanGapMs.p50.toFixed(4)} ms`);
  }
  if (s.has('memory')) {
    raw.memory = {};
    raw.memoryStreams = o.memory.streams;
    const servers = { direct: undefined, minProxy: proxy, tokengrid: tg };
    for (const t of targets) {
      const tg = t.name === 'tokengrid';
      const rounds = tg ? o.memory.rounds : o.memory.roundsOthers;
      const warmupRounds = tg ? o.memory.warmupRounds : o.memory.warmupRoundsOthers;
      log(`memory ${t.label}: ${warmupRounds} warm-up + ${rounds} round(s) of ${o.memory.streams} concurrent paced streams`);
      const m = await runMemory(t, servers[t.name], { ...o.memory, rounds, warmupRounds });
      raw.memory[t.name] = m;
      for (const r of m.rounds)
        log(
          `  peak ${r.peakRssMb.toFixed(1)} MB, after GC ${r.afterRssMb.toFixed(1)} MB, ${(r.durationMs / 1000).toFixed(1)} s, open max ${r.openMax}, done ${r.completed}, errors ${r.errors}`,
        );
    }
  }
  // Requests cut by the end of a load run settle (client_aborted) a moment later: wait for the holds to clear.
  for (let i = 0; i < 30; i++) {
    raw.tokengridUsage = await tg.request('usage', 120_000);
    if (raw.tokengridUsage!.coinsHeld === 0) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  log(
    `TokenGrid charging check: ${raw.tokengridUsage!.usageRecords} usage records, ${raw.tokengridUsage!.coinsUsed} coins used, ${raw.tokengridUsage!.coinsHeld} coins still held`,
  );
  await stopAll();

  const args = process.argv.slice(2);
  const json = buildJson(raw, {
    mode: o.mode,
    command: `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`,
    finishedAt: new Date().toISOString(),
    durationS: Math.round((performance.now() - t0) / 100) / 10,
    scenarios: [...s],
    settings: {
      c1: o.c1,
      throughput: o.throughput,
      paced: o.paced,
      memory: o.memory,
      chargingSeconds: o.chargingSeconds,
      emulator: { zeroThink: { ttftMs: 0, chunkIntervalMs: 0, outputTokens: o.answerTokens }, paced: PACED },
      tokengridLogLevel: o.logLevel,
    },
    machine: { ...machine, loadAvgAtEnd: os.loadavg().map((n) => Math.round(n * 100) / 100) },
    versions: versions(),
  });
  mkdirSync(dirname(o.out), { recursive: true });
  writeFileSync(o.out, `${JSON.stringify(json, null, 2)}\n`);
  printTables(raw, json);
  log(`wrote ${o.out}`);
}

process.once('SIGINT', () => {
  log('interrupted: stopping children');
  void stopAll().finally(() => process.exit(130));
});
process.once('SIGTERM', () => {
  void stopAll().finally(() => process.exit(143));
});
process.on('exit', killAllNow);

// `npm run bench -- cost [--quick]`: the cost benchmark of issue 17 (bench/cost.ts), in-process, no children.
const main_ =
  process.argv[2] === 'cost'
    ? async (): Promise<void> => {
        const { runCost } = await import('./cost.ts');
        await runCost(process.argv.slice(3));
      }
    : main;

main_()
  .then(() => stopAll())
  .catch(async (e: unknown) => {
    console.error(e instanceof Error ? e.stack : e);
    await stopAll();
    process.exit(1);
  });
