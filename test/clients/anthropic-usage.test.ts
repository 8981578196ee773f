/**
 * The usage an Anthropic-format client ends up with is the usage charged. `@anthropic-ai/sdk`'s MessageStream
 * starts from message_start's usage and overwrites each counter message_delta carries (the last value wins),
 * so: message_delta carries the final input, cache and output counts on every upstream, and from an Anthropic
 * upstream message_start already carries the upstream's own input counts (as api.anthropic.com sends them),
 * not the gateway's estimate. Other upstreams report no usage before the end: message_start shows the
 * gateway's estimate there.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startHarness, type Harness } from './support/harness.ts';

let h: Harness;
let client: Anthropic;
before(async () => {
  h = await startHarness();
  client = new Anthropic({ baseURL: h.url, apiKey: h.srv.demoKey, maxRetries: 0 });
});
after(() => h.close());

const prompt = 'Tell me about token packages, prepaid buckets and the way a gateway settles what a model used. '.repeat(20);

for (const model of ['claude-4.7', 'claude-think', 'deepseek-v3.2', 'gemini-3-pro']) {
  describe(`@anthropic-ai/sdk stream on ${model}`, () => {
    test('finalMessage().usage is the usage charged; message_delta carries the final input counts', async () => {
      const mark = h.mark();
      const before = (await h.usageRecords()).length;
      // A system prompt and a tool, as an agent sends: the gateway's estimate and the upstream's count differ.
      const stream = client.messages.stream({
        model,
        max_tokens: 256,
        system: [{ type: 'text', text: 'You are a careful assistant. '.repeat(40) }],
        tools: [
          {
            name: 'lookup',
            description: 'Look a word up in the glossary',
            input_schema: { type: 'object', properties: { word: { type: 'string' } }, required: ['word'] },
          },
        ],
        tool_choice: { type: 'none' },
        messages: [{ role: 'user', content: prompt }],
      });
      const starts: Anthropic.Usage[] = [];
      const deltas: Anthropic.MessageDeltaUsage[] = [];
      stream.on('streamEvent', (ev) => {
        if (ev.type === 'message_start') starts.push(structuredClone(ev.message.usage)); // the SDK's snapshot mutates it
        if (ev.type === 'message_delta') deltas.push(structuredClone(ev.usage));
      });
      const final = await stream.finalMessage();
      const { records } = await h.assertChargedOnce(mark, before);
      assert.equal(records.length, 1);
      const charged = records[0].usage;
      const u = final.usage;
      assert.equal(
        u.input_tokens + (u.cache_read_input_tokens ?? 0) + (u.cache_creation_input_tokens ?? 0),
        charged.tokensInput,
        'input tokens the client ends up with = charged',
      );
      assert.equal(u.cache_read_input_tokens ?? 0, charged.tokensCachedInput);
      assert.equal(u.cache_creation_input_tokens ?? 0, charged.tokensCacheWrite);
      assert.equal(u.output_tokens, charged.tokensOutput);
      assert.equal(starts.length, 1);
      assert.equal(deltas.length, 1);
      assert.equal(deltas[0]!.input_tokens, u.input_tokens, 'message_delta carries the final input_tokens');
      if (model.startsWith('claude')) {
        assert.equal(starts[0]!.input_tokens, u.input_tokens, "message_start passes the Anthropic upstream's own input count through");
        assert.equal(starts[0]!.cache_read_input_tokens ?? 0, u.cache_read_input_tokens ?? 0);
      }
    });
  });
}
