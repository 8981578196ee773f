/**
 * LangChain (@langchain/openai with and without the Responses API, @langchain/anthropic) against the real
 * server through the recording proxy: each request charged exactly once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChatOpenAI, OpenAIEmbeddings } from '@langchain/openai';
import { ChatAnthropic } from '@langchain/anthropic';
import { HumanMessage, ToolMessage, type AIMessage, type BaseMessage } from '@langchain/core/messages';
import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import { tool } from '@langchain/core/tools';
import { z } from 'zod';
import { startHarness, type Harness } from './support/harness.ts';

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(() => h.close());

async function charged<T>(fn: () => Promise<T>) {
  const mark = h.mark();
  const before = (await h.usageRecords()).length;
  const value = await fn();
  const { completed } = await h.assertChargedOnce(mark, before);
  return { value, completed };
}

const getWeather = tool(async ({ city }) => JSON.stringify({ city, temperatureC: 21, sky: 'clear' }), {
  name: 'get_weather',
  description: 'Current weather in a city',
  schema: z.object({ city: z.string() }),
});
const person = z.object({ name: z.string(), age: z.number().int(), email: z.string() });

const openaiChat = (model: string, useResponsesApi: boolean) =>
  new ChatOpenAI({
    model,
    apiKey: h.srv.demoKey,
    maxRetries: 0,
    useResponsesApi,
    configuration: { baseURL: `${h.url}/v1` },
  });
const anthropicChat = (model: string) => new ChatAnthropic({ model, apiKey: h.srv.demoKey, maxRetries: 0, anthropicApiUrl: h.url, maxTokens: 1024 });

function chatModelSuite(
  label: string,
  make: () => BaseChatModel & { bindTools?: any },
  path: string,
  opts: { structured: Array<'default' | 'functionCalling'> },
) {
  describe(label, () => {
    test('invoke answers with text and token usage, charged once', async () => {
      const { value, completed } = await charged(() => make().invoke([new HumanMessage('Hello there')]));
      assert.match(value.text, /emulator/i);
      assert.ok((value as AIMessage).usage_metadata!.input_tokens > 0);
      assert.equal(completed.length, 1);
      assert.ok(completed[0]!.path.startsWith(path), `${completed[0]!.path} is ${path}`);
    });

    test('stream yields several chunks that add up to the invoke answer', async () => {
      const whole = await make().invoke('Stream please');
      const { value, completed } = await charged(async () => {
        let text = '';
        let chunks = 0;
        for await (const c of await make().stream('Stream please')) {
          text += c.text;
          chunks++;
        }
        return { text, chunks };
      });
      assert.equal(value.text, whole.text);
      assert.ok(value.chunks > 1);
      assert.equal(completed.length, 1);
    });

    test('bound tools: the model calls the tool, the tool result goes back, the model answers', async () => {
      const model = make().bindTools!([getWeather]);
      const { value, completed } = await charged(async () => {
        const history: BaseMessage[] = [new HumanMessage('What is the weather in Paris?')];
        const first: AIMessage = await model.invoke(history);
        assert.equal(first.tool_calls?.[0]?.name, 'get_weather');
        history.push(first);
        for (const call of first.tool_calls!)
          history.push(new ToolMessage({ tool_call_id: call.id!, content: await getWeather.invoke(call.args as { city: string }) }));
        return model.invoke(history) as Promise<AIMessage>;
      });
      assert.equal(value.tool_calls?.length ?? 0, 0, 'answers after the tool result');
      assert.ok(value.text.length > 0);
      assert.equal(completed.length, 2);
      assert.match(completed[1]!.reqBody, /temperatureC/);
    });

    for (const method of opts.structured) {
      test(`withStructuredOutput (${method === 'default' ? 'default method' : 'function calling'}) returns an object that fits the zod schema`, async () => {
        const model = method === 'default' ? make().withStructuredOutput(person) : make().withStructuredOutput(person, { method: 'functionCalling' });
        const { value, completed } = await charged(() => model.invoke('Extract: Ada, 36, ada@example.com'));
        assert.deepEqual(person.parse(value), value);
        assert.equal(completed.length, 1);
      });
    }
  });
}

chatModelSuite('@langchain/openai ChatOpenAI (chat completions)', () => openaiChat('deepseek-v3.2', false), '/v1/chat/completions', {
  structured: ['default', 'functionCalling'],
});
chatModelSuite(
  '@langchain/openai ChatOpenAI on a Claude model (OpenAI client, Anthropic upstream)',
  () => openaiChat('claude-4.7', false),
  '/v1/chat/completions',
  { structured: [] },
);
chatModelSuite('@langchain/openai ChatOpenAI({ useResponsesApi: true })', () => openaiChat('deepseek-v3.2', true), '/v1/responses', {
  structured: ['default', 'functionCalling'],
});
chatModelSuite('@langchain/openai ChatOpenAI({ useResponsesApi: true }) on a Gemini model', () => openaiChat('gemini-3-pro', true), '/v1/responses', {
  structured: [],
});
chatModelSuite('@langchain/anthropic ChatAnthropic', () => anthropicChat('claude-4.7'), '/v1/messages', { structured: ['default'] });
chatModelSuite(
  '@langchain/anthropic ChatAnthropic on a DeepSeek model (Anthropic client, OpenAI-compatible upstream)',
  () => anthropicChat('deepseek-v3.2'),
  '/v1/messages',
  { structured: ['default'] },
);

describe('@langchain/openai OpenAIEmbeddings', () => {
  test('embedDocuments and embedQuery return vectors (base64 on the wire), charged once each', async () => {
    const emb = new OpenAIEmbeddings({ model: 'embed-small', apiKey: h.srv.demoKey, maxRetries: 0, configuration: { baseURL: `${h.url}/v1` } });
    const { value, completed } = await charged(async () => ({ docs: await emb.embedDocuments(['one', 'two']), q: await emb.embedQuery('three') }));
    assert.equal(value.docs.length, 2);
    assert.equal(value.docs[0]!.length, value.q.length);
    assert.ok(value.q.length > 0 && value.q.every((x) => Number.isFinite(x)));
    assert.equal(completed.length, 2);
    assert.match(completed[0]!.reqBody, /"encoding_format":"base64"/);
  });
});
