import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChatRequest } from '../../wire/index.ts';
import { buildGenerateContentRequest, THOUGHT_SIGNATURE_BYPASS } from './build-request.ts';

const base = (over: Partial<ChatRequest>): ChatRequest => ({
  model: 'gemini-2.5-flash',
  messages: [],
  stream: false,
  includeUsage: true,
  extra: {},
  ...over,
});

describe('canonical request -> Gemini generateContent body', () => {
  test('system messages become systemInstruction and assistant turns become role model', () => {
    const body = buildGenerateContentRequest(
      base({
        messages: [
          { role: 'system', content: [{ type: 'text', text: 'Be brief.' }] },
          { role: 'user', content: [{ type: 'text', text: 'Hi' }] },
          { role: 'assistant', content: [{ type: 'text', text: 'Hello!' }] },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'Bye' },
              { type: 'text', text: '' },
            ],
          },
        ],
      }),
    );
    assert.deepEqual(body.systemInstruction, { parts: [{ text: 'Be brief.' }] });
    assert.deepEqual(body.contents, [
      { role: 'user', parts: [{ text: 'Hi' }] },
      { role: 'model', parts: [{ text: 'Hello!' }] },
      { role: 'user', parts: [{ text: 'Bye' }] },
    ]);
    assert.equal(body.generationConfig, undefined);
  });

  test('tool results are sent as functionResponse under the name of the call with the same id, in one turn', () => {
    const body = buildGenerateContentRequest(
      base({
        messages: [
          { role: 'user', content: [{ type: 'text', text: 'Weather in Paris and Oslo?' }] },
          {
            role: 'assistant',
            content: [
              { type: 'tool_call', id: 'call_a', name: 'get_weather', argumentsJson: '{"city":"Paris"}' },
              { type: 'tool_call', id: 'call_b', name: 'get_time', argumentsJson: '' },
            ],
          },
          { role: 'tool', content: [{ type: 'tool_result', toolCallId: 'call_a', content: 'sunny, 21C' }] },
          { role: 'tool', content: [{ type: 'tool_result', toolCallId: 'call_b', content: '{"time":"12:00"}' }] },
          { role: 'tool', content: [{ type: 'tool_result', toolCallId: 'call_zz', content: 'boom', isError: true }] },
        ],
      }),
    );
    assert.deepEqual(body.contents[1], {
      role: 'model',
      parts: [
        { functionCall: { name: 'get_weather', args: { city: 'Paris' } }, thoughtSignature: THOUGHT_SIGNATURE_BYPASS },
        { functionCall: { name: 'get_time', args: {} } },
      ],
    });
    assert.deepEqual(body.contents[2], {
      role: 'user',
      parts: [
        { functionResponse: { name: 'get_weather', response: { output: 'sunny, 21C' } } },
        { functionResponse: { name: 'get_time', response: { time: '12:00' } } },
        { text: 'Result of tool call call_zz:\nboom' },
      ],
    });
    assert.equal(body.contents.length, 3);
  });

  test('a failed tool result is reported under the error key', () => {
    const body = buildGenerateContentRequest(
      base({
        messages: [
          { role: 'assistant', content: [{ type: 'tool_call', id: 'c1', name: 'f', argumentsJson: '[1,2]' }] },
          { role: 'tool', content: [{ type: 'tool_result', toolCallId: 'c1', content: 'not found', isError: true }] },
        ],
      }),
    );
    assert.deepEqual(body.contents[0]?.parts[0]?.functionCall, { name: 'f', args: { value: [1, 2] } });
    assert.deepEqual(body.contents[1]?.parts[0], { functionResponse: { name: 'f', response: { error: 'not found' } } });
  });

  test('data URL images become inlineData and http URLs become fileData', () => {
    const body = buildGenerateContentRequest(
      base({
        messages: [
          {
            role: 'user',
            content: [
              { type: 'image', url: 'data:image/png;base64,iVBORw0KGgo=' },
              { type: 'image', url: 'https://example.com/cat.JPG?size=large' },
              { type: 'image', url: 'https://example.com/render', mediaType: 'image/webp' },
              { type: 'image', url: 'https://example.com/render' },
            ],
          },
        ],
      }),
    );
    assert.deepEqual(body.contents[0]?.parts, [
      { inlineData: { mimeType: 'image/png', data: 'iVBORw0KGgo=' } },
      { fileData: { mimeType: 'image/jpeg', fileUri: 'https://example.com/cat.JPG?size=large' } },
      { fileData: { mimeType: 'image/webp', fileUri: 'https://example.com/render' } },
      { fileData: { fileUri: 'https://example.com/render' } },
    ]);
  });

  test('sampling, stop, JSON schema output, tools and tool choice map to generationConfig, tools and toolConfig', () => {
    const schema = { type: 'object', properties: { a: { type: 'string' } }, additionalProperties: false };
    const body = buildGenerateContentRequest(
      base({
        messages: [{ role: 'user', content: [{ type: 'text', text: 'x' }] }],
        maxTokensOutput: 100,
        temperature: 0.2,
        topP: 0.9,
        topK: 40,
        stop: ['END'],
        seed: 7,
        responseFormat: { type: 'json_schema', name: 'out', schema },
        tools: [
          { name: 'f', description: 'does f', parameters: schema },
          { name: 'g', parameters: {} },
        ],
        toolChoice: { name: 'f' },
      }),
    );
    assert.deepEqual(body.generationConfig, {
      maxOutputTokens: 100,
      temperature: 0.2,
      topP: 0.9,
      topK: 40,
      stopSequences: ['END'],
      seed: 7,
      responseMimeType: 'application/json',
      responseJsonSchema: schema,
    });
    assert.deepEqual(body.tools, [{ functionDeclarations: [{ name: 'f', description: 'does f', parametersJsonSchema: schema }, { name: 'g' }] }]);
    assert.deepEqual(body.toolConfig, { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['f'] } });
  });

  test('tool choice auto, none and required map to AUTO, NONE and ANY', () => {
    const tools = [{ name: 'f', parameters: { type: 'object' } }];
    const mode = (toolChoice: ChatRequest['toolChoice']) => buildGenerateContentRequest(base({ tools, toolChoice })).toolConfig?.functionCallingConfig.mode;
    assert.equal(mode('auto'), 'AUTO');
    assert.equal(mode('none'), 'NONE');
    assert.equal(mode('required'), 'ANY');
    assert.equal(mode(undefined), undefined);
  });

  test('json_object output asks for application/json without a schema', () => {
    const body = buildGenerateContentRequest(base({ responseFormat: { type: 'json_object' } }));
    assert.deepEqual(body.generationConfig, { responseMimeType: 'application/json' });
  });
});
