/**
 * Child processes of the bench: spawned pinned to a core with taskset (when present), ready when they print
 * their URL line, measured through /proc (CPU ticks, VmRSS), and all killed when the bench exits, errs or is
 * interrupted.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface Pinning {
  available: boolean;
  /** Cores used: the server under test, and the load generator (+ emulator). */
  serverCore: number;
  loadCore: number;
  note: string;
}

export function detectPinning(cores: number): Pinning {
  let available = false;
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    available = true;
  } catch {
    /* not installed */
  }
  if (!available)
    return {
      available,
      serverCore: 0,
      loadCore: cores > 1 ? 1 : 0,
      note: 'taskset not found: processes are NOT pinned (install util-linux); ratios are noisier',
    };
  if (cores < 2) return { available, serverCore: 0, loadCore: 0, note: 'only one core: server and load share core 0; throughput figures are not meaningful' };
  return { available, serverCore: 0, loadCore: 1, note: 'server under test pinned to core 0; load generator, clients and emulator pinned to core 1' };
}

/** Pin this (orchestrator) process and all its threads to `core`. */
export function pinSelf(p: Pinning): void {
  if (!p.available) return;
  execFileSync('taskset', ['-a', '-cp', String(p.loadCore), String(process.pid)], { stdio: 'ignore' });
}

const CLK_TCK = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** user + system CPU of a process (all threads), in ms; 10 ms resolution. */
export function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // after "pid (comm) ": state is field 0, utime field 11, stime field 12
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

/**
 * CPU time of a process's main thread in ms with nanosecond resolution (/proc/PID/schedstat: the thread
 * group leader). The JS thread does the request work, so this is the figure that relates to latency.
 */
export function mainThreadCpuMsOf(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
}

/** CPU time of each thread of a process in ms, by thread id, ns resolution (/proc/PID/task/TID/schedstat). */
export function threadCpuMsOf(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      out.set(Number(tid), Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e6);
    } catch {
      // the thread exited after the listing
    }
  }
  return out;
}

/**
 * CPU time of all of a process's threads in ms. The bench pins the whole server to one core, so what its
 * other threads do (the libuv pool's fdatasync, V8's background compiler and collector) is time the main
 * thread cannot run. A thread that exits between two readings takes its time with it (libuv's and V8's
 * threads live as long as the process).
 */
export function allThreadsCpuMsOf(pid: number): number {
  let ms = 0;
  for (const v of threadCpuMsOf(pid).values()) ms += v;
  return ms;
}

/** Busy and total jiffies of each core (from /proc/stat), to see what else ran on a core during a run. */
export function coreTicks(): { busy: number; total: number }[] {
  const out: { busy: number; total: number }[] = [];
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const [user, nice, system, idle, iowait, irq, softirq, steal] = m[2]!.split(/\s+/).map(Number) as number[];
    const busy = user! + nice! + system! + irq! + softirq! + steal!;
    out[Number(m[1])] = { busy, total: busy + idle! + iowait! };
  }
  return out;
}

/** Busy share of `core` between two coreTicks() readings (1.0 = fully busy). */
export function coreBusy(a: ReturnType<typeof coreTicks>, b: ReturnType<typeof coreTicks>, core: number): number {
  const x = a[core];
  const y = b[core];
  if (!x || !y || y.total === x.total) return NaN;
  return (y.busy - x.busy) / (y.total - x.total);
}

export function rssMbOf(pid: number): number {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

export interface Child {
  name: string;
  pid: number;
  info: Record<string, any>;
  proc: ChildProcess;
  /** Control request over IPC (children started with ipc: true). */
  request(type: string, timeoutMs?: number, arg?: string): Promise<any>;
  stop(): Promise<void>;
}

/**
 * The node flags `npm start` runs TokenGrid with (package.json's start script, less `--import tsx`), so the
 * bench measures the server as shipped. Both servers under test (TokenGrid and the min proxy) get them.
 */
export function serverNodeFlags(root: URL = new URL('../../', import.meta.url)): string[] {
  const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { scripts?: { start?: string } };
  const words = (pkg.scripts?.start ?? '').trim().split(/\s+/);
  const flags: string[] = [];
  for (let i = 1; i < words.length; i++) {
    const w = words[i]!;
    if (w === '--import') {
      i++;
      continue;
    }
    if (!w.startsWith('--')) break;
    flags.push(w);
  }
  return flags;
}

const children = new Set<Child>();

export interface SpawnOptions {
  core: number | undefined;
  pinning: Pinning;
  nodeFlags?: string[];
  ipc?: boolean;
  /** Parse one stdout line; return the child's info when it says it is ready. */
  ready?: (line: string) => Record<string, any> | undefined;
  timeoutMs?: number;
}

const jsonReady = (line: string): Record<string, any> | undefined => {
  if (!line.startsWith('{')) return undefined;
  try {
    const o = JSON.parse(line) as Record<string, any>;
    return o.ready === true ? o : undefined;
  } catch {
    return undefined;
  }
};

export async function spawnNode(name: string, script: string, args: string[], o: SpawnOptions): Promise<Child> {
  const nodeArgs = ['--import', 'tsx', ...(o.nodeFlags ?? []), script, ...args];
  const pinned = o.pinning.available && o.core !== undefined;
  const cmd = pinned ? 'taskset' : process.execPath;
  const argv = pinned ? ['-c', String(o.core), process.execPath, ...nodeArgs] : nodeArgs;
  const proc = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe', ...(o.ipc ? ['ipc' as const] : [])] });
  const stderr: string[] = [];
  let stderrLines = 0;
  createInterface({ input: proc.stderr! }).on('line', (l) => {
    stderrLines++;
    if (stderrLines <= 20) process.stderr.write(`[${name}] ${l}\n`);
    else if (stderrLines === 21) process.stderr.write(`[${name}] (further stderr lines suppressed)\n`);
    stderr.push(l);
    if (stderr.length > 50) stderr.shift();
  });
  const parse = o.ready ?? jsonReady;
  const info = await new Promise<Record<string, any>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within ${o.timeoutMs ?? 30_000} ms`)), o.timeoutMs ?? 30_000);
    const rl = createInterface({ input: proc.stdout! });
    rl.on('line', (line) => {
      const i = parse(line);
      if (i) {
        clearTimeout(timer);
        resolve(i);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before it was ready:\n${stderr.join('\n')}`));
    });
  });
  let seq = 0;
  const pending = new Map<number, (body: any) => void>();
  proc.on('message', (m: any) => {
    pending.get(m.id)?.(m.body);
    pending.delete(m.id);
  });
  const child: Child = {
    name,
    pid: proc.pid!,
    info,
    proc,
    request(type, timeoutMs = 60_000, arg) {
      if (!o.ipc) return Promise.reject(new Error(`${name} has no control channel`));
      const id = ++seq;
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${name}: ${type} timed out`));
        }, timeoutMs);
        pending.set(id, (b) => {
          clearTimeout(t);
          resolve(b);
        });
        proc.send({ id, type, arg });
      });
    },
    async stop() {
      children.delete(child);
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      if (o.ipc && proc.connected) proc.send({ id: 0, type: 'stop' });
      else proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
  children.add(child);
  proc.once('exit', () => children.delete(child));
  return child;
}

/** The upstream emulator on the load core, zero think time, answers of `answerTokens` tokens; ready with its url. */
export function spawnEmulator(pin: Pinning, answerTokens = 20): Promise<Child> {
  const script = fileURLToPath(new URL('../../src/emulator/main.ts', import.meta.url));
  return spawnNode('emulator', script, ['--port', '0', '--output-tokens', String(answerTokens)], {
    core: pin.loadCore,
    pinning: pin,
    ready: (line) => {
      const m = /emulator listening on (\S+)/.exec(line);
      return m ? { url: m[1] } : undefined;
    },
  });
}

export async function stopAll(): Promise<void> {
  await Promise.all([...children].map((c) => c.stop().catch(() => undefined)));
}

/** Last resort (uncaught error, process.exit): no child outlives the bench. */
export function killAllNow(): void {
  for (const c of children) {
    try {
      c.proc.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
  children.clear();
}
