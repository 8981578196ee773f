import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEmulator } from './index.ts';
import type { Emulator } from './types.ts';

let emu: Emulator;
before(async () => {
  emu = await startEmulator({ ttftMs: 0, chunkIntervalMs: 0, outputTokens: 4 });
});
after(() => emu.close());

const system = 'Policy text for the prompt cache. '.repeat(160); // ~5,400 bytes: ~1,350 tokens
async function openai(model: string, question: string, key = 'k1'): Promise<{ prompt: number; cached: number }> {
  const r = await fetch(`${emu.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model,
      messages: [
        { role: 'system', content: system },
        { role: 'user', content: question },
      ],
    }),
  });
  const j = (await r.json()) as { usage: { prompt_tokens: number; prompt_tokens_details: { cached_tokens: number } } };
  return { prompt: j.usage.prompt_tokens, cached: j.usage.prompt_tokens_details.cached_tokens };
}

describe('the emulated vendor prompt cache', () => {
  test('a repeated long prefix on the same deployment is reported as cached input from the second request on', async () => {
    const first = await openai('emu-a', 'first question');
    assert.equal(first.cached, 0);
    const second = await openai('emu-a', 'second question');
    assert.ok(second.cached >= 1024 && second.cached < second.prompt, JSON.stringify(second));
  });

  test('another model or API key is another deployment: its cache is its own', async () => {
    await openai('emu-b', 'q');
    assert.equal((await openai('emu-c', 'q')).cached, 0);
    assert.equal((await openai('emu-b', 'q', 'other-key')).cached, 0);
  });

  test('Anthropic reports cache reads in cache_read_input_tokens, input_tokens without them', async () => {
    const send = async (q: string) => {
      const r = await fetch(`${emu.url}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': 'k', 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'claude-x', max_tokens: 10, system, messages: [{ role: 'user', content: q }] }),
      });
      return ((await r.json()) as { usage: { input_tokens: number; cache_read_input_tokens: number } }).usage;
    };
    const a = await send('one');
    const b = await send('two');
    assert.equal(a.cache_read_input_tokens, 0);
    assert.ok(b.cache_read_input_tokens >= 1024);
    assert.ok(b.input_tokens < a.input_tokens);
  });
});
