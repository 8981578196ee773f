import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { StreamEvent } from '../types.ts';
import { zeroUsage } from '../types.ts';
import { decodeResponsesRequest, encodeResponsesResponse, MAX_INPUT_ITEMS, ResponsesStreamEncoder, type ResponsesRequest } from './index.ts';

function decodeOk(body: unknown, refs?: Map<string, Record<string, unknown>>): ResponsesRequest {
  const r = decodeResponsesRequest(body, refs);
  if (!r.ok) assert.fail(`expected ok, got ${r.message}`);
  return r.value;
}

function decodeErrParam(body: unknown): unknown {
  const r = decodeResponsesRequest(body);
  if (r.ok) assert.fail('expected invalid_request');
  return r.details?.['param'];
}

describe('decodeResponsesRequest', () => {
  test('a string input is one user message; instructions lead as a system message; store defaults to true', () => {
    const r = decodeOk({ model: 'm', input: 'hi', instructions: 'sys' });
    assert.deepEqual(r.chat.messages, [
      { role: 'system', content: [{ type: 'text', text: 'sys' }] },
      { role: 'user', content: [{ type: 'text', text: 'hi' }] },
    ]);
    assert.equal(r.store, true);
    assert.deepEqual(r.inputItems, [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'hi' }] }]);
  });

  test('items become chat messages: developer → system, function_calls join the assistant message, outputs become tool messages, reasoning is dropped', () => {
    const r = decodeOk({
      model: 'm',
      input: [
        { type: 'message', role: 'developer', content: [{ type: 'input_text', text: 'dev' }] },
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'q' },
            { type: 'input_image', image_url: 'data:image/png;base64,AAAA', detail: 'auto' },
          ],
        },
        { type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: 'x' },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'let me look', annotations: [] }] },
        { type: 'function_call', call_id: 'c1', name: 'a', arguments: '{"x":1}' },
        { type: 'function_call', call_id: 'c2', name: 'b', arguments: '{}' },
        { type: 'function_call_output', call_id: 'c1', output: 'one' },
        { type: 'function_call_output', call_id: 'c2', output: [{ type: 'input_text', text: 'two' }] },
      ],
    });
    assert.deepEqual(r.chat.messages, [
      { role: 'system', content: [{ type: 'text', text: 'dev' }] },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'q' },
          { type: 'image', url: 'data:image/png;base64,AAAA', mediaType: 'image/png' },
        ],
      },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'let me look' },
          { type: 'tool_call', id: 'c1', name: 'a', argumentsJson: '{"x":1}' },
          { type: 'tool_call', id: 'c2', name: 'b', argumentsJson: '{}' },
        ],
      },
      { role: 'tool', content: [{ type: 'tool_result', toolCallId: 'c1', content: 'one' }] },
      { role: 'tool', content: [{ type: 'tool_result', toolCallId: 'c2', content: 'two' }] },
    ]);
  });

  test('options map onto the chat request: max_output_tokens, sampling, text.format, reasoning.effort (as an extra), tools and tool_choice', () => {
    const r = decodeOk({
      model: 'm',
      input: 'x',
      max_output_tokens: 100,
      temperature: 0.5,
      top_p: 0.9,
      parallel_tool_calls: false,
      text: { format: { type: 'json_schema', name: 'w', schema: { type: 'object' }, strict: true } },
      reasoning: { effort: 'high' },
      tools: [
        { type: 'function', name: 'f', parameters: { type: 'object', properties: {} }, strict: true },
        { type: 'custom', name: 'apply_patch', description: 'patch' },
      ],
      tool_choice: { type: 'function', name: 'f' },
      unknown_field: 1,
    });
    assert.equal(r.chat.maxTokensOutput, 100);
    assert.equal(r.chat.temperature, 0.5);
    assert.equal(r.chat.topP, 0.9);
    assert.equal(r.chat.parallelToolCalls, false);
    assert.deepEqual(r.chat.responseFormat, { type: 'json_schema', name: 'w', schema: { type: 'object' }, strict: true });
    assert.deepEqual(r.chat.extra, { reasoning_effort: 'high' });
    assert.deepEqual(r.chat.toolChoice, { name: 'f' });
    assert.deepEqual(
      r.chat.tools?.map((t) => t.name),
      ['f', 'apply_patch'],
    );
    assert.deepEqual(r.chat.tools?.[1]?.parameters['required'], ['input']);
    assert.ok(r.customTools.has('apply_patch'));
  });

  test('tool_choice allowed_tools offers only the named tools, with its mode', () => {
    const r = decodeOk({
      model: 'm',
      input: 'x',
      tools: [
        { type: 'function', name: 'a' },
        { type: 'function', name: 'b' },
        { type: 'custom', name: 'c' },
      ],
      tool_choice: {
        type: 'allowed_tools',
        mode: 'required',
        tools: [
          { type: 'function', name: 'b' },
          { type: 'custom', name: 'c' },
        ],
      },
    });
    assert.deepEqual(
      r.chat.tools?.map((t) => t.name),
      ['b', 'c'],
    );
    assert.equal(r.chat.toolChoice, 'required');
  });

  test('hosted tools are left out and listed; a namespace is flattened', () => {
    const r = decodeOk({
      model: 'm',
      input: 'x',
      tools: [
        { type: 'web_search' },
        { type: 'tool_search' },
        { type: 'namespace', name: 'mcp', description: 'd', tools: [{ type: 'function', name: 'g', parameters: null }] },
      ],
    });
    assert.deepEqual(r.ignoredTools, ['web_search', 'tool_search']);
    assert.deepEqual(
      r.chat.tools?.map((t) => t.name),
      ['g'],
    );
    assert.equal(r.namespaces.get('g'), 'mcp');
  });

  test('tools in an additional_tools item join the request; hosted-tool and compaction items from an OpenAI session are left out', () => {
    const r = decodeOk({
      model: 'm',
      tools: [{ type: 'tool_search', execution: 'client' }],
      input: [
        { role: 'user', content: 'q' },
        { type: 'tool_search_call', call_id: 'ts1', execution: 'client', arguments: { query: 'x' } },
        { type: 'web_search_call', id: 'ws_1', status: 'completed', action: { type: 'search', query: 'x' } },
        { type: 'compaction', encrypted_content: 'opaque' },
        { type: 'additional_tools', role: 'developer', tools: [{ type: 'function', name: 'late', parameters: { type: 'object', properties: {} } }] },
      ],
    });
    assert.deepEqual(r.chat.messages, [{ role: 'user', content: [{ type: 'text', text: 'q' }] }]);
    assert.deepEqual(
      r.chat.tools?.map((t) => t.name),
      ['late'],
    );
    assert.deepEqual(r.ignoredTools, ['tool_search']);
  });

  test('an item_reference is replaced by the referenced item; an unknown one is refused at input[i].id', () => {
    const refs = new Map([
      ['msg_1', { id: 'msg_1', type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'earlier' }] }],
    ]);
    const r = decodeOk(
      {
        model: 'm',
        input: [
          { type: 'item_reference', id: 'msg_1' },
          { role: 'user', content: 'next' },
        ],
      },
      refs,
    );
    assert.deepEqual(r.chat.messages[0], { role: 'assistant', content: [{ type: 'text', text: 'earlier' }] });
    assert.equal(r.inputItems[0]!['id'], 'msg_1');
    assert.equal(decodeErrParam({ model: 'm', input: [{ type: 'item_reference', id: 'msg_2' }] }), 'input[0].id');
  });

  test("a custom tool's grammar is told to the model in the description of its input parameter", () => {
    const r = decodeOk({
      model: 'm',
      input: 'x',
      tools: [{ type: 'custom', name: 'apply_patch', format: { type: 'grammar', syntax: 'lark', definition: 'start: begin_patch' } }],
    });
    const input = (r.chat.tools![0]!.parameters['properties'] as any).input;
    assert.match(input.description, /lark[\s\S]*start: begin_patch/);
  });

  test('any JSON body decodes or is refused with invalid_request, never throws', () => {
    const item = fc.record(
      {
        type: fc.constantFrom(
          'message',
          'function_call',
          'function_call_output',
          'custom_tool_call',
          'custom_tool_call_output',
          'reasoning',
          'item_reference',
          'additional_tools',
          'web_search_call',
          'x',
        ),
        role: fc.constantFrom('user', 'assistant', 'system', 'developer', 'tool'),
        content: fc.anything(),
        call_id: fc.anything(),
        name: fc.anything(),
        arguments: fc.anything(),
        output: fc.anything(),
        input: fc.anything(),
        id: fc.anything(),
        tools: fc.anything(),
        summary: fc.anything(),
      },
      { requiredKeys: [] },
    );
    const body = fc.record(
      {
        model: fc.string(),
        input: fc.oneof(fc.anything(), fc.array(item)),
        tools: fc.anything(),
        text: fc.anything(),
        tool_choice: fc.anything(),
        previous_response_id: fc.anything(),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(fc.anything(), body), (body) => {
        const r = decodeResponsesRequest(body);
        assert.ok(r.ok || r.code === 'invalid_request');
      }),
      { numRuns: 1000 },
    );
  });

  test('bad fields are refused with their param', () => {
    assert.equal(decodeErrParam({ model: 'm', input: [{ type: 'function_call', name: 'f' }] }), 'input[0].call_id');
    assert.equal(decodeErrParam({ model: 'm', input: [{ type: 'computer_call' }] }), 'input[0].type');
    assert.equal(decodeErrParam({ model: 'm', input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'f' }] }] }), 'input[0].content[0].type');
    assert.equal(decodeErrParam({ model: 'm', input: [{ role: 'user', content: [{ type: 'input_image', file_id: 'f' }] }] }), 'input[0].content[0].image_url');
    assert.equal(decodeErrParam({ model: 'm', input: 'x', text: { format: { type: 'json_schema', name: 'n' } } }), 'text.format.schema');
    assert.equal(decodeErrParam({ model: 'm', input: 'x', tool_choice: { type: 'custom', name: 'nope' } }), 'tool_choice.name');
    assert.equal(
      decodeErrParam({ model: 'm', input: 'x', tools: [{ type: 'function', name: 'f' }], tool_choice: { type: 'function', name: 'g' } }),
      'tool_choice.name',
    );
    assert.equal(decodeErrParam({ model: 'm', input: 'x', conversation: 'conv_1' }), 'conversation');
    assert.equal(decodeErrParam({ model: 'm', input: 'x', background: true }), 'background');
    assert.equal(decodeErrParam({ model: 'm', input: [] }), 'input');
    assert.equal(decodeErrParam([]), null);
  });

  test('only previous_response_id and no input is accepted (the history is the conversation)', () => {
    const r = decodeOk({ model: 'm', previous_response_id: 'resp_1' });
    assert.equal(r.previousResponseId, 'resp_1');
    assert.deepEqual(r.chat.messages, []);
  });
});

const env = (body: unknown) => ({ id: 'resp_abc', createdAtS: 1000, model: 'm', req: decodeOk(body) });

function parseFrames(text: string): Record<string, any>[] {
  return text
    .split('\n\n')
    .filter((f) => f !== '')
    .map((f) => {
      const [eventLine, dataLine] = f.split('\n');
      const data = JSON.parse(dataLine!.slice(6));
      assert.equal(eventLine, `event: ${data.type}`);
      return data;
    });
}

describe('ResponsesStreamEncoder', () => {
  test('reasoning, text and two tool calls become items in order, each opened and closed, with usage on response.completed', () => {
    const enc = new ResponsesStreamEncoder(env({ model: 'm', input: 'x', tools: [{ type: 'function', name: 'f' }] }), () => 2000);
    const events: StreamEvent[] = [
      { type: 'start', id: 'u', model: 'm', createdS: 1 },
      { type: 'reasoning', text: 'think' },
      { type: 'text', text: 'Hel' },
      { type: 'text', text: 'lo' },
      { type: 'tool_call_start', index: 0, id: 'c0', name: 'f' },
      { type: 'tool_call_start', index: 1, id: 'c1', name: 'f' },
      { type: 'tool_call_delta', index: 0, argumentsDelta: '{"a":' },
      { type: 'tool_call_delta', index: 1, argumentsDelta: '{}' },
      { type: 'tool_call_delta', index: 0, argumentsDelta: '1}' },
      { type: 'finish', finishReason: 'tool_calls' },
      { type: 'usage', usage: { ...zeroUsage(), tokensInput: 10, tokensOutput: 7, tokensReasoning: 1, tokensCachedInput: 2 } },
    ];
    const frames = parseFrames(events.map((e) => enc.encode(e)).join('') + enc.finish());
    assert.deepEqual(
      frames.map((f) => f.sequence_number),
      frames.map((_, i) => i),
    );
    const last = frames.at(-1)!;
    assert.equal(last.type, 'response.completed');
    assert.deepEqual(last.response.usage, {
      input_tokens: 10,
      input_tokens_details: { cached_tokens: 2 },
      output_tokens: 7,
      output_tokens_details: { reasoning_tokens: 1 },
      total_tokens: 17,
    });
    const out = last.response.output;
    assert.deepEqual(
      out.map((o: any) => o.type),
      ['reasoning', 'message', 'function_call', 'function_call'],
    );
    assert.equal(out[1].content[0].text, 'Hello');
    assert.equal(out[2].arguments, '{"a":1}');
    assert.equal(out[3].arguments, '{}');
    const added = frames.filter((f) => f.type === 'response.output_item.added').map((f) => f.output_index);
    const done = frames.filter((f) => f.type === 'response.output_item.done').map((f) => f.output_index);
    assert.deepEqual(added, [0, 1, 2, 3]);
    assert.deepEqual(done.sort(), [0, 1, 2, 3]);
    assert.equal(
      frames.findIndex((f) => f.type === 'response.output_item.done' && f.output_index === 1) <
        frames.findIndex((f) => f.type === 'response.output_item.added' && f.output_index === 2),
      true,
      'the message closes before the first call opens',
    );
    assert.equal(enc.finish(), '', 'idempotent');
  });

  test('finish "length" ends with response.incomplete and incomplete items; fail() ends with response.failed', () => {
    const a = new ResponsesStreamEncoder(env({ model: 'm', input: 'x' }), () => 0);
    const ta = a.encode({ type: 'text', text: 'abc' }) + a.encode({ type: 'finish', finishReason: 'length' }) + a.finish();
    const fa = parseFrames(ta).at(-1)!;
    assert.equal(fa.type, 'response.incomplete');
    assert.deepEqual(fa.response.incomplete_details, { reason: 'max_output_tokens' });
    assert.equal(fa.response.output[0].status, 'incomplete');

    const b = new ResponsesStreamEncoder(env({ model: 'm', input: 'x' }), () => 0);
    const tb = b.encode({ type: 'text', text: 'abc' }) + b.fail('upstream_error', 'boom');
    const fb = parseFrames(tb).at(-1)!;
    assert.equal(fb.type, 'response.failed');
    assert.equal(fb.response.status, 'failed');
    assert.match(fb.response.error.message, /boom/);
    assert.equal(b.finalResponse?.['status'], 'failed');
  });

  test('a call to a tool from a namespace (Codex sends multi_agent_v1 this way) carries its namespace back', () => {
    const e = env({
      model: 'm',
      input: 'x',
      tools: [{ type: 'namespace', name: 'multi_agent_v1', description: 'd', tools: [{ type: 'function', name: 'spawn_agent', parameters: null }] }],
    });
    const enc = new ResponsesStreamEncoder(e, () => 0);
    const text =
      enc.encode({ type: 'tool_call_start', index: 0, id: 'c', name: 'spawn_agent' }) +
      enc.encode({ type: 'tool_call_delta', index: 0, argumentsDelta: '{}' }) +
      enc.finish();
    const item = parseFrames(text).at(-1)!.response.output[0];
    assert.deepEqual([item.type, item.name, item.namespace], ['function_call', 'spawn_agent', 'multi_agent_v1']);
    const whole = encodeResponsesResponse(
      e,
      {
        id: 'x',
        model: 'm',
        createdS: 0,
        content: [{ type: 'tool_call', id: 'c', name: 'spawn_agent', argumentsJson: '{}' }],
        finishReason: 'tool_calls',
        usage: zeroUsage(),
      },
      0,
    );
    assert.equal((whole['output'] as any)[0].namespace, 'multi_agent_v1');
  });

  test('a custom tool call comes out as custom_tool_call with the input string, sent whole at the end', () => {
    const enc = new ResponsesStreamEncoder(env({ model: 'm', input: 'x', tools: [{ type: 'custom', name: 'apply_patch' }] }), () => 0);
    const text =
      enc.encode({ type: 'tool_call_start', index: 0, id: 'c', name: 'apply_patch' }) +
      enc.encode({ type: 'tool_call_delta', index: 0, argumentsDelta: '{"input":"*** Be' }) +
      enc.encode({ type: 'tool_call_delta', index: 0, argumentsDelta: 'gin Patch"}' }) +
      enc.encode({ type: 'finish', finishReason: 'tool_calls' }) +
      enc.finish();
    const frames = parseFrames(text);
    assert.ok(!frames.some((f) => f.type === 'response.function_call_arguments.delta'));
    assert.equal(frames.find((f) => f.type === 'response.custom_tool_call_input.done')!.input, '*** Begin Patch');
    assert.equal(frames.at(-1)!.response.output[0].type, 'custom_tool_call');
  });

  test('streamed and whole answers give the same output items and the same usage (any split of the text)', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 12 }), fc.boolean(), (pieces, cut) => {
        const e = env({ model: 'm', input: 'x' });
        const usage = { ...zeroUsage(), tokensInput: 3, tokensOutput: pieces.length };
        const enc = new ResponsesStreamEncoder(e, () => 1000);
        for (const p of pieces) enc.encode({ type: 'text', text: p });
        enc.encode({ type: 'finish', finishReason: cut ? 'length' : 'stop' });
        enc.encode({ type: 'usage', usage });
        enc.finish();
        const whole = encodeResponsesResponse(
          e,
          { id: 'x', model: 'm', createdS: 0, content: [{ type: 'text', text: pieces.join('') }], finishReason: cut ? 'length' : 'stop', usage },
          1000,
        );
        assert.deepEqual(enc.finalResponse, whole);
      }),
    );
  });
});

describe('Responses decoding: hostile sizes', () => {
  test('more input items than the limit is a 400 on input, not a stack overflow', () => {
    const item = { role: 'user', content: 'x' };
    const r = decodeResponsesRequest({ model: 'm', input: Array.from({ length: 200_000 }, () => item) });
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.details?.['param'], 'input');
  });

  test('the largest allowed input decodes (no spread of a huge array into one call)', () => {
    const input = Array.from({ length: MAX_INPUT_ITEMS }, (_, i) => ({ role: i % 2 === 0 ? 'user' : 'assistant', content: 'x' }));
    const r = decodeResponsesRequest({ model: 'm', input });
    assert.equal(r.ok, true);
  });
});
