/**
 * docs/configuration.md is the one table of TokenGrid's settings: every TOKENGRID_* variable the code reads and
 * every key of the file's fixed sections must be in it, and it lists nothing the code does not read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CLI_ENV_VARIABLES, configSchema, envSchema, serverSchema } from '../src/config/index.ts';

const ROOT = new URL('../', import.meta.url).pathname;
const doc = readFileSync(join(ROOT, 'docs/configuration.md'), 'utf8');

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    // Test helpers (test-upstream.ts, test-kit.ts, ...) read flags of their own, not the environment.
    else if (p.endsWith('.ts') && !p.endsWith('.test.ts') && !/(^|[/-])test-[^/]*$/.test(name)) out.push(p);
  }
  return out;
}

/** First-column names of the doc's tables, in backticks. */
const documented = new Set(
  doc
    .split('\n')
    .filter((l) => l.startsWith('| `'))
    .flatMap((l) => [...l.split('|')[1]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!)),
);

test('every TOKENGRID_* variable the code reads is documented', () => {
  const used = new Set<string>();
  for (const f of [...sourceFiles(join(ROOT, 'src')), join(ROOT, 'bin/tokengrid.js')]) {
    for (const m of readFileSync(f, 'utf8').matchAll(/\bTOKENGRID_[A-Z_]+\b/g)) used.add(m[0]);
  }
  for (const v of [...Object.keys(envSchema.shape), ...CLI_ENV_VARIABLES]) used.add(v);
  const missing = [...used].filter((v) => !documented.has(v)).sort();
  assert.deepEqual(missing, [], 'add these to docs/configuration.md');
});

test('every documented TOKENGRID_* variable is one the server or the CLI reads', () => {
  const known = new Set<string>([...Object.keys(envSchema.shape), ...CLI_ENV_VARIABLES]);
  const stale = [...documented].filter((v) => v.startsWith('TOKENGRID_') && !known.has(v)).sort();
  assert.deepEqual(stale, []);
});

test('every key of the file’s server, charging, catalog and notifications sections is documented', () => {
  const shape = configSchema.shape;
  const keys = [
    ...Object.keys(serverSchema.shape).map((k) => `server.${k}`),
    ...Object.keys(shape.charging.unwrap().shape).map((k) => `charging.${k}`),
    ...Object.keys(shape.catalog.unwrap().shape).map((k) => `catalog.${k}`),
    ...Object.keys(shape.notifications.unwrap().shape).map((k) => `notifications.${k}`),
  ];
  for (const top of Object.keys(shape))
    assert.ok(
      [...documented].some((d) => d === top || d.startsWith(`${top}.`)),
      `section ${top} is not documented`,
    );
  assert.deepEqual(
    keys.filter((k) => !documented.has(k)),
    [],
  );
});
