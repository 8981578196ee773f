/** Every console string is in both languages, and every key the pages use exists (console/i18n.js, console/app.js). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const url = new URL('../../console/i18n.js', import.meta.url);

test('English and Simplified Chinese have the same keys and the same placeholders', async () => {
  const { STRINGS } = (await import(url.href)) as { STRINGS: Record<string, Record<string, string>> };
  const en = STRINGS.en!;
  const zh = STRINGS['zh-CN']!;
  assert.deepEqual(Object.keys(zh).sort(), Object.keys(en).sort());
  const vars = (s: string): string[] => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!).sort();
  for (const k of Object.keys(en)) assert.deepEqual(vars(zh[k]!), vars(en[k]!), `placeholders of ${k}`);
});

test('every string key the console uses is in the table', async () => {
  const { STRINGS } = (await import(url.href)) as { STRINGS: Record<string, Record<string, string>> };
  const app =
    readFileSync(new URL('../../console/app.js', import.meta.url), 'utf8') + readFileSync(new URL('../../console/charts.js', import.meta.url), 'utf8');
  const used = new Set([...app.matchAll(/\bt\('(\w+)'/g)].map((m) => m[1]!));
  for (const k of ['nav_balance', 'nav_accounts', 'past_block', 'past_wallet_payg']) assert.ok(k in STRINGS.en!, k);
  assert.ok(used.size > 50);
  assert.deepEqual(
    [...used].filter((k) => !(k in STRINGS.en!)),
    [],
  );
  const html = readFileSync(new URL('../../console/index.html', import.meta.url), 'utf8');
  for (const m of html.matchAll(/data-i18n="(\w+)"/g)) assert.ok(m[1]! in STRINGS.en!, m[1]);
});
