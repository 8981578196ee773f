/**
 * The Vercel AI SDK (`ai` 6 with @ai-sdk/openai, @ai-sdk/openai-compatible, @ai-sdk/anthropic) against the
 * real server, through the recording proxy: every request the SDK makes is charged exactly once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { embedMany, generateObject, generateText, stepCountIs, streamText, tool, type LanguageModel } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { createAnthropic } from '@ai-sdk/anthropic';
import { z } from 'zod';
import { startHarness, type Harness } from './support/harness.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false; // unknown-model notices

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(() => h.close());

/** Runs `fn`, then checks that each inference request it made was charged once; returns its value and the exchanges. */
async function charged<T>(fn: () => Promise<T>) {
  const mark = h.mark();
  const before = (await h.usageRecords()).length;
  const value = await fn();
  const { completed } = await h.assertChargedOnce(mark, before);
  return { value, completed, exchanges: h.inference(mark) };
}

const recipe = z.object({ name: z.string(), servings: z.number().int(), vegetarian: z.boolean(), steps: z.array(z.string()) });

function languageModelSuite(label: string, model: () => LanguageModel, path: string) {
  describe(label, () => {
    test('generateText answers and is charged once', async () => {
      const { value, completed } = await charged(() => generateText({ model: model(), maxRetries: 0, system: 'Be brief', prompt: 'Hello there' }));
      assert.match(value.text, /emulator/i);
      assert.ok(value.usage.inputTokens! > 0 && value.usage.outputTokens! > 0);
      assert.equal(completed.length, 1);
      assert.ok(completed[0]!.path.startsWith(path), `${completed[0]!.path} is ${path}`);
    });

    test('streamText streams the same text as generateText and reports usage', async () => {
      const whole = await generateText({ model: model(), maxRetries: 0, prompt: 'Stream please' });
      const { value, completed } = await charged(async () => {
        const r = streamText({ model: model(), maxRetries: 0, prompt: 'Stream please' });
        let text = '';
        let parts = 0;
        for await (const d of r.textStream) {
          text += d;
          parts++;
        }
        return { text, parts, usage: await r.usage };
      });
      assert.equal(value.text, whole.text);
      assert.ok(value.parts > 1, 'more than one delta');
      assert.ok(value.usage.outputTokens! > 0);
      assert.equal(completed.length, 1);
    });

    test('a multi-step tool loop calls the tool, sends its result back and ends with text', async () => {
      let calls = 0;
      const { value, completed } = await charged(() =>
        generateText({
          model: model(),
          maxRetries: 0,
          prompt: 'What is the weather in Paris?',
          stopWhen: stepCountIs(5),
          tools: {
            get_weather: tool({
              description: 'Current weather in a city',
              inputSchema: z.object({ city: z.string() }),
              execute: async ({ city }) => {
                calls++;
                return { city, temperatureC: 21 };
              },
            }),
          },
        }),
      );
      assert.equal(calls, 1, 'the tool ran once');
      assert.equal(value.steps.length, 2, 'tool step, then answer step');
      assert.equal(value.steps[0]!.toolCalls[0]!.toolName, 'get_weather');
      assert.ok(value.text.length > 0, 'final text');
      assert.equal(completed.length, 2, 'two requests, each charged once');
      assert.match(completed[1]!.reqBody, /temperatureC/, 'the second request carries the tool result');
    });

    // On every upstream dialect: the emulator answers OpenAI json_schema, Anthropic output_config.format (and
    // the JSON instruction TokenGrid's Anthropic adapter writes) and Gemini responseJsonSchema with valid JSON.
    test('generateObject returns an object that fits the zod schema', async () => {
      const { value, completed } = await charged(() => generateObject({ model: model(), maxRetries: 0, schema: recipe, prompt: 'A vegetarian pasta recipe' }));
      assert.deepEqual(recipe.parse(value.object), value.object);
      assert.equal(completed.length, 1);
    });
  });
}

const openaiProvider = () => createOpenAI({ baseURL: `${h.url}/v1`, apiKey: h.srv.demoKey });
const compatible = () =>
  createOpenAICompatible({ name: 'tokengrid', baseURL: `${h.url}/v1`, apiKey: h.srv.demoKey, supportsStructuredOutputs: true, includeUsage: true });
const anthropicProvider = () => createAnthropic({ baseURL: `${h.url}/v1`, apiKey: h.srv.demoKey });

languageModelSuite(
  '@ai-sdk/openai chat mode (openai.chat) on an OpenAI-compatible upstream',
  () => openaiProvider().chat('deepseek-v3.2'),
  '/v1/chat/completions',
);
languageModelSuite(
  '@ai-sdk/openai chat mode on a Claude model (OpenAI client, Anthropic upstream)',
  () => openaiProvider().chat('claude-4.7'),
  '/v1/chat/completions',
);
languageModelSuite('@ai-sdk/openai Responses mode (the default openai(model))', () => openaiProvider()('deepseek-v3.2'), '/v1/responses');
languageModelSuite('@ai-sdk/openai Responses mode on an Anthropic upstream', () => openaiProvider().responses('claude-4.7'), '/v1/responses');
languageModelSuite('@ai-sdk/openai-compatible', () => compatible().chatModel('deepseek-v3.2'), '/v1/chat/completions');
languageModelSuite(
  '@ai-sdk/openai-compatible on a Gemini upstream (OpenAI client, Gemini model)',
  () => compatible().chatModel('gemini-3-pro'),
  '/v1/chat/completions',
);
languageModelSuite('@ai-sdk/anthropic on an Anthropic upstream', () => anthropicProvider()('claude-4.7'), '/v1/messages');
languageModelSuite(
  '@ai-sdk/anthropic on a DeepSeek upstream (Anthropic client, OpenAI-compatible model)',
  () => anthropicProvider()('deepseek-v3.2'),
  '/v1/messages',
);
languageModelSuite('@ai-sdk/anthropic on a Gemini upstream', () => anthropicProvider()('gemini-3-pro'), '/v1/messages');

describe('AI SDK embeddings', () => {
  test('embedMany through openai.embedding returns one vector per value, charged once', async () => {
    const { value, completed } = await charged(() =>
      embedMany({ model: openaiProvider().embedding('embed-small'), values: ['one', 'two', 'three'], maxRetries: 0 }),
    );
    assert.equal(value.embeddings.length, 3);
    assert.ok(value.embeddings[0]!.length > 0);
    assert.equal(completed.length, 1);
  });

  test('embedMany through @ai-sdk/openai-compatible', async () => {
    const { value } = await charged(() => embedMany({ model: compatible().embeddingModel('embed-small'), values: ['alpha', 'beta'], maxRetries: 0 }));
    assert.equal(value.embeddings.length, 2);
  });
});
