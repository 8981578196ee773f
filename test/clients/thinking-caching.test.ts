/**
 * Thinking and prompt caching through the real clients. `claude-think` (test-config.yaml) is an Anthropic
 * upstream that answers with a signed thinking block (6 reasoning tokens) and reports 40 cache-read and 30
 * cache-write input tokens. Each client must show them, carry the thinking (with its signature) back in a
 * multi-step tool loop, and be charged exactly: uncached input x 10 + cache reads x 1 + cache writes x 25/2
 * + output (thinking included) x 40 coins.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { generateText, stepCountIs, streamText, tool } from 'ai';
import { createAnthropic } from '@ai-sdk/anthropic';
import { ChatAnthropic } from '@langchain/anthropic';
import { z } from 'zod';
import { startHarness, type Harness } from './support/harness.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(() => h.close());

async function charged<T>(fn: () => Promise<T>) {
  const mark = h.mark();
  const before = (await h.usageRecords()).length;
  const value = await fn();
  const { completed, records } = await h.assertChargedOnce(mark, before);
  return { value, completed, records };
}

/** A prompt long enough (about 130 tokens) that the upstream's 40 cached + 30 written tokens fit in it. */
const LONG = 'A long stable prefix. '.repeat(25);
const CACHED = 40;
const WRITTEN = 30;

/** claude-think's coin rates: the cost of one record, rounded up as the rating does. */
function expectedCoins(r: any): number {
  const u = r.usage;
  const uncached = u.tokensInput - u.tokensCachedInput - u.tokensCacheWrite;
  return Math.ceil(uncached * 10 + u.tokensCachedInput + (u.tokensCacheWrite * 25) / 2 + u.tokensOutput * 40);
}

function assertCacheCharged(records: any[]) {
  for (const r of records) {
    assert.equal(r.usage.tokensCachedInput, CACHED, 'cache reads recorded');
    assert.equal(r.usage.tokensCacheWrite, WRITTEN, 'cache writes recorded');
    assert.equal(r.costCoins, expectedCoins(r), 'cache reads and writes rated at their own rates');
  }
}

describe('@ai-sdk/anthropic: thinking and prompt caching', () => {
  const anthropic = () => createAnthropic({ baseURL: `${h.url}/v1`, apiKey: h.srv.demoKey });
  const thinking = { anthropic: { thinking: { type: 'enabled', budgetTokens: 1024 } } } as const;

  test('generateText shows the reasoning and the cache reads and writes; charged at the cache rates', async () => {
    const { value, completed, records } = await charged(() =>
      generateText({
        model: anthropic()('claude-think'),
        maxRetries: 0,
        providerOptions: thinking,
        allowSystemInMessages: true,
        messages: [
          { role: 'system', content: LONG, providerOptions: { anthropic: { cacheControl: { type: 'ephemeral' } } } },
          { role: 'user', content: 'Hello there' },
        ],
      }),
    );
    assert.ok((value.reasoningText ?? '').length > 0, 'reasoning text');
    assert.equal(value.usage.inputTokenDetails.cacheReadTokens, CACHED);
    assert.equal(value.usage.inputTokenDetails.cacheWriteTokens, WRITTEN);
    const sent = JSON.parse(completed[0]!.reqBody);
    assert.deepEqual(sent.thinking, { type: 'enabled', budget_tokens: 1024 });
    assert.ok(JSON.stringify(sent.system).includes('"cache_control":{"type":"ephemeral"}'), 'the client sent cache_control');
    assert.ok(JSON.stringify(h.srv.app.emulator!.lastRequest('/v1/messages')!.body.system).includes('cache_control'), 'cache_control reached the upstream');
    assertCacheCharged(records);
  });

  test('streamText streams reasoning before the text', async () => {
    const { value, records } = await charged(async () => {
      const r = streamText({ model: anthropic()('claude-think'), maxRetries: 0, providerOptions: thinking, prompt: `${LONG} Stream please` });
      const kinds: string[] = [];
      for await (const part of r.fullStream) if (part.type === 'reasoning-delta' || part.type === 'text-delta') kinds.push(part.type);
      return { kinds, reasoning: await r.reasoningText };
    });
    assert.ok(value.kinds.indexOf('reasoning-delta') >= 0 && value.kinds.indexOf('reasoning-delta') < value.kinds.indexOf('text-delta'));
    assert.ok((value.reasoning ?? '').length > 0);
    assertCacheCharged(records);
  });

  test('a multi-step tool loop with thinking sends the signed thinking block back with the tool result', async () => {
    const { value, completed, records } = await charged(() =>
      generateText({
        model: anthropic()('claude-think'),
        maxRetries: 0,
        providerOptions: thinking,
        stopWhen: stepCountIs(4),
        system: LONG,
        prompt: 'Run `date` for me',
        tools: {
          bash: tool({
            description: 'Run a shell command',
            inputSchema: z.object({ command: z.string() }),
            execute: async () => 'Mon Dec  7 12:00:00 UTC 2026',
          }),
        },
      }),
    );
    assert.equal(value.steps.length, 2);
    assert.match(value.text, /Mon Dec/, 'the answer comes from the tool result');
    const second = JSON.parse(completed[1]!.reqBody);
    const assistant = second.messages.find((m: any) => m.role === 'assistant');
    const block = assistant.content.find((b: any) => b.type === 'thinking');
    assert.ok(block, 'the thinking block is sent back');
    assert.match(block.signature, /^emu-sig-/, 'with its signature');
    const upstream = h.srv.app.emulator!.lastRequest('/v1/messages')!.body as any;
    assert.deepEqual(
      upstream.messages.find((m: any) => m.role === 'assistant').content.find((b: any) => b.type === 'thinking'),
      block,
      'and it reaches the upstream as sent',
    );
    assertCacheCharged(records);
  });
});

describe('@langchain/anthropic: thinking and prompt caching', () => {
  test('ChatAnthropic with thinking returns the thinking block and cache token details', async () => {
    const model = new ChatAnthropic({
      model: 'claude-think',
      apiKey: h.srv.demoKey,
      anthropicApiUrl: h.url,
      maxRetries: 0,
      maxTokens: 2000,
      thinking: { type: 'enabled', budget_tokens: 1024 },
    });
    const { value, records } = await charged(() => model.invoke(`${LONG} Hello there`));
    assert.ok(Array.isArray(value.content) && value.content.some((b: any) => b.type === 'thinking' && b.signature), JSON.stringify(value.content));
    assert.equal(value.usage_metadata!.input_token_details!.cache_read, CACHED);
    assert.equal(value.usage_metadata!.input_token_details!.cache_creation, WRITTEN);
    assertCacheCharged(records);
  });
});

describe('openai SDK on a thinking, caching Claude model', () => {
  test('chat completions report cached tokens and the thinking as reasoning_content; charged at the cache rates', async () => {
    const client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: h.srv.demoKey, maxRetries: 0 });
    const { value, records } = await charged(() =>
      client.chat.completions.create({
        model: 'claude-think',
        messages: [
          { role: 'system', content: LONG },
          { role: 'user', content: 'Hello there' },
        ],
      }),
    );
    assert.equal(value.usage!.prompt_tokens_details?.cached_tokens, CACHED);
    // The thinking comes back as reasoning_content (DeepSeek's field, which OpenAI-compatible clients read).
    // reasoning_tokens stays 0: Anthropic's usage does not split thinking out of output_tokens.
    assert.ok(((value.choices[0]!.message as { reasoning_content?: string }).reasoning_content ?? '').length > 0);
    assertCacheCharged(records);
  });

  test('the Responses API reports cached tokens and the thinking as a reasoning item', async () => {
    const client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: h.srv.demoKey, maxRetries: 0 });
    const { value, records } = await charged(() =>
      client.responses.create({ model: 'claude-think', instructions: LONG, input: 'Hello there', reasoning: { effort: 'low' } }),
    );
    assert.equal(value.usage!.input_tokens_details.cached_tokens, CACHED);
    const reasoning = value.output.find((o) => o.type === 'reasoning');
    assert.ok(reasoning && reasoning.type === 'reasoning' && (reasoning.content?.[0]?.text ?? '').length > 0, 'a reasoning item before the message');
    assertCacheCharged(records);
  });
});
