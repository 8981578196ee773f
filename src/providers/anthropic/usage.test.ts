import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMessageResponse, usageOf } from './parse-response.ts';

describe('Anthropic usage: server-tool requests (issue 12 attack report F8)', () => {
  test('web_search_requests is carried as serverToolRequests; absent when none', () => {
    assert.equal(usageOf({ input_tokens: 10, output_tokens: 5, server_tool_use: { web_search_requests: 3 } }).serverToolRequests, 3);
    assert.equal('serverToolRequests' in usageOf({ input_tokens: 10, output_tokens: 5 }), false);
    assert.equal('serverToolRequests' in usageOf({ input_tokens: 10, server_tool_use: { web_search_requests: 0 } }), false);
  });

  test('a non-streamed message with web search keeps its blocks and reports the searches', () => {
    const res = parseMessageResponse(
      JSON.stringify({
        id: 'msg_1',
        model: 'claude',
        stop_reason: 'end_turn',
        content: [
          { type: 'server_tool_use', id: 'srvtoolu_1', name: 'web_search', input: { query: 'tokengrid' } },
          {
            type: 'web_search_tool_result',
            tool_use_id: 'srvtoolu_1',
            content: [{ type: 'web_search_result', url: 'https://example.com', title: 'x', encrypted_content: 'abc' }],
          },
          { type: 'text', text: 'Found it.' },
        ],
        usage: { input_tokens: 100, output_tokens: 20, server_tool_use: { web_search_requests: 1 } },
      }),
      0,
    );
    assert.equal(res.usage.serverToolRequests, 1);
    assert.equal(res.anthropicContent?.length, 3);
  });
});
