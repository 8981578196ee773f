/**
 * Syscalls the min proxy and TokenGrid make for the same load, counted with `strace -c -f` attached to each
 * server process (needs strace: `apt-get install strace`). Two loads:
 *   --load c1     sequential non-streaming requests (as the c1 scenario), per request;
 *   --load paced  paced streams (20 ms TTFT, 64 chunks 20 ms apart, as the paced scenario), per chunk.
 *
 *   flock /tmp/bench.lock node --import tsx bench/syscalls.ts --load paced
 *
 * Extra epoll_pwait calls per chunk with no I/O are timer wake-ups (how the 100 Hz event-loop monitor was
 * found); pwrite64 per request are SQLite WAL frame writes (two per page).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { detectPinning, pinSelf, serverNodeFlags, spawnEmulator, spawnNode, stopAll } from './lib/procs.ts';
import { makeTarget, type Target } from './lib/targets.ts';
import { runC1 } from './lib/c1.ts';
import { runPaced } from './lib/streaming.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const at = (p: string): string => join(ROOT, p);
const i = process.argv.indexOf('--load');
const load = i >= 0 ? process.argv[i + 1] : 'paced';
if (load !== 'c1' && load !== 'paced') throw new Error('--load c1 | paced');

const pin = detectPinning(os.cpus().length);
pinSelf(pin);
const emu = await spawnEmulator(pin);
const proxy = await spawnNode('min-proxy', at('bench/min-proxy.ts'), ['--upstream', emu.info.url], {
  core: pin.serverCore,
  pinning: pin,
  ipc: true,
  nodeFlags: serverNodeFlags(),
});
const tg = await spawnNode('tokengrid', at('bench/tokengrid-server.ts'), ['--emulator', emu.info.url, '--log-level', 'warn'], {
  core: pin.serverCore,
  pinning: pin,
  ipc: true,
  nodeFlags: serverNodeFlags(),
});
const targets: Target[] = [makeTarget('minProxy', proxy.info.url, proxy.pid, 'bench'), makeTarget('tokengrid', tg.info.url, tg.pid, tg.info.key)];
const paced = { rounds: 4, concurrency: 4, staggerMs: 1.5, expectedChunks: 64 };
const requests = 500;
try {
  if (load === 'paced') {
    await fetch(`${emu.info.url}/__emulator/defaults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ttftMs: 20, chunkIntervalMs: 20, tokensPerChunk: 1, outputTokens: 64 }),
    });
    await runPaced(targets, { ...paced, rounds: 1 }); // warm-up
  } else {
    await runC1(targets, { requests: 0, warmup: 300, block: 100 });
  }
  const out = (t: Target): string => join(tmpdir(), `tokengrid-strace-${load}-${t.name}-${process.pid}.txt`);
  const tracers = targets.map((t) => spawn('strace', ['-c', '-f', '-p', String(t.serverPid), '-o', out(t)], { stdio: 'ignore' }));
  await new Promise((r) => setTimeout(r, 1000)); // attached
  if (load === 'paced') await runPaced(targets, paced);
  else await runC1(targets, { requests, warmup: 0, block: 100 });
  await Promise.all(
    tracers.map(
      (p) =>
        new Promise((r) => {
          p.once('exit', r);
          p.kill('SIGINT');
        }),
    ),
  );
  const units = load === 'paced' ? paced.rounds * paced.concurrency * paced.expectedChunks : requests;
  console.log(`syscalls per ${load === 'paced' ? 'chunk' : 'request'} (${units} of them; strace -c -f on each server process)`);
  const rows = new Map<string, Record<string, number>>();
  for (const t of targets) {
    for (const line of readFileSync(out(t), 'utf8').split('\n')) {
      const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/.exec(line);
      if (m === null || m[2] === 'total') continue;
      const r = rows.get(m[2]!) ?? {};
      r[t.name] = Number(m[1]) / units;
      rows.set(m[2]!, r);
    }
  }
  console.log(`${'syscall'.padEnd(16)}${'min proxy'.padStart(10)}${'TokenGrid'.padStart(10)}`);
  for (const [name, r] of [...rows].sort((a, b) => (b[1].tokengrid ?? 0) - (a[1].tokengrid ?? 0))) {
    console.log(`${name.padEnd(16)}${(r.minProxy ?? 0).toFixed(2).padStart(10)}${(r.tokengrid ?? 0).toFixed(2).padStart(10)}`);
  }
} finally {
  await stopAll();
}
