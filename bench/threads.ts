/**
 * TokenGrid's CPU per request, thread by thread, under the throughput load (64 connections, non-streaming
 * by default). The bench pins the whole server to one core, so every other thread's time is time the main
 * thread could not run. All of Node's threads are named "node", so each is shown by its id's offset from the
 * process id: on Node 20 here, +2 to +5 were V8's platform workers (parallel scavenges, concurrent marking,
 * the optimizing compiler) and +7 to +10 libuv's pool (under this load only the WAL flusher's fdatasync).
 *
 *   flock /tmp/bench.lock node --import tsx bench/threads.ts [--slices 3] [--slice 4] [--stream]
 */
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg } from './lib/args.ts';
import { detectPinning, killAllNow, pinSelf, serverNodeFlags, spawnEmulator, spawnNode, stopAll, threadCpuMsOf } from './lib/procs.ts';
import { makeTarget } from './lib/targets.ts';
import { runThroughput } from './lib/throughput.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const slices = Number(arg('slices', '3'));
const sliceS = Number(arg('slice', '4'));
const stream = process.argv.includes('--stream');

async function main(): Promise<void> {
  const pin = detectPinning(os.cpus().length);
  pinSelf(pin);
  const emulator = await spawnEmulator(pin);
  const tg = await spawnNode('tokengrid', join(ROOT, 'bench/tokengrid-server.ts'), ['--emulator', emulator.info.url, '--log-level', 'warn'], {
    core: pin.serverCore,
    pinning: pin,
    ipc: true,
    nodeFlags: serverNodeFlags(),
  });
  const t = makeTarget('tokengrid', tg.info.url, tg.pid, tg.info.key);
  try {
    await runThroughput(t, emulator.pid, stream, { connections: 64, durationS: 3, warmupS: 1 }, pin);
    console.log(`TokenGrid, ${stream ? 'streaming (20 chunks)' : 'non-streaming'}, 64 connections: CPU us per request`);
    for (let s = 0; s < slices; s++) {
      const a = threadCpuMsOf(tg.pid);
      const res = await runThroughput(t, emulator.pid, stream, { connections: 64, durationS: sliceS, warmupS: 0 }, pin);
      const b = threadCpuMsOf(tg.pid);
      const per = (ms: number): number => (ms * 1000) / res.requests2xx;
      const rows = [...b].sort(([x], [y]) => x - y).map(([tid, ms]) => [tid - tg.pid, per(ms - (a.get(tid) ?? 0))] as const);
      const all = rows.reduce((sum, [, us]) => sum + us, 0);
      const main = rows.find(([off]) => off === 0)?.[1] ?? NaN;
      const others = rows
        .filter(([off, us]) => off !== 0 && us >= 0.005)
        .map(([off, us]) => `+${off} ${us.toFixed(2)}`)
        .join(', ');
      console.log(
        `slice ${s + 1}: ${res.requests2xx} requests; all threads ${all.toFixed(1)}, main ${main.toFixed(1)}, other threads ${(all - main).toFixed(1)} (${others})`,
      );
    }
  } finally {
    await stopAll();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  killAllNow();
  process.exit(1);
});
