import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { meterTextTokens, zeroUsage, type ChatResponse, type StreamEvent, type Usage } from '../wire/index.ts';
import { anthropicBlockTokens, cutChatAtGrant, cutCompletionAtGrant, meterChatAnswer, meterCompletionAnswer, StreamMeter, type MeterStep } from './meter.ts';

const text = (t: string): StreamEvent => ({ type: 'text', text: t });
const finish: StreamEvent = { type: 'finish', finishReason: 'stop' };

/** Drive the meter as the lifecycle does; `grants` answers each extension in turn (null: refused). */
function drive(
  m: StreamMeter,
  evs: StreamEvent[],
  grants: ({ tokensOutputGranted: number; final: boolean } | null)[],
): { steps: MeterStep[]; delivered: StreamEvent[] } {
  const steps: MeterStep[] = [];
  const delivered: StreamEvent[] = [];
  let g = 0;
  for (const ev of evs) {
    let step = m.onEvent(ev);
    steps.push(step);
    if (step === 'extend') {
      step = m.extended(grants[g++] ?? null);
      steps.push(step);
    }
    if (step === 'truncate') {
      m.closedByGateway();
      break;
    }
    m.delivered(ev);
    delivered.push(ev);
  }
  return { steps, delivered };
}

describe('the stream meter decides deliver, extend or truncate for each event', () => {
  test('a grant that covers the whole answer delivers every event without asking for more', () => {
    const m = new StreamMeter(1000, 1000, 0.8);
    const { steps, delivered } = drive(m, [text('hello'), text(' world'), finish], []);
    assert.deepEqual(steps, ['deliver', 'deliver', 'deliver']);
    assert.equal(delivered.length, 3);
    assert.equal(m.finished, true);
    assert.equal(m.metered, meterTextTokens('hello world'));
  });

  test('it asks for an extension once the used share of the grant reaches the threshold, then reads on', () => {
    const m = new StreamMeter(10, 1000, 0.5);
    const words = Array.from({ length: 20 }, (_, i) => text(` word${i}`));
    const { steps, delivered } = drive(m, words, [{ tokensOutputGranted: 1000, final: true }]);
    assert.equal(steps.filter((s) => s === 'extend').length, 1);
    assert.equal(delivered.length, 20);
    assert.equal(m.granted, 1000);
    assert.equal(m.final, true);
  });

  test('a refused extension ends the stream at the grant: the crossing event is not delivered nor charged', () => {
    const m = new StreamMeter(6, 1000, 0.8);
    const words = Array.from({ length: 20 }, (_, i) => text(` word${i}`));
    const { steps, delivered } = drive(m, words, [null]);
    assert.equal(steps.at(-1), 'truncate');
    assert.ok(delivered.length > 0 && delivered.length < 20);
    assert.ok(m.metered <= 6, `metered ${m.metered} within the grant`);
    assert.equal(m.finished, true);
    assert.equal(m.metered, meterTextTokens(delivered.map((e) => (e as { text: string }).text).join('')));
  });

  test('a grant equal to the request maximum is final from the start: no extension is asked for', () => {
    const m = new StreamMeter(4, 4, 0.5);
    const { steps } = drive(m, [text('a b c d e f g h i j k l')], []);
    assert.deepEqual(steps, ['truncate']);
  });

  test('tool call arguments and starts are metered, the upstream usage is held, never delivered as output', () => {
    const m = new StreamMeter(1000, 1000, 0.8);
    const usage: Usage = { ...zeroUsage(), tokensInput: 9, tokensOutput: 12 };
    drive(
      m,
      [
        { type: 'tool_call_start', index: 0, id: 'c1', name: 'f' } as StreamEvent,
        { type: 'tool_call_delta', index: 0, argumentsDelta: '{"a":1}' } as StreamEvent,
        finish,
        { type: 'usage', usage },
      ],
      [],
    );
    assert.equal(m.metered, 3 + meterTextTokens('{"a":1}'));
    assert.equal(m.upstreamUsage, usage);
    assert.equal(m.reported('ok'), true);
    assert.equal(m.usage('ok', 50), usage);
  });

  test('a stream that did not end ok is settled on the estimate, never below what was delivered', () => {
    const m = new StreamMeter(1000, 1000, 0.8);
    drive(m, [text('one two three four five six')], []);
    assert.equal(m.reported('upstream_error'), false);
    const u = m.usage('upstream_error', 42);
    assert.equal(u.tokensInput, 42);
    assert.equal(u.tokensOutput, m.metered);
  });

  test('property: the meter tracks the delivered text, and a grant final from the start is never overrun', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 40 }),
        fc.array(fc.option(fc.record({ tokensOutputGranted: fc.integer({ min: 1, max: 80 }), final: fc.boolean() }), { nil: null }), { maxLength: 10 }),
        fc.integer({ min: 1, max: 200 }),
        (chunks, first, grants, max) => {
          // Grants only grow, as charging's do.
          let g = first;
          const grown = grants.map((r) => (r === null ? null : { ...r, tokensOutputGranted: (g = Math.max(g, r.tokensOutputGranted)) }));
          const m = new StreamMeter(Math.min(first, max), max, 0.8);
          const { steps, delivered } = drive(m, chunks.map(text), grown);
          const charged = meterTextTokens(delivered.map((e) => (e as { text: string }).text).join(''));
          assert.ok(Math.abs(m.metered - charged) <= 1 + delivered.length, 'metered tracks the delivered text');
          if (steps.at(-1) === 'truncate') assert.ok(!steps.slice(0, -1).includes('truncate'), 'a cut is the last step');
          // A grant that is final from the start is never overrun: the crossing event is held back.
          if (first >= max) assert.ok(m.metered <= m.granted, `within a final grant: ${m.metered} <= ${m.granted}`);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('whole answers are metered and cut at the grant', () => {
  const answer: ChatResponse = {
    id: 'x',
    model: 'm',
    createdS: 0,
    finishReason: 'stop',
    usage: zeroUsage(),
    content: [{ type: 'text', text: 'alpha beta gamma delta epsilon zeta eta theta iota kappa' }],
  } as ChatResponse;

  test('a chat answer cut at a small grant ends with finish_reason length and meters within the grant', () => {
    const cut = cutChatAtGrant(answer, 3);
    assert.equal(cut.finishReason, 'length');
    assert.ok(meterChatAnswer(cut) <= 3);
    assert.ok(meterChatAnswer(cut) < meterChatAnswer(answer));
  });

  test('a completion cut at its grant marks the cut choice length and keeps whole ones', () => {
    const res = {
      id: 'c',
      model: 'm',
      createdS: 0,
      usage: zeroUsage(),
      choices: [{ text: 'one two three four five six seven eight', finishReason: 'stop' as const }],
    };
    const cut = cutCompletionAtGrant(res, 2);
    assert.equal(cut.choices[0]!.finishReason, 'length');
    assert.ok(meterCompletionAnswer(cut) <= 2);
    assert.deepEqual(cutCompletionAtGrant(res, 1000).choices, res.choices);
  });
});

describe('the stream meter counts verbatim Anthropic blocks (issue 12 attack report F1, F8)', () => {
  const block = (b: Record<string, unknown>): StreamEvent => ({ type: 'reasoning', text: '', block: b });
  const result = {
    type: 'web_search_tool_result',
    tool_use_id: 's1',
    content: [{ type: 'web_search_result', url: 'https://e.x', encrypted_content: 'x'.repeat(300) }],
  };

  test('a delivered block is metered; a relayed tool result counts against the grant but not as generated output', () => {
    const m = new StreamMeter(10_000, 10_000, 0.8);
    drive(m, [text('hello'), block({ type: 'redacted_thinking', data: 'y'.repeat(600) }), block(result), finish], []);
    assert.equal(m.metered, meterTextTokens('hello') + 100 + anthropicBlockTokens(result));
    assert.equal(m.generated, meterTextTokens('hello') + 100);
  });

  test('a tool result past the grant is not delivered and not subtracted from the generated output', () => {
    const m = new StreamMeter(20, 20, 0.8);
    const { delivered } = drive(m, [text('hello'), block(result), finish], []);
    assert.equal(delivered.length, 1);
    assert.equal(m.metered, meterTextTokens('hello'));
    assert.equal(m.generated, m.metered);
  });
});
