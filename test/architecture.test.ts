/**
 * Keeps the code and ARCHITECTURE.md's dependency table together (fastify's errors.test.js trick):
 * every import edge between src/ modules must be allowed below, and the pure modules must not reach for
 * I/O, wall-clock time or global randomness.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

const SRC = new URL('../src/', import.meta.url).pathname;

/**
 * module -> modules it may import (itself always allowed). Must equal ARCHITECTURE.md "Dependency rules" (checked
 * below), and lists only edges the production code uses (checked below): an edge nobody uses is not permission
 * waiting to be taken, it goes.
 */
export const ALLOWED: Record<string, string[]> = {
  core: [],
  wire: ['core'],
  catalog: [],
  accounts: ['core'],
  routing: ['core', 'catalog'],
  charging: ['core', 'wire'],
  billing: ['core', 'catalog', 'charging', 'accounts'],
  providers: ['core', 'wire'],
  gateway: ['core', 'wire', 'providers', 'routing', 'catalog', 'accounts'],
  store: ['core', 'accounts', 'charging', 'billing', 'wire', 'audit', 'gateway', 'cache'],
  notifications: ['core', 'charging'],
  telemetry: ['gateway'],
  config: ['catalog', 'providers'],
  api: ['core', 'gateway', 'wire', 'accounts', 'charging', 'billing', 'audit'],
  cli: ['core'],
  emulator: ['core'],
  audit: ['core'],
  guardrails: [],
  qos: [],
  cache: ['core', 'wire'],
  compress: ['wire'],
  /** The browser console (repo root console/, not src/): imports nothing from src/; it talks HTTP only. */
  console: [],
  app: ['*'],
  main: ['*'],
};

const PURE = ['wire', 'catalog', 'accounts', 'routing', 'charging', 'billing', 'guardrails', 'qos', 'cache', 'compress'];
const BANNED_IN_PURE: [RegExp, string][] = [
  [/\bDate\.now\(\)/, 'Date.now()'],
  [/new Date\(\)/, 'new Date() without arguments'],
  [/\bMath\.random\(/, 'Math.random()'],
  [/\bset(?:Timeout|Interval|Immediate)\(/, 'timers'],
  [/\bprocess\./, 'process'],
  [/from '(?:node:)?(?:fs|http|https|net|child_process)(?:\/promises)?'/, 'node I/O modules'],
  [/from '(?:undici|pino|prom-client|better-sqlite3|pg|ioredis)'/, 'I/O drivers'],
];

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

const moduleOf = (file: string): string => {
  const rel = relative(SRC, file).split(sep);
  return rel.length === 1 ? rel[0]!.replace(/\.ts$/, '') : rel[0]!;
};

const sources = files(SRC);

test('every import between modules follows the dependency table', () => {
  const violations: string[] = [];
  for (const file of sources) {
    // Tests compose what they test (a charging property test runs against the SQLite store), so the table
    // applies to production code only.
    if (file.endsWith('.test.ts') || file.includes('test-kit')) continue;
    const from = moduleOf(file);
    const allowed = ALLOWED[from];
    assert.ok(allowed, `module ${from} (${relative(SRC, file)}) is missing from the dependency table`);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:import|export)\s[^'"]*?from\s+'(\.{1,2}\/[^']+)'/g)) {
      const target = join(file, '..', m[1]!);
      if (!target.startsWith(SRC)) continue;
      const to = moduleOf(target);
      if (to === from || allowed.includes('*')) continue;
      if (!allowed.includes(to)) violations.push(`${relative(SRC, file)} imports ${to} (${m[1]})`);
    }
  }
  assert.deepEqual(violations, []);
});

test('cross-module imports go through the module index (no deep imports), tests excepted', () => {
  const deep: string[] = [];
  for (const file of sources) {
    if (file.endsWith('.test.ts')) continue;
    const from = moduleOf(file);
    if (ALLOWED[from]?.includes('*') || from === 'store' || from === 'api' || from === 'cli') continue;
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/from\s+'(\.{1,2}\/[^']+)'/g)) {
      const target = join(file, '..', m[1]!);
      const to = moduleOf(target);
      if (to === from) continue;
      const rel = relative(join(SRC, to), target);
      if (rel !== 'index.ts' && !/^[\w-]+\/index\.ts$/.test(rel) && rel !== 'types.ts') deep.push(`${relative(SRC, file)} -> ${m[1]}`);
    }
  }
  assert.deepEqual(deep, []);
});

test('pure modules use no I/O, wall-clock time, timers or global randomness', () => {
  const found: string[] = [];
  for (const file of sources) {
    if (!PURE.includes(moduleOf(file)) || file.endsWith('.test.ts')) continue;
    const text = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
    for (const [re, what] of BANNED_IN_PURE) if (re.test(text)) found.push(`${relative(SRC, file)}: ${what}`);
  }
  assert.deepEqual(found, []);
});

test('billing planners are synchronous and read no store: no await, no async, no Promise, no loadView (issue 14 item 1)', () => {
  const found: string[] = [];
  for (const file of sources.filter((f) => f.includes(`${sep}billing${sep}planners${sep}`) && !f.endsWith('.test.ts'))) {
    const code = readFileSync(file, 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/\/\/.*$/gm, '');
    for (const [re, what] of [
      [/\bawait\b/, 'await'],
      [/\basync\b/, 'async'],
      [/\bPromise\b/, 'Promise'],
      [/\bloadView\b/, 'loadView'],
    ] as const)
      if (re.test(code)) found.push(`${relative(SRC, file)}: ${what}`);
  }
  assert.ok(
    sources.some((f) => f.includes(`${sep}billing${sep}planners${sep}`)),
    'src/billing/planners exists',
  );
  assert.deepEqual(found, []);
});

test('ARCHITECTURE.md lists every module of the dependency table', () => {
  const doc = readFileSync(new URL('../ARCHITECTURE.md', import.meta.url), 'utf8');
  for (const mod of Object.keys(ALLOWED)) assert.ok(doc.includes(`\`${mod}\``), `ARCHITECTURE.md does not mention \`${mod}\``);
});

// ---- import cycles (issue 14: "an import graph of src shows no cycle and no back-and-forth between gateway files") ----

/** Each production file -> the src files it imports (type-only imports included: a cycle of types is still a knot). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sources) {
    if (file.endsWith('.test.ts') || file.includes('test-kit')) continue;
    const out: string[] = [];
    for (const m of readFileSync(file, 'utf8').matchAll(/(?:import|export)\s[^'"]*?from\s+'(\.{1,2}\/[^']+)'/g)) {
      const target = join(file, '..', m[1]!);
      if (target.startsWith(SRC)) out.push(relative(SRC, target));
    }
    graph.set(relative(SRC, file), out);
  }
  return graph;
}

/** Strongly connected components with more than one file (Tarjan): each is an import cycle. */
function importCycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) cycles.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return cycles;
}

/** src has no import cycle (issue 14): the last two were broken, and none may appear. */
test('no import cycle among src files', () => {
  assert.deepEqual(importCycles(importGraph()), []);
});

test('the gateway has no import cycle and no two gateway files import each other', () => {
  const graph = importGraph();
  const inGateway = (f: string): boolean => f.startsWith(`gateway${sep}`);
  assert.deepEqual(
    importCycles(graph).filter((scc) => scc.some(inGateway)),
    [],
  );
  const pairs: string[] = [];
  for (const [from, tos] of graph) {
    if (!inGateway(from)) continue;
    for (const to of tos) if (inGateway(to) && graph.get(to)?.includes(from)) pairs.push(`${from} <-> ${to}`);
  }
  assert.deepEqual(pairs, []);
  // One lifecycle: gateway.ts runs it; its parts (stream, meter, stages, limits, ...) see only the port types,
  // never the lifecycle's internals.
  const lifecycle = `gateway${sep}gateway.ts`;
  const reachingIn: string[] = [];
  for (const [from, tos] of graph) {
    if (!inGateway(from) || from === lifecycle || from === `gateway${sep}index.ts`) continue;
    for (const to of tos) if (inGateway(to) && to !== `gateway${sep}ports.ts`) reachingIn.push(`${from} -> ${to}`);
  }
  assert.deepEqual(reachingIn, []);
});

// --- The table in ARCHITECTURE.md and ALLOWED are one table, and it permits only what the code uses. ---

/** Relative import specifiers of a file: static imports and re-exports, side-effect imports, dynamic imports. */
function relativeImports(text: string): string[] {
  const out: string[] = [];
  const patterns = [/(?:import|export)\s[^'"]*?from\s+'(\.{1,2}\/[^']+)'/g, /^\s*import\s+'(\.{1,2}\/[^']+)'/gm, /\bimport\(\s*'(\.{1,2}\/[^']+)'\s*\)/g];
  for (const re of patterns) for (const m of text.matchAll(re)) out.push(m[1]!);
  return out;
}

/** The edges production code in src/ really uses: module -> modules it imports (itself excluded). */
function usedEdges(): Map<string, Set<string>> {
  const used = new Map<string, Set<string>>();
  for (const file of sources) {
    if (file.endsWith('.test.ts') || file.includes('test-kit')) continue;
    const from = moduleOf(file);
    for (const spec of relativeImports(readFileSync(file, 'utf8'))) {
      const target = join(file, '..', spec);
      if (!target.startsWith(SRC)) continue;
      const to = moduleOf(target);
      if (to === from) continue;
      if (!used.has(from)) used.set(from, new Set());
      used.get(from)!.add(to);
    }
  }
  return used;
}

/**
 * Parses the "Dependency rules" table of ARCHITECTURE.md into module -> allowed modules. A row's first cell
 * names one or more modules in backticks (a parenthesised remark such as "(browser files)" is ignored); the
 * second cell lists the modules in backticks, where parenthesised remarks ("(+ `undici`)", "(the `Usage`
 * type)") and anything from "never" or "—" on are commentary, "everything" means `*` and "nothing" means none.
 */
export function parseDependencyTable(markdown: string): Record<string, string[]> {
  const section = markdown.split(/^## Dependency rules\s*$/m)[1];
  assert.ok(section, 'ARCHITECTURE.md has no "## Dependency rules" section');
  const body = section.split(/^## /m)[0]!;
  const rows = body.split('\n').filter((l) => /^\|.*\|\s*$/.test(l.trim()));
  assert.ok(rows.length > 2, 'the "Dependency rules" section has no table');
  const table: Record<string, string[]> = {};
  const ticked = (cell: string): string[] => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
  for (const row of rows.slice(2)) {
    const cells = row
      .trim()
      .replace(/^\||\|$/g, '')
      .split('|')
      .map((c) => c.trim());
    assert.equal(cells.length, 2, `a dependency-table row must have two cells: ${row}`);
    const [who, may] = cells as [string, string];
    const modules = ticked(who.replace(/\([^)]*\)/g, ''));
    assert.ok(modules.length > 0, `no module named in the first cell of: ${row}`);
    const commentary = may.replace(/\([^)]*\)/g, '').split(/\bnever\b|—/)[0]!;
    let targets: string[];
    if (/^\s*everything\s*$/.test(commentary)) targets = ['*'];
    else targets = ticked(commentary).filter((t) => /^[a-z][a-z-]*$/.test(t));
    if (targets.length === 0) assert.match(commentary, /^\s*nothing\b/, `row lists no module and does not say "nothing": ${row}`);
    for (const mod of modules) {
      assert.ok(!(mod in table), `module ${mod} appears twice in the dependency table`);
      table[mod] = targets;
    }
  }
  return table;
}

const sorted = (table: Record<string, string[]>): Record<string, string[]> =>
  Object.fromEntries(
    Object.keys(table)
      .sort()
      .map((k) => [k, [...table[k]!].sort()]),
  );

test('the dependency table in ARCHITECTURE.md is exactly the allowed table of this test', () => {
  const doc = readFileSync(new URL('../ARCHITECTURE.md', import.meta.url), 'utf8');
  assert.deepEqual(sorted(parseDependencyTable(doc)), sorted(ALLOWED));
});

test('the dependency-table parser reads remarks as remarks and fails on a changed row', () => {
  const doc = [
    '## Dependency rules',
    '',
    '| module | may import |',
    '| --- | --- |',
    '| `core` | nothing in `src/` (`node:crypto` only) |',
    '| `wire`, `accounts` | `core` |',
    '| `charging` | `core`, `wire` (the `Usage` type) |',
    '| `api` | `core`, `gateway` (+ `undici`) — never `store` or `providers` |',
    '| `console` (browser files) | nothing in `src/` (HTTP only) |',
    '| `app`, `main` | everything |',
    '',
    '## Next section',
    '| `ignored` | `core` |',
  ].join('\n');
  assert.deepEqual(sorted(parseDependencyTable(doc)), {
    accounts: ['core'],
    api: ['core', 'gateway'],
    app: ['*'],
    charging: ['core', 'wire'],
    console: [],
    core: [],
    main: ['*'],
    wire: ['core'],
  });
  const drifted = doc.replace('| `charging` | `core`, `wire`', '| `charging` | `core`, `wire`, `billing`');
  assert.notDeepEqual(sorted(parseDependencyTable(drifted)), sorted(parseDependencyTable(doc)));
});

test('the allowed table lists only edges that production code uses', () => {
  const used = usedEdges();
  const unused: string[] = [];
  for (const [from, targets] of Object.entries(ALLOWED)) {
    for (const to of targets) if (to !== '*' && !used.get(from)?.has(to)) unused.push(`${from} -> ${to}`);
  }
  assert.deepEqual(unused, [], 'allowed edges no import uses: remove them here and in ARCHITECTURE.md');
});
