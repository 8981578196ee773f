/**
 * Property: canonical events -> AnthropicStreamEncoder (our server side) -> SSE bytes cut at random
 * points -> AnthropicEventMapper (our client side) give back the same content, finish reason and usage.
 * Two independent halves agreeing on random streams catches asymmetric mistakes in either.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AnthropicStreamEncoder } from '../../wire/anthropic/index.ts';
import { SseParser, type FinishReason, type StreamEvent, type Usage } from '../../wire/index.ts';
import { AnthropicEventMapper } from './index.ts';

type Segment = { kind: 'text' | 'reasoning'; chunks: string[] } | { kind: 'tool'; name: string; chunks: string[] };

const segment: fc.Arbitrary<Segment> = fc.oneof(
  fc.record({
    kind: fc.constantFrom('text' as const, 'reasoning' as const),
    chunks: fc.array(fc.string({ minLength: 1, unit: 'grapheme' }), { minLength: 1, maxLength: 4 }),
  }),
  fc.record({ kind: fc.constant('tool' as const), name: fc.stringMatching(/^[a-z_]{1,12}$/), chunks: fc.array(fc.string({ minLength: 1 }), { maxLength: 4 }) }),
);

const usageArb: fc.Arbitrary<Usage> = fc
  .record({
    cached: fc.nat(1000),
    write: fc.nat(1000),
    uncached: fc.nat(1000),
    out: fc.nat(5000),
  })
  .map(({ cached, write, uncached, out }) => ({
    tokensInput: cached + write + uncached,
    tokensOutput: out,
    tokensCachedInput: cached,
    tokensCacheWrite: write,
    tokensReasoning: 0,
  }));

interface Summary {
  text: string;
  reasoning: string;
  tools: { id: string; name: string; args: string }[];
  finish?: FinishReason;
  usage?: Usage;
}

function summarize(events: StreamEvent[]): Summary {
  const s: Summary = { text: '', reasoning: '', tools: [] };
  for (const ev of events) {
    if (ev.type === 'text') s.text += ev.text;
    else if (ev.type === 'reasoning') s.reasoning += ev.text;
    else if (ev.type === 'tool_call_start') s.tools[ev.index] = { id: ev.id, name: ev.name, args: '' };
    else if (ev.type === 'tool_call_delta') {
      const tool = s.tools[ev.index];
      assert.ok(tool, 'delta for a tool that never started');
      tool.args += ev.argumentsDelta;
    } else if (ev.type === 'finish') s.finish = ev.finishReason;
    else if (ev.type === 'usage') s.usage = ev.usage;
  }
  return s;
}

test('encoder output read back by the adapter yields the same content, finish reason and usage', () => {
  fc.assert(
    fc.property(
      fc.array(segment, { maxLength: 6 }),
      fc.constantFrom<FinishReason>('stop', 'length', 'tool_calls', 'content_filter'),
      usageArb,
      fc.boolean(),
      fc.integer({ min: 1, max: 64 }),
      (segments, finishReason, usage, usageFirst, cut) => {
        const events: StreamEvent[] = [{ type: 'start', id: 'up', model: 'up', createdS: 0 }];
        let tools = 0;
        for (const seg of segments) {
          if (seg.kind === 'tool') {
            const index = tools++;
            events.push({ type: 'tool_call_start', index, id: `toolu_${index}`, name: seg.name });
            for (const c of seg.chunks) events.push({ type: 'tool_call_delta', index, argumentsDelta: c });
          } else {
            for (const c of seg.chunks) events.push({ type: seg.kind, text: c });
          }
        }
        if (usageFirst) events.push({ type: 'usage', usage }, { type: 'finish', finishReason });
        else events.push({ type: 'finish', finishReason }, { type: 'usage', usage });

        const enc = new AnthropicStreamEncoder({ id: 'msg_1', model: 'm', inputTokensEstimate: 5 });
        const bytes = events.map((e) => enc.encode(e)).join('') + enc.finish();
        const parser = new SseParser();
        const mapper = new AnthropicEventMapper();
        const back: StreamEvent[] = [];
        for (let i = 0; i < bytes.length; i += cut) for (const ev of parser.push(bytes.slice(i, i + cut))) back.push(...mapper.map(ev));
        for (const ev of parser.end()) back.push(...mapper.map(ev));

        assert.ok(mapper.isStopped, 'message_stop was sent');
        assert.deepEqual(summarize(back), summarize(events));
        assert.equal(back.filter((e) => e.type === 'usage').length, 1);
      },
    ),
  );
});
