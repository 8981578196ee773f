import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CODES } from '../src/core/index.ts';

test('every error code has a row in docs/errors.md with its status, and every row names a real code', () => {
  const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
  const rows = new Map<string, number>();
  for (const m of doc.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)) rows.set(m[1]!, Number(m[2]));
  for (const [code, spec] of Object.entries(ERROR_CODES)) {
    assert.equal(rows.get(code), spec.status, `docs/errors.md row for ${code} (status ${spec.status})`);
  }
  for (const code of rows.keys()) assert.ok(code in ERROR_CODES, `docs/errors.md documents unknown code ${code}`);
});
