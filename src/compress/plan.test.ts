import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { ChatMessage, ChatRequest } from '../wire/index.ts';
import { compressAnthropicBody, compressChat, turnsOf } from './apply.ts';
import { DEFAULT_COMPRESS_OPTIONS, GUARD_MAX_TOKENS, planCompression, rareTokens, windowStart } from './plan.ts';

const filler = (seed: number, n: number): string => {
  const words = ['alpha', 'bravo', 'line', 'ok', 'compiled', 'module', 'passed', 'step', 'value', 'log'];
  let s = '';
  let x = seed;
  while (s.length < n) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    s += `${words[x % words.length]} `;
  }
  return s.slice(0, n);
};

function req(messages: ChatMessage[]): ChatRequest {
  return { model: 'm', messages, stream: false, includeUsage: false, extra: {} };
}

/** An agent loop: system, user task, then `rounds` of (assistant tool call, tool result), then a final user question. */
function agentLoop(rounds: number, outputChars: number, question = 'Summarise what you found.'): ChatMessage[] {
  const msgs: ChatMessage[] = [
    { role: 'system', content: [{ type: 'text', text: `You are a coding agent. ${filler(1, 2000)}` }] },
    { role: 'user', content: [{ type: 'text', text: 'Fix the failing build.' }] },
  ];
  for (let i = 0; i < rounds; i++) {
    msgs.push({ role: 'assistant', content: [{ type: 'tool_call', id: `call_${i}`, name: 'bash', argumentsJson: `{"command":"step ${i}"}` }] });
    msgs.push({ role: 'tool', content: [{ type: 'tool_result', toolCallId: `call_${i}`, content: filler(100 + i, outputChars) }] });
  }
  msgs.push({ role: 'user', content: [{ type: 'text', text: question }] });
  return msgs;
}

const len = (m: ChatMessage[]): number =>
  m.reduce((s, x) => s + x.content.reduce((t, p) => t + (p.type === 'text' ? p.text.length : p.type === 'tool_result' ? p.content.length : 0), 0), 0);

describe('context compression plan', () => {
  test('stale tool outputs are cut to head and tail with a marker; the last turns, system and instruction stay whole', () => {
    const msgs = agentLoop(6, 5000);
    const out = compressChat(req(msgs));
    assert.ok(out.removedTokens > 0);
    const start = windowStart(turnsOf(msgs), DEFAULT_COMPRESS_OPTIONS.keepTurns, DEFAULT_COMPRESS_OPTIONS.epochTurns);
    for (let i = 0; i < msgs.length; i++) {
      const before = msgs[i]!.content[0]!;
      const after = out.req.messages[i]!.content[0]!;
      if (i >= start || msgs[i]!.role !== 'tool') assert.deepEqual(after, before, `message ${i} unchanged`);
      else {
        assert.equal(after.type, 'tool_result');
        const text = (after as { content: string }).content;
        assert.match(text, /tokengrid: 47\d\d characters of this earlier tool output dropped/);
        assert.ok(text.startsWith((before as { content: string }).content.slice(0, 200)));
      }
    }
  });

  test('a block sent again (a file pasted again, a document already in the system prompt) becomes a reference to its first copy', () => {
    const file = `// src/billing/periods.ts\n${filler(7, 3000)}`;
    const doc = `Runbook\n${filler(8, 1500)}`;
    const msgs: ChatMessage[] = [
      { role: 'system', content: [{ type: 'text', text: `You are a reviewer.\n\n${doc}` }] },
      { role: 'user', content: [{ type: 'text', text: `Please review:\n\n${file}\n\nand this:\n\n${doc}` }] },
      { role: 'assistant', content: [{ type: 'text', text: 'Looks fine.' }] },
      { role: 'user', content: [{ type: 'text', text: `I changed it, here it is again:\n\n${file}` }] },
      { role: 'assistant', content: [{ type: 'text', text: 'None.' }] },
      { role: 'user', content: [{ type: 'text', text: 'Sure?' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'Yes.' }] },
      { role: 'user', content: [{ type: 'text', text: `Last check:\n\n${file}` }] },
    ];
    const out = compressChat(req(msgs), { ...DEFAULT_COMPRESS_OPTIONS, epochTurns: 1 });
    assert.equal(
      (out.req.messages[1]!.content[0] as { text: string }).text,
      `Please review:\n\n${file}\n\nand this:\n\n[tokengrid: same ${doc.length} characters as in the system prompt above]`,
    );
    assert.equal(
      (out.req.messages[3]!.content[0] as { text: string }).text,
      `I changed it, here it is again:\n\n[tokengrid: same ${file.length} characters as in message 2 above]`,
    );
    assert.deepEqual(out.req.messages[7], msgs[7], 'the latest instruction stays whole');
    assert.deepEqual(out.req.messages[0], msgs[0]);
  });

  test('the window starts at a turn boundary that moves in steps of epochTurns, so a loop keeps its compressed prefix', () => {
    // Requests of one loop: each adds one round. The compressed form of the messages before the last request's
    // window must be the same in every request until the boundary moves.
    const full = agentLoop(14, 3000).slice(0, -1);
    let prev: ChatMessage[] | undefined;
    let prevStart = 0;
    let moves = 0;
    for (let n = 4; n <= full.length; n += 2) {
      const msgs = full.slice(0, n);
      const start = windowStart(turnsOf(msgs), 2, 4);
      const out = compressChat(req(msgs), { ...DEFAULT_COMPRESS_OPTIONS, epochTurns: 4 }).req.messages;
      if (prev !== undefined) {
        if (start === prevStart) assert.deepEqual(out.slice(0, prev.length - 1), prev.slice(0, -1), `request of ${n} messages keeps the prefix`);
        else {
          moves++;
          assert.deepEqual(out.slice(0, prevStart), prev.slice(0, prevStart), 'a move keeps the prefix before the old boundary');
        }
      }
      prev = out;
      prevStart = start;
    }
    assert.equal(moves, 3, 'the boundary moved at 4, 8 and 12 stale turns');
  });

  test('the guard keeps the lines of a stale output that hold what the latest turn asks about; the rest is still cut', () => {
    const msgs = agentLoop(6, 5000, 'What was build_id in the first run? Also check "src/app/main.ts".');
    const first = msgs[3]!.content[0] as { content: string };
    const lines = Array.from({ length: 60 }, (_, i) => (i === 30 ? 'info: build_id=48213' : filler(i, 80)));
    first.content = lines.join('\n');
    const out = compressChat(req(msgs));
    const kept = (out.req.messages[3]!.content[0] as { content: string }).content;
    assert.ok(kept.includes('\ninfo: build_id=48213\n'), kept);
    assert.ok(kept.length < first.content.length / 3, 'the other lines were dropped');
    assert.match(
      kept,
      /^.{0,200}\n\[… tokengrid: \d+ characters of this earlier tool output dropped …\]\ninfo: build_id=48213\n\[… tokengrid: \d+ characters/s,
    );
    assert.equal(out.plan.guarded, 1);
    assert.deepEqual(out.plan.guardHits, ['build_id']);
    assert.match((out.req.messages[5]!.content[0] as { content: string }).content, /characters of this earlier tool output dropped/, 'others still cut');
    const off = compressChat(req(msgs), { ...DEFAULT_COMPRESS_OPTIONS, guard: false });
    assert.ok(!JSON.stringify(off.req.messages).includes('48213'), 'without the guard the value is gone');
    assert.equal(compressChat(out.req).plan.edits.length, 0, 'idempotent');
  });

  test('a latest turn naming too many identifiers to tell what it needs switches stubbing off for the request', () => {
    const pasted = Array.from({ length: GUARD_MAX_TOKENS + 1 }, (_, i) => `const value_${i} = f(${i});`).join('\n');
    const out = compressChat(req(agentLoop(6, 5000, `Why does this fail?\n${pasted}`)));
    assert.equal(out.plan.guardOff, true);
    assert.equal(out.plan.edits.filter((e) => e.kind === 'stub').length, 0);
    assert.ok(compressChat(req(agentLoop(6, 5000, 'Why does this fail?'))).plan.edits.length > 0);
  });

  test('rare tokens: identifiers, paths, long numbers and quoted strings, not plain words', () => {
    const t = rareTokens('Why does fooBar fail in src/app.ts with code 40213 and "disk full"? Please look again at it');
    for (const w of ['fooBar', 'src/app.ts', '40213', 'disk full']) assert.ok(t.includes(w), w);
    for (const w of ['Why', 'Please', 'again', 'fail']) assert.ok(!t.includes(w), w);
  });

  test('short conversations and requests without stale outputs are left as they are', () => {
    const r = req(agentLoop(1, 5000));
    assert.equal(compressChat(r).req, r);
    const small = req(agentLoop(8, 300));
    assert.equal(compressChat(small).req, small);
  });

  test('the Anthropic native body is compressed by the same rules; tool_use and cache_control blocks stay', () => {
    const messages: Record<string, unknown>[] = [{ role: 'user', content: 'Fix the build.' }];
    for (let i = 0; i < 7; i++) {
      messages.push({ role: 'assistant', content: [{ type: 'tool_use', id: `tu_${i}`, name: 'bash', input: { command: 'make' } }] });
      messages.push({
        role: 'user',
        content: [{ type: 'tool_result', tool_use_id: `tu_${i}`, content: i === 1 ? [{ type: 'text', text: filler(i, 4000) }] : filler(i, 4000) }],
      });
    }
    messages.push({ role: 'user', content: [{ type: 'text', text: 'Done?', cache_control: { type: 'ephemeral' } }] });
    const body = { model: 'claude', system: filler(9, 3000), messages };
    const out = compressAnthropicBody(body) as { system: string; messages: { role: string; content: any }[] };
    assert.equal(out.system, body.system);
    assert.equal(out.messages.length, messages.length);
    assert.match(out.messages[2]!.content[0].content, /earlier tool output dropped/);
    assert.match(out.messages[4]!.content[0].content[0].text, /earlier tool output dropped/);
    assert.equal(out.messages[4]!.content[0].tool_use_id, 'tu_1');
    assert.deepEqual(out.messages[3], messages[3], 'tool_use untouched');
    assert.deepEqual(out.messages.at(-1), messages.at(-1));
  });
});

// ---- properties over random agent conversations ----

const partArb = fc.oneof(
  fc.record({ kind: fc.constant('text' as const), n: fc.integer({ min: 0, max: 3000 }), seed: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ kind: fc.constant('tool' as const), n: fc.integer({ min: 0, max: 4000 }), seed: fc.integer({ min: 0, max: 3 }) }),
  // A block pasted again (same seed: the same 1,500 characters), as the whole tool output or inside a user message.
  fc.record({ kind: fc.constant('paste' as const), n: fc.constant(1500), seed: fc.integer({ min: 0, max: 2 }) }),
);

const convArb = fc.array(partArb, { minLength: 1, maxLength: 14 }).map((steps) => {
  const msgs: ChatMessage[] = [{ role: 'system', content: [{ type: 'text', text: filler(42, 600) }] }];
  let call = 0;
  for (const s of steps) {
    if (s.kind === 'paste') {
      msgs.push({ role: 'user', content: [{ type: 'text', text: `Look again:\n\n${filler(s.seed, s.n)}\n\nThanks.` }] });
      msgs.push({ role: 'assistant', content: [{ type: 'text', text: 'ok' }] });
      const id = `c${call++}`;
      msgs.push({ role: 'assistant', content: [{ type: 'tool_call', id, name: 'read', argumentsJson: '{}' }] });
      msgs.push({ role: 'tool', content: [{ type: 'tool_result', toolCallId: id, content: filler(s.seed, s.n) }] });
    } else if (s.kind === 'text') {
      msgs.push({ role: 'user', content: [{ type: 'text', text: filler(s.seed, s.n) }] });
      msgs.push({ role: 'assistant', content: [{ type: 'text', text: 'ok' }] });
    } else {
      const id = `c${call++}`;
      msgs.push({ role: 'assistant', content: [{ type: 'tool_call', id, name: 'read', argumentsJson: '{}' }] });
      msgs.push({
        role: 'tool',
        content: [{ type: 'tool_result', toolCallId: id, content: `${filler(s.seed, s.n >> 1)} step_${call}: ${filler(s.seed + 1, s.n >> 1)}` }],
      });
    }
  }
  msgs.push({ role: 'user', content: [{ type: 'text', text: `What did step_1 print? ${filler(5, 40)}` }] });
  return msgs;
});

describe('context compression properties', () => {
  test('never breaks tool pairing, never grows, idempotent, guard keeps referenced spans', () => {
    let edited = 0;
    let referenced = 0;
    let droppedUnguarded = 0;
    fc.assert(
      fc.property(convArb, fc.boolean(), (msgs, guard) => {
        const opts = { ...DEFAULT_COMPRESS_OPTIONS, guard };
        const out = compressChat(req(msgs), opts);
        const res = out.req.messages;
        // Same messages, roles and tool calls; every tool result keeps its call id.
        assert.equal(res.length, msgs.length);
        for (let i = 0; i < msgs.length; i++) {
          assert.equal(res[i]!.role, msgs[i]!.role);
          assert.equal(res[i]!.content.length, msgs[i]!.content.length);
          for (let j = 0; j < msgs[i]!.content.length; j++) {
            const a = msgs[i]!.content[j]!;
            const b = res[i]!.content[j]!;
            assert.equal(b.type, a.type);
            if (a.type === 'tool_call') assert.deepEqual(b, a);
            if (a.type === 'tool_result') assert.equal((b as typeof a).toolCallId, a.toolCallId);
            if (msgs[i]!.role === 'system') assert.deepEqual(b, a);
          }
        }
        assert.ok(len(res) <= len(msgs));
        assert.equal(len(msgs) - len(res), out.plan.removedChars);
        // Idempotent.
        const again = compressChat(out.req, opts);
        assert.equal(again.plan.edits.length, 0);
        assert.deepEqual(again.req.messages, res);
        // The guard: "step_1" (asked about) is never dropped from the request.
        if (guard && JSON.stringify(msgs).includes('step_1:')) assert.ok(JSON.stringify(res).includes('step_1:'));
        if (!guard && JSON.stringify(msgs).includes('step_1:') && !JSON.stringify(res).includes('step_1:')) droppedUnguarded++;
        if (out.plan.edits.length > 0) edited++;
        if (out.plan.edits.some((e) => e.kind === 'reference')) referenced++;
      }),
      { numRuns: 300, seed: 17 },
    );
    // The generator reaches the interesting cases (compression happens, and without the guard it loses step_1).
    assert.ok(edited > 50, `edited ${edited}`);
    assert.ok(referenced > 20, `referenced ${referenced}`);
    assert.ok(droppedUnguarded > 5, `dropped without guard ${droppedUnguarded}`);
  });

  test('planCompression never edits the window', () => {
    fc.assert(
      fc.property(convArb, (msgs) => {
        const turns = turnsOf(msgs);
        const start = windowStart(turns, DEFAULT_COMPRESS_OPTIONS.keepTurns, DEFAULT_COMPRESS_OPTIONS.epochTurns);
        for (const e of planCompression(turns).edits) assert.ok(e.message < start);
      }),
      { numRuns: 200 },
    );
  });
});
