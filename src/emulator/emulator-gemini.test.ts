import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startEmulator, type Emulator } from './index.ts';
import { GEMINI_HEADERS, expectedInputTokens, post, postJson, splitSse } from './emulator-test-kit.ts';

let emu: Emulator;
let base: string;
before(async () => {
  emu = await startEmulator();
  base = `${emu.url}/v1beta/models`;
});
after(() => emu.close());

const hello = { contents: [{ role: 'user', parts: [{ text: 'Hello there' }] }] };
const tools = [
  {
    functionDeclarations: [
      {
        name: 'lookup',
        parameters: { type: 'OBJECT', properties: { q: { type: 'STRING' }, n: { type: 'INTEGER' }, on: { type: 'BOOLEAN' } }, required: ['q', 'n', 'on'] },
      },
    ],
  },
];

describe('gemini generateContent', () => {
  test('answers candidates with text, STOP and usageMetadata', async () => {
    const r = await postJson(`${base}/gemini-2.0-flash:generateContent`, GEMINI_HEADERS, { ...hello, systemInstruction: { parts: [{ text: 'Be brief' }] } });
    assert.equal(r.status, 200);
    const cand = r.json.candidates[0];
    assert.equal(cand.content.role, 'model');
    assert.ok(cand.content.parts[0].text.startsWith('This is the TokenGrid emulator answering as gemini-2.0-flash.'));
    assert.equal(cand.finishReason, 'STOP');
    const prompt = expectedInputTokens(['Be brief', 'Hello there']);
    assert.equal(r.json.usageMetadata.promptTokenCount, prompt);
    assert.equal(r.json.usageMetadata.candidatesTokenCount, 24);
    assert.equal(r.json.usageMetadata.totalTokenCount, prompt + 24);
    assert.equal(r.json.modelVersion, 'gemini-2.0-flash');
  });

  test('maxOutputTokens caps with MAX_TOKENS; cached and reasoning use their own counts', async () => {
    const r = await postJson(`${base}/g@cached=2@reasoning=3:generateContent`, GEMINI_HEADERS, { ...hello, generationConfig: { maxOutputTokens: 8 } });
    assert.equal(r.json.candidates[0].finishReason, 'MAX_TOKENS');
    const u = r.json.usageMetadata;
    assert.equal(u.candidatesTokenCount, 5);
    assert.equal(u.thoughtsTokenCount, 3);
    assert.equal(u.cachedContentTokenCount, 2);
    assert.equal(u.totalTokenCount, u.promptTokenCount + 8);
    assert.equal(r.json.modelVersion, 'g', 'directives are stripped from the echoed model');
  });

  test('tools produce one functionCall part; a functionResponse turn gets text', async () => {
    const r = await postJson(`${base}/g:generateContent`, GEMINI_HEADERS, { ...hello, tools });
    assert.deepEqual(r.json.candidates[0].content.parts[0].functionCall, { name: 'lookup', args: { q: 'demo', n: 42, on: true } });
    const followUp = {
      contents: [
        ...hello.contents,
        { role: 'model', parts: [{ functionCall: { name: 'lookup', args: { q: 'demo' } } }] },
        { role: 'user', parts: [{ functionResponse: { name: 'lookup', response: { result: 1 } } }] },
      ],
      tools,
    };
    const after = await postJson(`${base}/g:generateContent`, GEMINI_HEADERS, followUp);
    assert.equal(typeof after.json.candidates[0].content.parts[0].text, 'string');
    const none = await postJson(`${base}/g:generateContent`, GEMINI_HEADERS, { ...hello, tools, toolConfig: { functionCallingConfig: { mode: 'NONE' } } });
    assert.equal(typeof none.json.candidates[0].content.parts[0].text, 'string');
  });

  test('a functionResponse is answered from, like the OpenAI and Anthropic sides: "The tool returned: ..."', async () => {
    const turn = (role: string, response: unknown) => ({
      contents: [
        ...hello.contents,
        { role: 'model', parts: [{ functionCall: { name: 'lookup', args: { q: 'demo' } } }] },
        { role, parts: [{ functionResponse: { name: 'lookup', response } }] },
      ],
      tools,
    });
    const text = async (body: unknown) => (await postJson(`${base}/g:generateContent`, GEMINI_HEADERS, body)).json.candidates[0].content.parts[0].text;
    assert.equal(
      await text(turn('user', { output: 'The secret word is kiwi.' })),
      'The tool returned: The secret word is kiwi.',
      'a wrapped string is the tool text',
    );
    assert.equal(await text(turn('user', { result: 1 })), 'The tool returned: {"result":1}');
    assert.equal(await text(turn('function', { error: 'no such file' })), 'The tool returned: no such file', 'the older `function` role too');
    const streamed = await post(`${base}/g:streamGenerateContent?alt=sse`, GEMINI_HEADERS, turn('user', { output: 'kiwi' }));
    const joined = splitSse(streamed.text)
      .map((e) => JSON.parse(e.data).candidates[0].content.parts[0]?.text ?? '')
      .join('');
    assert.equal(joined, 'The tool returned: kiwi');
  });

  test('responseJsonSchema / responseSchema get JSON valid for the schema, with or without responseMimeType', async () => {
    const schema = {
      type: 'object',
      properties: { city: { type: 'string' }, population: { type: 'integer', minimum: 1000 } },
      required: ['city', 'population'],
    };
    const json = async (generationConfig: unknown) =>
      JSON.parse((await postJson(`${base}/g:generateContent`, GEMINI_HEADERS, { ...hello, generationConfig })).json.candidates[0].content.parts[0].text);
    assert.deepEqual(await json({ responseMimeType: 'application/json', responseJsonSchema: schema }), { city: 'demo', population: 1000 });
    assert.deepEqual(
      await json({ responseSchema: { type: 'OBJECT', properties: { ok: { type: 'BOOLEAN' } } } }),
      { ok: true },
      'the OpenAPI-subset responseSchema, no mime type',
    );
    assert.deepEqual(await json({ response_mime_type: 'application/json' }), { answer: 'demo' });
  });
});

describe('gemini streamGenerateContent', () => {
  test('alt=sse streams CRLF-separated data events with cumulative usage and a final finishReason', async () => {
    const plain = await postJson(`${base}/g:generateContent`, GEMINI_HEADERS, hello);
    const r = await post(`${base}/g:streamGenerateContent?alt=sse`, GEMINI_HEADERS, hello);
    assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.ok(r.text.includes('\r\n\r\n'));
    assert.ok(!r.text.includes('[DONE]'));
    const chunks = splitSse(r.text).map((e) => JSON.parse(e.data));
    assert.equal(chunks.length, 24);
    const text = chunks.map((c) => c.candidates[0].content.parts[0].text).join('');
    assert.equal(text, plain.json.candidates[0].content.parts[0].text);
    assert.ok(chunks.slice(0, -1).every((c) => c.candidates[0].finishReason === undefined));
    assert.equal(chunks.at(-1).candidates[0].finishReason, 'STOP');
    assert.equal(chunks[0].usageMetadata.candidatesTokenCount, 1);
    assert.deepEqual(chunks.at(-1).usageMetadata, plain.json.usageMetadata);
  });

  test('without alt=sse the stream is a JSON array of responses', async () => {
    const r = await postJson(`${base}/g:streamGenerateContent`, GEMINI_HEADERS, { ...hello, generationConfig: { maxOutputTokens: 3 } });
    assert.ok(Array.isArray(r.json));
    assert.equal(r.json.length, 3);
    assert.equal(r.json[2].candidates[0].finishReason, 'MAX_TOKENS');
  });
});

describe('gemini embeddings, auth and errors', () => {
  test('embedContent and batchEmbedContents return deterministic values', async () => {
    const one = await postJson(`${base}/text-embedding-004:embedContent`, GEMINI_HEADERS, { content: { parts: [{ text: 'abc' }] }, outputDimensionality: 4 });
    assert.equal(one.json.embedding.values.length, 4);
    const batch = await postJson(`${base}/text-embedding-004:batchEmbedContents`, GEMINI_HEADERS, {
      requests: [
        { model: 'models/text-embedding-004', content: { parts: [{ text: 'abc' }] }, outputDimensionality: 4 },
        { model: 'models/text-embedding-004', content: { parts: [{ text: 'xyz' }] } },
      ],
    });
    assert.deepEqual(batch.json.embeddings[0].values, one.json.embedding.values);
    assert.equal(batch.json.embeddings[1].values.length, 8);
  });

  test('the key is accepted from x-goog-api-key or ?key=, and its absence is 403 PERMISSION_DENIED', async () => {
    const viaQuery = await post(`${base}/g:generateContent?key=abc`, { 'content-type': 'application/json' }, hello);
    assert.equal(viaQuery.status, 200);
    const none = await postJson(`${base}/g:generateContent`, { 'content-type': 'application/json' }, hello);
    assert.equal(none.status, 403);
    assert.deepEqual(Object.keys(none.json.error).sort(), ['code', 'message', 'status']);
    assert.equal(none.json.error.status, 'PERMISSION_DENIED');
  });

  test('malformed JSON and missing contents are 400 INVALID_ARGUMENT; unknown methods 404', async () => {
    for (const body of ['{', {}, { contents: [] }]) {
      const r = await postJson(`${base}/g:generateContent`, GEMINI_HEADERS, body);
      assert.equal(r.status, 400);
      assert.equal(r.json.error.code, 400);
      assert.equal(r.json.error.status, 'INVALID_ARGUMENT');
    }
    const unknown = await postJson(`${base}/g:doMagic`, GEMINI_HEADERS, hello);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.error.status, 'NOT_FOUND');
  });
});
