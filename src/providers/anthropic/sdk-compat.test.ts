/**
 * Our Anthropic bytes (wire/anthropic encoders) parsed by the official @anthropic-ai/sdk client.
 * Lives here rather than in wire/ because it needs a real HTTP server.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import { AnthropicStreamEncoder, anthropicErrorBody, anthropicStreamErrorFrame, encodeMessagesResponse } from '../../wire/anthropic/index.ts';
import type { StreamEvent } from '../../wire/index.ts';

let server: Server;
let client: Anthropic;
let respond: (res: ServerResponse, body: Record<string, unknown>) => void = (res) => res.end();

before(async () => {
  server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      raw += c;
    });
    req.on('end', () => {
      assert.equal(req.url, '/v1/messages');
      respond(res, JSON.parse(raw) as Record<string, unknown>);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  client = new Anthropic({ apiKey: 'tg-test', baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, maxRetries: 0 });
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const usage = { tokensInput: 40, tokensOutput: 17, tokensCachedInput: 8, tokensCacheWrite: 2, tokensReasoning: 0 };

const events: StreamEvent[] = [
  { type: 'start', id: 'up-id', model: 'up-model', createdS: 1 },
  { type: 'reasoning', text: 'The user wants ' },
  { type: 'reasoning', text: 'weather.' },
  { type: 'text', text: 'Let me ' },
  { type: 'text', text: 'check "Paris".' },
  { type: 'tool_call_start', index: 0, id: 'toolu_a', name: 'get_weather' },
  { type: 'tool_call_delta', index: 0, argumentsDelta: '{"city": "Par' },
  { type: 'tool_call_delta', index: 0, argumentsDelta: 'is", "days": [1, 2]}' },
  { type: 'tool_call_start', index: 1, id: 'toolu_b', name: 'get_time' },
  { type: 'finish', finishReason: 'tool_calls' },
  { type: 'usage', usage },
];

function serveStream(frames: (enc: AnthropicStreamEncoder) => string[]): void {
  respond = (res, body) => {
    assert.equal(body['stream'], true);
    const enc = new AnthropicStreamEncoder({ id: 'msg_tg1', model: String(body['model']), inputTokensEstimate: 99 });
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    for (const f of frames(enc)) res.write(f);
    res.end();
  };
}

const params = { model: 'claude-tg', max_tokens: 100, messages: [{ role: 'user' as const, content: 'weather in Paris?' }] };

describe('the official Anthropic SDK reads our bytes', () => {
  test('a streamed answer with thinking, text and tool calls accumulates into the right final message', async () => {
    serveStream((enc) => [...events.map((e) => enc.encode(e)), enc.finish()]);
    const stream = client.messages.stream(params);
    let text = '';
    stream.on('text', (t) => {
      text += t;
    });
    const msg = await stream.finalMessage();
    assert.equal(text, 'Let me check "Paris".');
    assert.equal(msg.id, 'msg_tg1');
    assert.equal(msg.model, 'claude-tg');
    assert.equal(msg.stop_reason, 'tool_use');
    assert.deepEqual(
      msg.content.map((b) => b.type),
      ['thinking', 'text', 'tool_use', 'tool_use'],
    );
    const [thinking, , toolA, toolB] = msg.content;
    assert.equal(thinking?.type === 'thinking' ? thinking.thinking : undefined, 'The user wants weather.');
    assert.deepEqual(toolA?.type === 'tool_use' ? [toolA.id, toolA.name, toolA.input] : undefined, ['toolu_a', 'get_weather', { city: 'Paris', days: [1, 2] }]);
    assert.deepEqual(toolB?.type === 'tool_use' ? toolB.input : undefined, {});
    assert.equal(msg.usage.input_tokens, 30);
    assert.equal(msg.usage.output_tokens, 17);
    assert.equal(msg.usage.cache_read_input_tokens, 8);
    assert.equal(msg.usage.cache_creation_input_tokens, 2);
  });

  test('raw stream events iterate in Anthropic order', async () => {
    serveStream((enc) => [enc.encode({ type: 'text', text: 'hi' }), enc.finish(usage)]);
    const stream = await client.messages.create({ ...params, stream: true });
    const types: string[] = [];
    for await (const ev of stream) types.push(ev.type);
    assert.deepEqual(types, ['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
  });

  test('an error frame after the first byte surfaces as an APIError with our error type', async () => {
    serveStream((enc) => [enc.encode({ type: 'text', text: 'partial' }), anthropicStreamErrorFrame('no_healthy_deployment', 'all upstreams down')]);
    await assert.rejects(client.messages.stream(params).finalMessage(), (e: unknown) => {
      assert.ok(e instanceof Anthropic.APIError);
      assert.match(e.message, /all upstreams down/);
      assert.match(e.message, /overloaded_error/);
      return true;
    });
  });

  test('a non-streamed answer parses as a Message', async () => {
    respond = (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify(
          encodeMessagesResponse(
            {
              id: 'msg_x',
              model: 'up',
              createdS: 1,
              finishReason: 'stop',
              usage,
              content: [{ type: 'text', text: 'Hello' }],
            },
            'claude-tg',
          ),
        ),
      );
    };
    const msg = await client.messages.create(params);
    assert.equal(msg.content[0]?.type === 'text' ? msg.content[0].text : undefined, 'Hello');
    assert.equal(msg.stop_reason, 'end_turn');
    assert.equal(msg.usage.input_tokens, 30);
  });

  test('an error body becomes the SDK error class of its status', async () => {
    respond = (res) => {
      res.writeHead(429, { 'content-type': 'application/json' });
      res.end(JSON.stringify(anthropicErrorBody('insufficient_quota', 'package used up')));
    };
    await assert.rejects(client.messages.create(params), (e: unknown) => {
      assert.ok(e instanceof Anthropic.RateLimitError);
      assert.match(e.message, /package used up/);
      return true;
    });
  });
});
