/** Command-line options of `npm run bench`: presets for --quick and full mode, scenario selection. */
import type { C1Options } from './c1.ts';
import type { MemoryOptions } from './memory.ts';
import type { PacedOptions } from './streaming.ts';
import type { ThroughputOptions } from './throughput.ts';

export const SCENARIOS = ['c1', 'throughput', 'charging', 'paced', 'memory'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface BenchOptions {
  mode: 'quick' | 'full';
  /** CPU-profile TokenGrid under the throughput scenario instead of the normal run. */
  profile: boolean;
  scenarios: Set<Scenario>;
  out: string;
  logLevel: string;
  c1: C1Options;
  throughput: ThroughputOptions;
  paced: PacedOptions;
  memory: MemoryOptions & { roundsOthers: number; warmupRoundsOthers: number };
  chargingSeconds: number;
  /** Emulator answer length in zero-think mode (tokens = stream chunks). */
  answerTokens: number;
}

export const USAGE = `npm run bench -- [--quick] [--only c1,throughput,charging,paced,memory] [--profile] [--out FILE] [--log-level warn]
  --quick     under 3 minutes, for a check (default: full mode, about 6 minutes)
  --only      run only these scenarios
  --profile   V8 CPU profile (what --cpu-prof records, but only the measured window) of TokenGrid under the
              throughput load (non-streaming, streaming) and of the min proxy; writes
              bench/results/profiles/*.cpuprofile and prints where the time goes (bench/profile-summary.ts)
  --out       results file (default bench/results/latest.json; profile mode writes none)
  --log-level TokenGrid's pino level (default warn: no per-request log lines)
npm run bench -- --store postgres [--quick] [--seconds N] [--concurrency N] [--accounts N] [--pool N] [--out FILE]
              reserve + settle pairs on the embedded store and on PostgreSQL with 1 and 2 nodes, added latency and
              round trips per reserve and settle (bench/store-bench.ts; TOKENGRID_BENCH_DATABASE_URL)`;

export function parseOptions(argv: string[]): BenchOptions {
  const has = (f: string): boolean => argv.includes(f);
  const val = (f: string): string | undefined => {
    const i = argv.indexOf(f);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  if (has('--help') || has('-h')) {
    console.log(USAGE);
    process.exit(0);
  }
  const known = new Set(['--quick', '--full', '--profile', '--only', '--out', '--log-level']);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!known.has(a)) {
      console.error(`unknown argument ${a}\n${USAGE}`);
      process.exit(2);
    }
    if (a === '--only' || a === '--out' || a === '--log-level') i++;
  }
  const quick = has('--quick');
  const only = val('--only');
  const scenarios = new Set<Scenario>(only ? (only.split(',') as Scenario[]) : SCENARIOS);
  for (const s of scenarios) {
    if (!SCENARIOS.includes(s)) {
      console.error(`unknown scenario ${s}; one of ${SCENARIOS.join(', ')}`);
      process.exit(2);
    }
  }
  return {
    mode: quick ? 'quick' : 'full',
    profile: has('--profile'),
    scenarios,
    out: val('--out') ?? new URL('../results/latest.json', import.meta.url).pathname,
    logLevel: val('--log-level') ?? 'warn',
    // c1 warm-up: V8 keeps compiling TokenGrid's request path (TurboFan, on background threads sharing the
    // pinned core) for its first ~6,000 lone requests, and recompiles parts of it once more after ~10 s; with
    // 3,000 that work (~70 ms) landed in the measured window and in TokenGrid's p99 (bench/README.md, round 5).
    c1: quick ? { requests: 3000, warmup: 15_000, block: 250 } : { requests: 10_000, warmup: 20_000, block: 500 },
    // Measured seconds per target, in interleaved slices (3 x 2 s quick, 5 x 3 s full).
    throughput: quick ? { connections: 64, durationS: 6, warmupS: 1, slices: 3 } : { connections: 64, durationS: 15, warmupS: 2, slices: 5 },
    paced: { rounds: quick ? 4 : 25, concurrency: 4, staggerMs: 1.5, expectedChunks: 64 },
    memory: {
      streams: 1000,
      rounds: 3,
      warmupRounds: 1,
      roundsOthers: quick ? 1 : 3,
      warmupRoundsOthers: quick ? 0 : 1,
      settleMs: 1000,
      roundTimeoutMs: 120_000,
    },
    chargingSeconds: quick ? 2 : 10,
    answerTokens: 20,
  };
}
