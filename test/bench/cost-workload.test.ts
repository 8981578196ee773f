/**
 * The cost benchmark's published workload (bench/workloads/cost.jsonl) is what its seeded generator makes, and
 * every request in it is well formed: its prefix never separates a tool call from its result, and its check is
 * answerable from its own messages (the value it expects is in the context, or it is the tool output's echo).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const FILE = new URL('../../bench/workloads/cost.jsonl', import.meta.url).pathname;
const GENERATOR = new URL('../../bench/workloads/generate-cost.ts', import.meta.url).pathname;

test('the checked-in workload is exactly what the generator makes with its seed', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'tg-workload-')), 'cost.jsonl');
  execFileSync(process.execPath, ['--import', 'tsx', GENERATOR, '--seed', '17', '--out', out], { stdio: 'pipe' });
  assert.ok(readFileSync(out).equals(readFileSync(FILE)), 'regenerate with: node --import tsx bench/workloads/generate-cost.ts');
});

test('every request is a well-formed prefix whose expected answer comes from its own context', () => {
  const lines = readFileSync(FILE, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(lines[0].type, 'meta');
  assert.equal(lines[0].synthetic, true);
  const kinds = new Set<string>();
  let requests = 0;
  for (const s of lines.slice(1)) {
    kinds.add(s.kind);
    for (const r of s.requests) {
      requests++;
      const msgs = s.messages.slice(0, r.upTo) as { role: string; content: string | null; tool_calls?: { id: string }[]; tool_call_id?: string }[];
      const last = msgs[msgs.length - 1]!;
      assert.ok(last.role === 'user' || last.role === 'tool', `${s.id}: ends on ${last.role}`);
      const open = new Set<string>();
      for (const m of msgs) {
        for (const c of m.tool_calls ?? []) open.add(c.id);
        if (m.role === 'tool') assert.ok(open.delete(m.tool_call_id!), `${s.id}: result without its call`);
      }
      assert.equal(open.size, 0, `${s.id}: a tool call without its result`);
      const context = msgs.map((m) => m.content ?? '').join('\n');
      if (r.expect.startsWith('The tool returned: ')) assert.ok(String(last.content).startsWith(r.expect.slice('The tool returned: '.length)));
      else for (const part of r.expect.split('; ')) assert.ok(context.includes(part), `${s.id}: ${part} is in the context`);
    }
  }
  assert.deepEqual([...kinds].sort(), ['agent', 'chat', 'coding']);
  assert.equal(requests, lines[0].requests.chat + lines[0].requests.agent + lines[0].requests.coding);
});
