/**
 * What V8 compiles and throws away while TokenGrid serves lone requests: TokenGrid runs with
 * `--trace-opt --trace-deopt`, one sequential client sends `windows` x 1,000 requests (as the c1 scenario),
 * and each window reports the TurboFan jobs that finished in it, their compile time, and the functions whose
 * optimized code was discarded ("marking dependent code" and eager bailouts). This is how the c1 warm-up
 * (bench/lib/options.ts) and the transaction gate's priming (store/sqlite/tx-gate.ts, since removed: billing
 * applies its plans synchronously, issue 14 item 1) were found.
 *
 *   flock /tmp/bench.lock node --import tsx bench/jit-trace.ts [--windows 18] [--names]
 */
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { arg } from './lib/args.ts';
import { detectPinning, killAllNow, pinSelf, serverNodeFlags, spawnEmulator, spawnNode, stopAll } from './lib/procs.ts';
import { chatBody, makeTarget, PATH } from './lib/targets.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const windows = Number(arg('windows', '18'));
const names = process.argv.includes('--names');

interface Window {
  jobs: number;
  compileMs: number;
  discarded: string[];
  slowOver2Ms: number;
}

async function main(): Promise<void> {
  const pin = detectPinning(os.cpus().length);
  pinSelf(pin);
  const emulator = await spawnEmulator(pin);
  const win: Window[] = [];
  let current: Window = { jobs: 0, compileMs: 0, discarded: [], slowOver2Ms: 0 };
  let startS = NaN;
  const tg = await spawnNode('tokengrid', join(ROOT, 'bench/tokengrid-server.ts'), ['--emulator', emulator.info.url, '--log-level', 'warn'], {
    core: pin.serverCore,
    pinning: pin,
    ipc: true,
    nodeFlags: [...serverNodeFlags(), '--trace-opt', '--trace-deopt'],
    ready: (line) => {
      // One job prints "completed compiling ... took a, b, c ms" and then "completed optimizing": count the first.
      const job = /completed compiling .* took ([\d.]+), ([\d.]+), ([\d.]+) ms/.exec(line);
      if (job) {
        current.jobs++;
        current.compileMs += Number(job[1]) + Number(job[2]) + Number(job[3]);
      }
      const gone = /(?:marking dependent code .*SharedFunctionInfo ?([^>]*)>|bailout .*deoptimizing .*<JSFunction (\S*?) ?\(sfi)/.exec(line);
      if (gone) current.discarded.push(`${(gone[1] ?? gone[2] ?? '').trim() || '(anonymous)'} @${(performance.now() / 1000 - startS).toFixed(1)}s`);
      if (!line.startsWith('{"ready"')) return undefined;
      startS = performance.now() / 1000;
      return JSON.parse(line) as Record<string, unknown>;
    },
  });
  const t = makeTarget('tokengrid', tg.info.url, tg.pid, tg.info.key);
  const pool = new Pool(t.url, { connections: 1, pipelining: 1, keepAliveTimeout: 60_000 });
  const body = chatBody(false);
  try {
    for (let w = 0; w < windows; w++) {
      current = { jobs: 0, compileMs: 0, discarded: [], slowOver2Ms: 0 };
      win.push(current);
      for (let i = 0; i < 1000; i++) {
        const t0 = process.hrtime.bigint();
        const res = await pool.request({ method: 'POST', path: PATH, headers: t.headers, body });
        await res.body.arrayBuffer();
        if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
        if (process.hrtime.bigint() - t0 > 2_000_000n) current.slowOver2Ms++;
      }
    }
    await new Promise((r) => setTimeout(r, 200)); // the last window's trace lines
    // Closing the connection discards code of its own (socket teardown): not part of any window.
    current = { jobs: 0, compileMs: 0, discarded: [], slowOver2Ms: 0 };
  } finally {
    await pool.close();
    await stopAll();
  }
  console.log('requests     TurboFan jobs  compile ms  discarded  requests > 2 ms');
  win.forEach((x, i) => {
    console.log(
      `${String(i * 1000 + 1).padStart(6)}-${String((i + 1) * 1000).padEnd(6)} ${String(x.jobs).padStart(13)}  ${x.compileMs.toFixed(1).padStart(10)}  ${String(x.discarded.length).padStart(9)}  ${String(x.slowOver2Ms).padStart(15)}`,
    );
    if (names && x.discarded.length > 0) console.log(`    discarded: ${x.discarded.join(', ')}`);
  });
  console.log('(times after "@" are seconds since TokenGrid was ready; the trace itself slows every request)');
}

main().catch((e: unknown) => {
  console.error(e);
  killAllNow();
  process.exit(1);
});
