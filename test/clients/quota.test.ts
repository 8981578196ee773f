/**
 * An exhausted package: the quota refusal tells clients not to retry (`x-should-retry: false`), so the
 * official SDKs make exactly one request, and nothing is charged. Clients that ignore the header are
 * measured too, so docs/compatibility.md can say what they do.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { generateText } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { ChatOpenAI } from '@langchain/openai';
import { ChatAnthropic } from '@langchain/anthropic';
import { createAnthropic } from '@ai-sdk/anthropic';
import { startHarness, type Harness } from './support/harness.ts';

let h: Harness;
let empty: { id: string; key: string };
before(async () => {
  h = await startHarness();
  empty = await h.account(0);
});
after(() => h.close());

/** Runs `fn` (expected to fail) and returns the inference exchanges it made and the error. */
async function refused(fn: () => Promise<unknown>) {
  const mark = h.mark();
  let error: any;
  try {
    await fn();
  } catch (e) {
    error = e;
  }
  assert.ok(error, 'the call fails');
  assert.equal((await h.usageRecords(empty.id)).length, 0, 'nothing is charged');
  return { error, exchanges: h.inference(mark) };
}

describe('an exhausted package', () => {
  test('the OpenAI SDK (default retries) makes exactly one request: 429 insufficient_quota with x-should-retry: false', async () => {
    const client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: empty.key }); // maxRetries left at its default (2)
    const { error, exchanges } = await refused(() => client.chat.completions.create({ model: 'deepseek-v3.2', messages: [{ role: 'user', content: 'Hi' }] }));
    assert.equal(exchanges.length, 1, 'no retry');
    assert.equal(exchanges[0]!.status, 429);
    assert.equal(exchanges[0]!.resHeaders['x-should-retry'], 'false');
    assert.equal(error.status, 429);
    assert.equal(error.code, 'insufficient_quota');
  });

  test('the OpenAI SDK Responses API makes exactly one request too', async () => {
    const client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: empty.key });
    const { exchanges } = await refused(() => client.responses.create({ model: 'deepseek-v3.2', input: 'Hi' }));
    assert.equal(exchanges.length, 1);
    assert.equal(exchanges[0]!.resHeaders['x-should-retry'], 'false');
  });

  test('the Anthropic SDK (default retries) makes exactly one request', async () => {
    const client = new Anthropic({ baseURL: h.url, apiKey: empty.key });
    const { error, exchanges } = await refused(() =>
      client.messages.create({ model: 'claude-4.7', max_tokens: 100, messages: [{ role: 'user', content: 'Hi' }] }),
    );
    assert.equal(exchanges.length, 1, 'no retry');
    assert.equal(exchanges[0]!.resHeaders['x-should-retry'], 'false');
    assert.equal(error.status, 429);
  });

  test('LangChain ChatOpenAI does not retry insufficient_quota (its own rule)', async () => {
    const model = new ChatOpenAI({ model: 'deepseek-v3.2', apiKey: empty.key, configuration: { baseURL: `${h.url}/v1` } });
    const { exchanges } = await refused(() => model.invoke('Hi'));
    assert.equal(exchanges.length, 1);
  });

  test('the AI SDK retries any 429 (it ignores x-should-retry): 1 + maxRetries requests, none charged', async () => {
    const openai = createOpenAI({ baseURL: `${h.url}/v1`, apiKey: empty.key });
    const { error, exchanges } = await refused(() => generateText({ model: openai.chat('deepseek-v3.2'), prompt: 'Hi', maxRetries: 1 }));
    assert.equal(exchanges.length, 2, 'documented in docs/compatibility.md: pass maxRetries: 0 or handle the error');
    assert.ok(exchanges.every((e) => e.status === 429 && e.resHeaders['x-should-retry'] === 'false'));
    assert.match(String(error.message), /quota|package|used up/i);
  });

  test('LangChain ChatOpenAI({ useResponsesApi: true }) makes exactly one request too', async () => {
    const model = new ChatOpenAI({ model: 'deepseek-v3.2', apiKey: empty.key, useResponsesApi: true, configuration: { baseURL: `${h.url}/v1` } });
    const { exchanges } = await refused(() => model.invoke('Hi'));
    assert.equal(exchanges.length, 1);
    assert.equal(exchanges[0]!.path, '/v1/responses');
  });

  test('LangChain ChatAnthropic (maxRetries 2) makes exactly one request', async () => {
    const model = new ChatAnthropic({ model: 'claude-4.7', apiKey: empty.key, anthropicApiUrl: h.url, maxRetries: 2 });
    const { exchanges } = await refused(() => model.invoke('Hi'));
    assert.equal(exchanges.length, 1, 'no retry');
    assert.equal(exchanges[0]!.resHeaders['x-should-retry'], 'false');
  });

  test('@ai-sdk/anthropic retries any 429 too (1 + maxRetries requests), none charged', async () => {
    const anthropic = createAnthropic({ baseURL: `${h.url}/v1`, apiKey: empty.key });
    const { exchanges } = await refused(() => generateText({ model: anthropic('claude-4.7'), prompt: 'Hi', maxRetries: 1 }));
    assert.equal(exchanges.length, 2);
  });
});
