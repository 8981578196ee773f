/**
 * Anthropic Messages fidelity over HTTP with the official @anthropic-ai/sdk: what Claude Code and the AI SDK
 * send (system messages inside messages, cache_control, thinking signatures, betas, server tools, documents,
 * output_config) reaches an Anthropic upstream as sent (asserted on what the emulator received), is refused
 * in Anthropic's own error shape where another vendor would have to serve it, and cache reads and writes are
 * charged at their own coin rates.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startTestServer, type TestServer } from '../support/server.ts';

let srv: TestServer;
let client: Anthropic;

before(async () => {
  srv = await startTestServer();
  client = new Anthropic({ baseURL: srv.url, apiKey: srv.demoKey, maxRetries: 0 });
});
after(() => srv.close());

const BETAS = 'claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,mid-conversation-system-2026-04-07';
const bashTool = {
  name: 'Bash',
  description: 'Run a shell command',
  input_schema: { type: 'object' as const, properties: { command: { type: 'string' }, timeout: { type: 'number' } }, required: ['command'] },
};
const readTool = {
  name: 'Read',
  description: 'Read a file',
  input_schema: { type: 'object' as const, properties: { file_path: { type: 'string' } }, required: ['file_path'] },
};

function upstream(path: string): { headers: Record<string, unknown>; body: any } {
  const last = srv.app.emulator!.lastRequest(path);
  assert.ok(last, `the emulator saw a request on ${path}`);
  return last;
}

async function account(tokens: number): Promise<{ id: string; key: string }> {
  const a = await srv.admin('POST', '/admin/accounts', { name: `fidelity-${Math.random()}` });
  await srv.admin('PUT', `/admin/accounts/${a.body.id}/policy`, { overage: 'block' });
  assert.equal((await srv.admin('POST', `/admin/accounts/${a.body.id}/grants`, { amount: tokens, kind: 'trial' })).status, 201);
  const k = await srv.admin('POST', '/admin/keys', { accountId: a.body.id });
  return { id: a.body.id, key: k.body.key };
}

async function used(id: string): Promise<number> {
  const b = await srv.admin('GET', `/admin/accounts/${id}/balance`);
  return b.body.buckets.reduce((s: number, x: any) => s + x.used, 0);
}

describe('Claude Code style requests', () => {
  test('a system message inside messages is accepted: kept in place for an Anthropic upstream under the beta, folded into system without it', async () => {
    const body: any = {
      model: 'claude-4.7',
      max_tokens: 300,
      system: [{ type: 'text', text: 'You are Claude Code.', cache_control: { type: 'ephemeral' } }],
      messages: [
        { role: 'user', content: 'hello' },
        { role: 'system', content: 'Reminder: be brief.' },
      ],
    };
    const withBeta = await client.messages.create(body, { headers: { 'anthropic-beta': BETAS } });
    assert.equal(withBeta.stop_reason, 'end_turn');
    const seen = upstream('/v1/messages');
    assert.equal(seen.headers['anthropic-beta'], BETAS, 'the client betas reach the upstream');
    assert.deepEqual(
      seen.body.messages.map((m: any) => m.role),
      ['user', 'system'],
    );
    assert.deepEqual(seen.body.system, body.system, 'system blocks keep cache_control');

    await client.messages.create(body);
    const folded = upstream('/v1/messages').body;
    assert.deepEqual(
      folded.messages.map((m: any) => m.role),
      ['user'],
    );
    assert.deepEqual(folded.system, [...body.system, { type: 'text', text: 'Reminder: be brief.' }]);

    const other = await client.messages.create({ ...body, model: 'deepseek-v3.2' });
    assert.equal(other.stop_reason, 'end_turn');
    const chat = upstream('/v1/chat/completions').body;
    assert.deepEqual(
      chat.messages.map((m: any) => m.role),
      ['system', 'user', 'system'],
      'another vendor gets a system message in place',
    );
  });

  test('the claude-* ids Claude Code sends work: dated ids and the [1m] suffix resolve, and the response names the model used', async () => {
    for (const model of ['claude-opus-4-8[1m]', 'claude-sonnet-4-5-20250929', 'claude-haiku-4-5']) {
      const msg = await client.messages.create({ model, max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(msg.model, 'claude-4.7', model);
      const stream = client.messages.stream({ model, max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
      assert.equal((await stream.finalMessage()).model, 'claude-4.7');
    }
    assert.equal(upstream('/v1/messages').body.model, 'claude-opus-4-7');
  });

  test('a Claude Code turn runs offline: streamed, 2 tools, adaptive thinking; the emulator calls Bash with the backticked command, then answers from the tool result', async () => {
    const base: any = {
      model: 'claude-opus-4-8',
      max_tokens: 32000,
      stream: true,
      thinking: { type: 'adaptive' },
      tools: [readTool, bashTool],
      context_management: { edits: [] },
      output_config: { effort: 'high' },
      metadata: { user_id: 'u1' },
    };
    const first = await client.messages
      .stream({ ...base, messages: [{ role: 'user', content: 'Please run `ls -la` for me' }] }, { headers: { 'anthropic-beta': BETAS } })
      .finalMessage();
    assert.equal(first.stop_reason, 'tool_use');
    const use = first.content.find((b) => b.type === 'tool_use');
    assert.ok(use && use.type === 'tool_use');
    assert.equal(use.name, 'Bash');
    assert.deepEqual(use.input, { command: 'ls -la' }, 'the required input only');
    const sent = upstream('/v1/messages').body;
    assert.deepEqual(sent.thinking, { type: 'adaptive' });
    assert.deepEqual(sent.context_management, { edits: [] });
    assert.deepEqual(sent.output_config, { effort: 'high' });
    assert.deepEqual(sent.metadata, { user_id: 'u1' });

    const second = await client.messages
      .stream({
        ...base,
        messages: [
          { role: 'user', content: 'Please run `ls -la` for me' },
          { role: 'assistant', content: first.content },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'total 0\nREADME.md', cache_control: { type: 'ephemeral' } }] },
        ],
      })
      .finalMessage();
    assert.equal(second.stop_reason, 'end_turn');
    assert.equal(second.content.map((b) => (b.type === 'text' ? b.text : '')).join(''), 'The tool returned: total 0\nREADME.md');
    const result = upstream('/v1/messages').body.messages[2].content[0];
    assert.deepEqual(result.cache_control, { type: 'ephemeral' }, 'cache_control on a tool_result reaches the upstream');
  });

  test("with Claude Code's 24 tools, the emulator calls the one the prompt points to, arguments from its schema", async () => {
    const names = [
      'Task',
      'Bash',
      'Glob',
      'Grep',
      'ExitPlanMode',
      'Read',
      'Edit',
      'Write',
      'NotebookEdit',
      'WebFetch',
      'TodoWrite',
      'WebSearch',
      'BashOutput',
      'KillShell',
      'Skill',
      'SlashCommand',
      'AskUserQuestion',
      'EnterPlanMode',
      'ListMcpResources',
      'ReadMcpResource',
      'LSP',
      'Monitor',
      'Agent',
      'ToolSearch',
    ];
    const tools = names.map((name) =>
      name === 'Read'
        ? readTool
        : name === 'Bash'
          ? bashTool
          : { name, input_schema: { type: 'object' as const, properties: { description: { type: 'string' } } } },
    );
    assert.equal(tools.length, 24);
    const body: any = {
      model: 'claude-opus-4-8',
      max_tokens: 32000,
      thinking: { type: 'adaptive' },
      tools,
      messages: [
        { role: 'user', content: 'Read /etc/hostname and summarise it' },
        { role: 'system', content: 'reminder' },
      ],
    };
    const msg = await client.messages.stream(body, { headers: { 'anthropic-beta': BETAS } }).finalMessage();
    const use = msg.content.find((b) => b.type === 'tool_use');
    assert.ok(use?.type === 'tool_use');
    assert.equal(use.name, 'Read');
    assert.deepEqual(use.input, { file_path: '/etc/hostname' });
  });

  test('thinking signatures and redacted thinking come back to the client and survive a multi-turn tool round trip, streamed and not', async () => {
    const body: any = {
      model: 'claude-think',
      max_tokens: 2000,
      thinking: { type: 'enabled', budget_tokens: 1024 },
      tools: [bashTool],
      messages: [{ role: 'user', content: 'run it' }],
    };
    const plain = await client.messages.create(body);
    const streamed = await client.messages.stream(body).finalMessage();
    for (const msg of [plain, streamed]) {
      const thinking = msg.content[0];
      assert.ok(thinking?.type === 'thinking', JSON.stringify(msg.content));
      assert.match(thinking.signature, /^emu-sig-/);
      assert.ok(thinking.thinking.startsWith('Thinking'));
      assert.equal(msg.content[1]?.type, 'tool_use');
    }
    assert.deepEqual(streamed.content[0], plain.content[0], 'the same signed block streamed and not');
    const use = plain.content[1] as Anthropic.ToolUseBlock;
    const history: any[] = [
      { role: 'user', content: 'run it' },
      { role: 'assistant', content: [{ type: 'redacted_thinking', data: 'opaque-data' }, ...plain.content] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'done' }] },
    ];
    const next = await client.messages.create({ ...body, messages: history });
    assert.equal(next.stop_reason, 'end_turn');
    const sent = upstream('/v1/messages').body;
    assert.deepEqual(sent.messages[1].content, history[1].content, 'thinking blocks with signatures reach the upstream as sent');
  });
});

describe('what only Anthropic serves', () => {
  const doc = { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'The sky is blue.' }, cache_control: { type: 'ephemeral' } };
  const webSearch = { type: 'web_search_20250305', name: 'web_search', max_uses: 2 };

  test('server tools, document blocks and output_config reach an Anthropic upstream as sent', async () => {
    const body: any = {
      model: 'claude-4.7',
      max_tokens: 200,
      tools: [webSearch, { ...bashTool, cache_control: { type: 'ephemeral' } }],
      tool_choice: { type: 'none' },
      messages: [{ role: 'user', content: [doc, { type: 'text', text: 'What colour is the sky?' }] }],
      output_config: { effort: 'low' },
    };
    const msg = await client.messages.create(body, { headers: { 'anthropic-beta': 'context-management-2025-06-27' } });
    assert.equal(msg.stop_reason, 'end_turn');
    const sent = upstream('/v1/messages');
    assert.deepEqual(sent.body.tools, body.tools);
    assert.deepEqual(sent.body.messages[0].content[0], doc);
    assert.deepEqual(sent.body.output_config, { effort: 'low' });
    assert.equal(sent.headers['anthropic-beta'], 'context-management-2025-06-27');
  });

  test("for a model another vendor serves, a server tool or a document block is refused with a 400 in Anthropic's shape, before any upstream call", async () => {
    const before = srv.app.emulator!.stats().requests;
    for (const body of [
      { model: 'deepseek-v3.2', max_tokens: 50, tools: [webSearch], messages: [{ role: 'user', content: 'search' }] },
      { model: 'gemini-3-pro', max_tokens: 50, messages: [{ role: 'user', content: [doc, { type: 'text', text: 'sum up' }] }] },
    ]) {
      const res = await fetch(`${srv.url}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': srv.demoKey, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 400);
      const json: any = await res.json();
      assert.equal(json.type, 'error');
      assert.equal(json.error.type, 'invalid_request_error');
      assert.match(json.error.message, /^(tools\.0|messages\.0\.content\.0): .* only supported when the model is served by Anthropic/);
    }
    await assert.rejects(
      client.messages.create({ model: 'deepseek-v3.2', max_tokens: 50, tools: [webSearch as any], messages: [{ role: 'user', content: 'x' }] }),
      (e: any) => e instanceof Anthropic.BadRequestError && (e.error as any)?.error?.type === 'invalid_request_error',
    );
    assert.equal(srv.app.emulator!.stats().requests, before, 'no upstream call');
  });

  test('structured output: output_config.format json_schema gives JSON valid for the schema, from Anthropic and other upstreams', async () => {
    const schema = {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'tags', 'address', 'kind'],
      properties: {
        name: { type: 'string' },
        age: { type: 'integer', minimum: 50 },
        tags: { type: 'array', items: { type: 'string' }, minItems: 2 },
        address: { type: 'object', required: ['city'], properties: { city: { type: 'string' }, zip: { type: 'string' } } },
        kind: { type: 'string', enum: ['person', 'robot'] },
      },
    };
    for (const model of ['claude-4.7', 'deepseek-v3.2']) {
      const msg = await client.messages.create({
        model,
        max_tokens: 300,
        messages: [{ role: 'user', content: 'Describe someone' }],
        output_config: { format: { type: 'json_schema', schema } },
      } as any);
      const text = msg.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
      const value = JSON.parse(text);
      assert.equal(typeof value.name, 'string');
      assert.ok(Number.isInteger(value.age) && value.age >= 50);
      assert.ok(Array.isArray(value.tags) && value.tags.length >= 2);
      assert.equal(typeof value.address.city, 'string');
      assert.equal(value.kind, 'person');
    }
    assert.equal(upstream('/v1/chat/completions').body.response_format.type, 'json_schema', 'another vendor gets response_format');
  });
});

describe('prompt caching is charged at its own rates', () => {
  test('cache reads and writes an Anthropic upstream reports are charged at the cachedInput and cacheWrite coin rates', async () => {
    const a = await account(1_000_000);
    const c = new Anthropic({ baseURL: srv.url, apiKey: a.key, maxRetries: 0 });
    const system = [{ type: 'text' as const, text: 'A long stable prefix '.repeat(40), cache_control: { type: 'ephemeral' as const } }];
    const msg = await c.messages.create({ model: 'claude-think', max_tokens: 100, system, messages: [{ role: 'user', content: 'hi' }] });
    const u = msg.usage;
    assert.equal(u.cache_read_input_tokens, 40);
    assert.equal(u.cache_creation_input_tokens, 30);
    assert.ok(u.input_tokens > 0);
    // claude-think: input 10, cachedInput 1, cacheWrite 25/2, output (and thinking) 40 coins per token.
    assert.equal(await used(a.id), u.input_tokens * 10 + 40 * 1 + (30 * 25) / 2 + u.output_tokens * 40);
    const before = await used(a.id);
    const stream = await c.messages
      .stream({ model: 'claude-think', max_tokens: 100, system, messages: [{ role: 'user', content: 'hi again' }] })
      .finalMessage();
    assert.equal(stream.usage.cache_read_input_tokens, 40);
    assert.equal(stream.usage.cache_creation_input_tokens, 30);
    assert.equal((await used(a.id)) - before, stream.usage.input_tokens * 10 + 40 + 375 + stream.usage.output_tokens * 40);
  });
});
