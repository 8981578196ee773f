/**
 * Maximum throughput at 64 connections with autocannon (programmatic, inside the orchestrator, which is
 * pinned to the load core). A short warm-up run is discarded. During the measured run the CPU time of the
 * server under test, of the emulator and of the load generator is read from /proc, which gives each
 * target's CPU cost per request (less noisy than req/s on a shared machine) and flags a run where the
 * load core, not the server, was the bottleneck.
 */
import autocannon from 'autocannon';
import { coreBusy, coreTicks, cpuMsOf, type Pinning } from './procs.ts';
import { chatBody, PATH, type Target } from './targets.ts';

export interface ThroughputOptions {
  connections: number;
  /** Measured seconds per target in all (split into `slices` interleaved slices by the orchestrator). */
  durationS: number;
  warmupS: number;
  /** Interleaved slices per target (run.ts): 1 = one uninterrupted run per target. */
  slices?: number;
}

export interface ThroughputResult {
  rps: number;
  requests2xx: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  latencyMeanMs: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  durationS: number;
  /** CPU time of the server under test over the run / wall time (1.0 = one core fully busy). */
  serverCpuCores: number;
  /** Server CPU microseconds per successful request. */
  serverCpuUsPerReq: number;
  /** Busy share of the load core (autocannon + emulator + anything else there); >= ~0.95: the load side saturated. */
  loadCoreBusy: number;
  emulatorCpuCores: number;
  /**
   * Server core busy share not due to the server (other processes on a shared machine); > ~0.05 means the
   * server had less than a full core and its req/s is low by about that share. NaN when unpinned.
   */
  serverCoreOthers: number;
  /** When merged from interleaved slices: each slice's server CPU us per request, in run order. */
  sliceCpuUsPerReq?: number[];
}

interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  latency: { p50: number; p99: number; average: number };
}

function run(t: Target, stream: boolean, connections: number, durationS: number): Promise<AutocannonResult> {
  return autocannon({
    url: t.url + PATH,
    method: 'POST',
    headers: t.headers,
    body: chatBody(stream),
    connections,
    pipelining: 1,
    duration: durationS,
    timeout: 30,
  }) as Promise<AutocannonResult>;
}

export interface MeasureHooks {
  beforeMeasure?: () => Promise<void>;
  afterMeasure?: () => Promise<void>;
}

export async function runThroughput(
  t: Target,
  emulatorPid: number,
  stream: boolean,
  o: ThroughputOptions,
  pin: Pinning,
  hooks: MeasureHooks = {},
): Promise<ThroughputResult> {
  if (o.warmupS > 0) await run(t, stream, o.connections, o.warmupS);
  await hooks.beforeMeasure?.();
  const sameProcess = t.serverPid === emulatorPid;
  const s0 = cpuMsOf(t.serverPid);
  const e0 = cpuMsOf(emulatorPid);
  const l0 = process.cpuUsage();
  const c0 = coreTicks();
  const w0 = performance.now();
  const r = await run(t, stream, o.connections, o.durationS);
  const wallMs = performance.now() - w0;
  const c1 = coreTicks();
  await hooks.afterMeasure?.();
  const serverMs = cpuMsOf(t.serverPid) - s0;
  const emuMs = cpuMsOf(emulatorPid) - e0;
  const l = process.cpuUsage(l0);
  const loadMs = (l.user + l.system) / 1000;
  const ok = r['2xx'];
  return {
    rps: ok / r.duration,
    requests2xx: ok,
    latencyP50Ms: r.latency.p50,
    latencyP99Ms: r.latency.p99,
    latencyMeanMs: r.latency.average,
    errors: r.errors,
    timeouts: r.timeouts,
    non2xx: r.non2xx,
    durationS: r.duration,
    serverCpuCores: serverMs / wallMs,
    serverCpuUsPerReq: ok > 0 ? (serverMs * 1000) / ok : NaN,
    // Whole load core (incl. other processes) when pinned; else our load generator + emulator.
    loadCoreBusy: pin.available && pin.serverCore !== pin.loadCore ? coreBusy(c0, c1, pin.loadCore) : (loadMs + (sameProcess ? serverMs : emuMs)) / wallMs,
    emulatorCpuCores: sameProcess ? serverMs / wallMs : emuMs / wallMs,
    serverCoreOthers:
      pin.available && pin.serverCore !== pin.loadCore && !sameProcess ? Math.max(0, coreBusy(c0, c1, pin.serverCore) - serverMs / wallMs) : NaN,
  };
}

/**
 * One figure from a target's interleaved slices: requests and CPU summed (req/s = all requests / all measured
 * seconds, CPU per request = all server CPU / all requests), busy shares weighted by duration, latency
 * percentiles the median of the slices' (autocannon gives no histogram to merge).
 */
export function mergeSlices(slices: ThroughputResult[]): ThroughputResult {
  if (slices.length === 1) return slices[0]!;
  const sum = (f: (r: ThroughputResult) => number): number => slices.reduce((n, r) => n + f(r), 0);
  const median = (f: (r: ThroughputResult) => number): number => {
    const v = slices.map(f).sort((a, b) => a - b);
    return v.length % 2 === 1 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
  };
  const ok = sum((r) => r.requests2xx);
  const secs = sum((r) => r.durationS);
  const weighted = (f: (r: ThroughputResult) => number): number => sum((r) => f(r) * r.durationS) / secs;
  const serverUs = sum((r) => (Number.isFinite(r.serverCpuUsPerReq) ? r.serverCpuUsPerReq * r.requests2xx : 0));
  return {
    rps: ok / secs,
    requests2xx: ok,
    latencyP50Ms: median((r) => r.latencyP50Ms),
    latencyP99Ms: median((r) => r.latencyP99Ms),
    latencyMeanMs: sum((r) => r.latencyMeanMs * r.requests2xx) / Math.max(1, ok),
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    non2xx: sum((r) => r.non2xx),
    durationS: secs,
    serverCpuCores: weighted((r) => r.serverCpuCores),
    serverCpuUsPerReq: ok > 0 ? serverUs / ok : NaN,
    loadCoreBusy: weighted((r) => r.loadCoreBusy),
    emulatorCpuCores: weighted((r) => r.emulatorCpuCores),
    serverCoreOthers: weighted((r) => r.serverCoreOthers),
    sliceCpuUsPerReq: slices.map((r) => r.serverCpuUsPerReq),
  };
}
