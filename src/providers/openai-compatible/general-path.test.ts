/**
 * The equivalence test of the openai-compatible fast paths (ARCHITECTURE.md, "Fast paths"): every adapter and
 * dispatch test runs again with `fastPaths: false`, i.e. through undici's supported handler API (UnwrapHandler)
 * instead of the LegacyBridge, JSON.stringify(buildChatBody) instead of buildChatBodyJson, JSON.parse instead of
 * parsePlainChatResponse / plainDelta, and a streaming TextDecoder instead of Utf8Chunks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, type Dispatcher } from 'undici';
import { createOpenAICompatibleAdapter } from './index.ts';
import { chatRequest, scenarioCall, startScenarioUpstream } from './test-upstream.ts';
import { LegacyBridge } from './dispatch.ts';

// Set before the two test files are evaluated (static imports above do not read it).
(globalThis as { TOKENGRID_TEST_FAST_PATHS?: boolean }).TOKENGRID_TEST_FAST_PATHS = false;
await import('./adapter.test.ts');
await import('./dispatch.test.ts');

test('the fastPaths switch decides which handler interface undici is given', async () => {
  const up = await startScenarioUpstream({
    ok: (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: 'c',
          object: 'chat.completion',
          created: 1,
          model: 'up',
          choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
        }),
      );
    },
  });
  const given: unknown[] = [];
  class SpyAgent extends Agent {
    override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      given.push(handler);
      return super.dispatch(opts, handler);
    }
  }
  const spy = new SpyAgent();
  try {
    for (const fastPaths of [true, false]) {
      const res = await createOpenAICompatibleAdapter({ fastPaths }).chat({ ...scenarioCall(up, 'ok'), dispatcher: spy }, chatRequest());
      assert.deepEqual(res.content, [{ type: 'text', text: 'hi' }]);
    }
    assert.ok(given[0] instanceof LegacyBridge, 'fast path: the bridge to the older interface');
    const general = given[1] as Record<string, unknown>;
    assert.ok(
      !(general instanceof LegacyBridge) && typeof general['onRequestStart'] === 'function' && general['onHeaders'] === undefined,
      'general path: a handler of the supported API only',
    );
  } finally {
    await spy.close();
    await up.close();
  }
});
