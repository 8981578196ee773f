import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { anthropicBlockTokens, cutChatAtGrant } from './meter.ts';
import { meterTextTokens, zeroUsage, type ChatResponse } from '../wire/index.ts';

const words = (n: number): string => Array.from({ length: n }, (_, i) => `word${i % 10}`).join(' ');

function anthropicAnswer(blocks: Record<string, unknown>[]): ChatResponse {
  return {
    id: 'm',
    model: 'claude',
    createdS: 0,
    content: [{ type: 'text', text: words(500) }],
    finishReason: 'stop',
    usage: zeroUsage(),
    anthropicContent: blocks,
  };
}

describe('cutChatAtGrant on verbatim Anthropic blocks (issue 12 attack report F1)', () => {
  test('blocks past the grant are dropped; a text block is cut; the total sent fits the grant', () => {
    const blocks = [
      { type: 'thinking', thinking: words(50), signature: 'sig' },
      { type: 'server_tool_use', id: 's1', name: 'web_search', input: { query: 'q' } },
      { type: 'web_search_tool_result', tool_use_id: 's1', content: [{ type: 'web_search_result', url: 'https://e.x', encrypted_content: 'x'.repeat(200) }] },
      { type: 'text', text: words(400) },
      { type: 'redacted_thinking', data: 'y'.repeat(600) },
    ];
    const total = blocks.reduce((s, b) => s + anthropicBlockTokens(b), 0);
    const budget = Math.floor(total / 3);
    const cut = cutChatAtGrant(anthropicAnswer(blocks), budget);
    const sent = cut.anthropicContent!;
    assert.ok(sent.reduce((s, b) => s + anthropicBlockTokens(b), 0) <= budget);
    assert.deepEqual(sent.slice(0, 3), blocks.slice(0, 3), 'whole blocks before the cut are kept as they came');
    assert.equal(sent.length, 4, 'the redacted block past the grant is dropped');
    assert.ok((sent[3]!['text'] as string).length < (blocks[3]!['text'] as string).length);
    assert.equal(cut.finishReason, 'length');
  });

  test('a cut thinking block loses its signature; nothing follows it', () => {
    const blocks = [
      { type: 'thinking', thinking: words(300), signature: 'sig' },
      { type: 'text', text: 'answer' },
    ];
    const cut = cutChatAtGrant(anthropicAnswer(blocks), 50);
    assert.equal(cut.anthropicContent!.length, 1);
    assert.equal(cut.anthropicContent![0]!['signature'], '');
    assert.ok(meterTextTokens(cut.anthropicContent![0]!['thinking'] as string) <= 50);
  });

  test('a tool use that does not fit whole is not sent', () => {
    const blocks = [
      { type: 'text', text: words(30) },
      { type: 'tool_use', id: 't', name: 'f', input: { a: words(100) } },
    ];
    const cut = cutChatAtGrant(anthropicAnswer(blocks), 60);
    assert.deepEqual(cut.anthropicContent, [blocks[0]]);
  });
});
