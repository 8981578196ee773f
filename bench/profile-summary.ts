/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and prints where the time went:
 * - the top N frames by self time (all code), with their share of all samples and of busy samples;
 * - self time by category (TokenGrid src/ module, node_modules package, node internals, GC, idle);
 * - the top src/ functions by inclusive time (time with the function anywhere on the stack);
 * - inclusive time by src/ module (a sample counts once per module on its stack).
 *
 *   node --import tsx bench/profile-summary.ts FILE.cpuprofile [--top 25]
 *   node --import tsx bench/profile-summary.ts FILE.cpuprofile --callers run [--depth 6]   (who calls a hot frame)
 * .ts frames are shown as function + file (tsx hands V8 transformed code, whose line numbers mislead).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SPECIAL = new Set(['(idle)', '(program)', '(garbage collector)', '(root)']);

function where(url: string): string {
  if (url === '') return '';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  return path.startsWith(ROOT) ? path.slice(ROOT.length) : path;
}

function category(cf: CallFrame): string {
  if (SPECIAL.has(cf.functionName)) return cf.functionName;
  const w = where(cf.url);
  if (w === '') return '(native / V8 builtins)';
  if (w.startsWith('node:')) return 'node internals';
  const nm = w.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = w.slice(nm + 13).split('/');
    return `npm ${rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  if (w.startsWith('src/')) {
    const parts = w.split('/');
    return `src/${parts.length > 2 ? parts[1] : parts[1]!.replace(/\.ts$/, '')}`;
  }
  if (w.startsWith('bench/')) return 'bench';
  return 'other';
}

// tsx hands V8 transformed code, so line numbers of .ts files are not the source's: name + file only there.
const frameKey = (cf: CallFrame): string => {
  const w = where(cf.url);
  return `${cf.functionName || '(anonymous)'} ${w}${w === '' || w.endsWith('.ts') ? '' : `:${cf.lineNumber + 1}`}`;
};
const pct = (n: number, d: number): string => `${((100 * n) / (d || 1)).toFixed(1).padStart(5)}%`;

export function summarizeProfile(path: string, top = 25): string {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Time per sample: the delta to the next sample (V8's convention); the last sample gets the mean.
  const selfUs = new Map<number, number>();
  const mean = (p.endTime - p.startTime) / Math.max(1, p.samples.length);
  for (let i = 0; i < p.samples.length; i++) {
    const d = p.timeDeltas[i + 1] ?? mean;
    selfUs.set(p.samples[i]!, (selfUs.get(p.samples[i]!) ?? 0) + Math.max(0, d));
  }
  let total = 0;
  let idle = 0;
  const selfByFrame = new Map<string, number>();
  const selfByCat = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const cf = byId.get(id)!.callFrame;
    total += us;
    if (cf.functionName === '(idle)') idle += us;
    selfByFrame.set(frameKey(cf), (selfByFrame.get(frameKey(cf)) ?? 0) + us);
    selfByCat.set(category(cf), (selfByCat.get(category(cf)) ?? 0) + us);
  }
  const busy = total - idle;
  // Inclusive: walk each sampled node's stack once, counting each src function / module at most once.
  const inclFrame = new Map<string, number>();
  const inclModule = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const seenF = new Set<string>();
    const seenM = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = byId.get(cur)!.callFrame;
      if (!where(cf.url).startsWith('src/')) continue;
      seenF.add(frameKey(cf));
      seenM.add(category(cf));
    }
    for (const k of seenF) inclFrame.set(k, (inclFrame.get(k) ?? 0) + us);
    for (const k of seenM) inclModule.set(k, (inclModule.get(k) ?? 0) + us);
  }
  const sorted = (m: Map<string, number>): [string, number][] => [...m].sort((a, b) => b[1] - a[1]);
  const lines: string[] = [];
  lines.push(`profile ${path}`);
  lines.push(
    `sampled ${(total / 1e6).toFixed(2)} s, ${p.samples.length} samples; idle ${pct(idle, total)}; busy ${(busy / 1e6).toFixed(2)} s (percentages below are of busy time)`,
  );
  lines.push(`\nTop ${top} frames by self time:`);
  for (const [k, us] of sorted(selfByFrame)
    .filter(([k]) => !k.startsWith('(idle)'))
    .slice(0, top))
    lines.push(`  ${pct(us, busy)}  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`);
  lines.push('\nSelf time by category:');
  for (const [k, us] of sorted(selfByCat).filter(([k]) => k !== '(idle)')) lines.push(`  ${pct(us, busy)}  ${k}`);
  lines.push(`\nTop ${top} src/ functions by inclusive time:`);
  for (const [k, us] of sorted(inclFrame).slice(0, top)) lines.push(`  ${pct(us, busy)}  ${k}`);
  lines.push('\nInclusive time by src/ module (a sample counts once per module on its stack):');
  for (const [k, us] of sorted(inclModule)) lines.push(`  ${pct(us, busy)}  ${k}`);
  return lines.join('\n');
}

/** Who calls `name` (self time of frames whose function name is `name`), by caller path `depth` frames up. */
export function callersOf(path: string, name: string, depth = 6, top = 10): string {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const mean = (p.endTime - p.startTime) / Math.max(1, p.samples.length);
  let busy = 0;
  const paths = new Map<string, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    const us = Math.max(0, p.timeDeltas[i + 1] ?? mean);
    const cf = byId.get(id)!.callFrame;
    if (cf.functionName !== '(idle)') busy += us;
    if (cf.functionName !== name) continue;
    const chain: string[] = [];
    for (let cur = parent.get(id); cur !== undefined && chain.length < depth; cur = parent.get(cur)) {
      const f = byId.get(cur)!.callFrame;
      if (f.functionName === '(root)') break;
      chain.push(frameKey(f));
    }
    const key = chain.join('  <-  ');
    paths.set(key, (paths.get(key) ?? 0) + us);
  }
  const rows = [...paths].sort((a, b) => b[1] - a[1]).slice(0, top);
  return [`callers of ${name} (self time, % of busy):`, ...rows.map(([k, us]) => `  ${pct(us, busy)}  ${k}`)].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const argv = process.argv.slice(2);
  const opt = (f: string): string | undefined => (argv.includes(f) ? argv[argv.indexOf(f) + 1] : undefined);
  const files = argv.filter((a, i) => !a.startsWith('--') && !['--top', '--callers', '--depth'].includes(argv[i - 1] ?? ''));
  const top = Number(opt('--top') ?? 25);
  const callers = opt('--callers');
  if (files.length === 0) {
    console.error('usage: node --import tsx bench/profile-summary.ts FILE.cpuprofile [--top 25] [--callers FUNCTION [--depth 6]]');
    process.exit(2);
  }
  for (const f of files) console.log(`${callers ? callersOf(f, callers, Number(opt('--depth') ?? 6), top) : summarizeProfile(f, top)}\n`);
}
