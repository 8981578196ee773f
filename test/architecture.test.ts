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

/** module -> modules it may import (itself always allowed). Mirrors ARCHITECTURE.md "Dependency rules". */
export const ALLOWED: Record<string, string[]> = {
  core: [],
  wire: ['core'],
  catalog: ['core'],
  accounts: ['core'],
  routing: ['core', 'catalog'],
  charging: ['core', 'catalog', 'wire'],
  billing: ['core', 'catalog', 'charging', 'accounts', 'wire'],
  providers: ['core', 'wire'],
  gateway: ['core', 'wire', 'providers', 'routing', 'catalog', 'accounts', 'charging'],
  store: ['core', 'accounts', 'catalog', 'charging', 'billing', 'wire', 'audit'],
  notifications: ['core', 'charging'],
  telemetry: ['core', 'gateway'],
  config: ['core', 'catalog', 'providers', 'charging', 'billing'],
  api: ['core', 'gateway', 'wire', 'accounts', 'charging', 'billing', 'catalog', 'audit'],
  cli: ['core', 'config', 'app', 'accounts', 'charging', 'billing', 'catalog', 'store'],
  emulator: ['core'],
  audit: ['core'],
  /** The browser console (repo root console/, not src/): imports nothing from src/; it talks HTTP only. */
  console: [],
  app: ['*'],
  main: ['*'],
};

const PURE = ['wire', 'catalog', 'accounts', 'routing', 'charging', 'billing'];
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

test('ARCHITECTURE.md lists every module of the dependency table', () => {
  const doc = readFileSync(new URL('../ARCHITECTURE.md', import.meta.url), 'utf8');
  for (const mod of Object.keys(ALLOWED)) assert.ok(doc.includes(`\`${mod}\``), `ARCHITECTURE.md does not mention \`${mod}\``);
});
