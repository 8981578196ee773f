import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { startEmulator, type Emulator } from './index.ts';
import { ANTHROPIC_HEADERS, GEMINI_HEADERS, OPENAI_HEADERS } from './emulator-test-kit.ts';

let emu: Emulator;
before(async () => {
  emu = await startEmulator();
});
after(() => emu.close());

const ROUTES: [string, Record<string, string>][] = [
  ['/v1/chat/completions', OPENAI_HEADERS],
  ['/v1/completions', OPENAI_HEADERS],
  ['/v1/embeddings', OPENAI_HEADERS],
  ['/v1/messages', ANTHROPIC_HEADERS],
  ['/v1/messages/count_tokens', ANTHROPIC_HEADERS],
  ['/v1beta/models/g:generateContent', GEMINI_HEADERS],
  ['/v1beta/models/g:streamGenerateContent?alt=sse', GEMINI_HEADERS],
  ['/v1beta/models/g:batchEmbedContents', GEMINI_HEADERS],
];

/** Bodies that look roughly like requests, with arbitrary values in every slot. */
const anyValue = fc.anything({ maxDepth: 3 });
const roughBody = fc.record(
  {
    model: fc.oneof(fc.constant('m'), fc.constant('m@tokens=2@disconnectAfter=1'), anyValue),
    messages: fc.oneof(fc.array(fc.record({ role: fc.constantFrom('user', 'assistant', 'tool', 'x'), content: anyValue }), { maxLength: 3 }), anyValue),
    contents: fc.oneof(
      fc.array(fc.record({ role: fc.constantFrom('user', 'model'), parts: fc.array(anyValue, { maxLength: 2 }) }), { maxLength: 2 }),
      anyValue,
    ),
    tools: anyValue,
    tool_choice: anyValue,
    max_tokens: fc.oneof(fc.integer({ min: -2, max: 40 }), anyValue),
    stream: fc.boolean(),
    input: anyValue,
    prompt: anyValue,
    requests: anyValue,
  },
  { requiredKeys: [] },
);

test('arbitrary bodies on every route get an HTTP answer or a clean cut, and the server stays up', async () => {
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...ROUTES), fc.oneof(roughBody, anyValue), async ([path, headers], body) => {
      let text: string;
      try {
        text = JSON.stringify(body) ?? 'null';
      } catch {
        text = '{}';
      }
      try {
        const res = await fetch(emu.url + path, { method: 'POST', headers, body: text });
        assert.ok(res.status === 200 || (res.status >= 400 && res.status < 500), `status ${res.status}`);
        await res.text();
      } catch {
        // An injected disconnect (disconnectAfter) cuts the body; that is a clean cut, not a crash.
      }
    }),
    { numRuns: 300 },
  );
  const health = await fetch(`${emu.url}/__emulator/stats`);
  assert.equal(health.status, 200);
});
