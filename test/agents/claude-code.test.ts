/**
 * Claude Code (`claude -p`, the @anthropic-ai/claude-code release pinned in test/agents/package.json) run
 * non-interactively against the real server: ANTHROPIC_BASE_URL at the recording proxy, the demo key in
 * ANTHROPIC_API_KEY, non-essential traffic off, a temp HOME. The emulator plays the model: asked to run a
 * command, it calls the Bash tool; Claude Code runs it in a temp work directory and sends the output back;
 * the emulator answers from it. Every request Claude Code makes is charged exactly once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, type Exchange, type Harness } from '../clients/support/harness.ts';
import { AGENT_MODELS, AGENT_OFFERS_YAML, BIN, DEV_PACKAGE, describeRun, ensureAgents, run, sandbox, SECRET, startTrap, type Trap } from './support.ts';

const RUN_TIMEOUT_MS = 120_000;

let h: Harness;
let trap: Trap;
before(
  async () => {
    await ensureAgents();
    h = await startHarness({ offersYaml: AGENT_OFFERS_YAML });
    trap = await startTrap();
  },
  { timeout: 15 * 60_000 },
);
after(async () => {
  await trap?.close();
  await h?.close();
});

interface ClaudeRun {
  result: any;
  exchanges: Exchange[];
  records: any[];
}

/** Runs one `claude -p` turn and checks it was charged once per request and stayed on the loopback. */
async function claude(
  prompt: string | ((work: string) => string),
  extra: string[],
  account = { id: h.srv.demoAccountId, key: h.srv.demoKey },
): Promise<ClaudeRun> {
  const { r, result, mark, before } = await claudeRaw(prompt, extra, account.key, account.id);
  assert.equal(r.code, 0, describeRun(r));
  assert.equal(result.is_error, false, describeRun(r));
  const { completed, records } = await h.assertChargedOnce(mark, before, account.id);
  assert.deepEqual(trap.hits, [], 'Claude Code reached for no other host');
  return { result, exchanges: completed, records };
}

/** One `claude -p` run with `key`; returns the process result and its parsed JSON result line. */
async function claudeRaw(prompt: string | ((work: string) => string), extra: string[], key: string, accountId = h.srv.demoAccountId) {
  const box = sandbox(trap);
  const mark = h.mark();
  const before = (await h.usageRecords(accountId)).length;
  try {
    const r = await run(BIN.claude, ['-p', typeof prompt === 'string' ? prompt : prompt(box.work), '--output-format', 'json', ...extra], {
      cwd: box.work,
      timeoutMs: RUN_TIMEOUT_MS,
      env: {
        ...box.env,
        ANTHROPIC_BASE_URL: h.url,
        ANTHROPIC_API_KEY: key,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
        DISABLE_TELEMETRY: '1',
        DISABLE_AUTOUPDATER: '1',
        DISABLE_ERROR_REPORTING: '1',
      },
    });
    let result: any;
    try {
      result = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    } catch {
      assert.fail(describeRun(r));
    }
    return { r, result, mark, before };
  } finally {
    box.cleanup();
  }
}

function toolUses(e: Exchange): string[] {
  return [...e.resBody.matchAll(/"content_block":\{"type":"tool_use","id":"[^"]*","name":"([^"]+)"/g)].map((m) => m[1]!);
}

for (const model of Object.keys(AGENT_MODELS)) {
  describe(`claude -p on ${model}`, () => {
    test('a turn that needs a tool: Claude Code runs the Bash tool the model asks for and sends the output back', async () => {
      // A relative path and Claude Code's own background-task setting: the emulator sends only Bash's required
      // `command` (no run_in_background), so the command runs in the work directory, in the foreground.
      const { result, exchanges, records } = await claude('Run `cat secret.txt` and tell me the secret word.', [
        '--model',
        model,
        '--tools',
        'Bash',
        '--allowedTools',
        'Bash',
      ]);
      assert.ok(exchanges.length >= 2, `at least the tool call and the answer (${exchanges.length} requests)`);
      assert.ok(exchanges.every((e) => e.path.startsWith('/v1/messages')));
      assert.deepEqual(toolUses(exchanges[0]!), ['Bash'], 'the first answer is a Bash tool call');
      const withResult = exchanges.find((e) => /"type":"tool_result"/.test(e.reqBody));
      assert.ok(withResult, 'a later request carries the tool result');
      assert.ok(withResult.reqBody.includes(SECRET), 'the tool result is the command output (the secret from the work directory)');
      const upstream = h.srv.app.emulator!.lastRequest(AGENT_MODELS[model]!.upstreamPath);
      assert.ok(JSON.stringify(upstream?.body).includes(SECRET), 'the tool result reached the upstream in its dialect');
      if (AGENT_MODELS[model]!.answersFromToolResult)
        assert.ok(result.result.includes(SECRET), `the final answer comes from the tool result: ${result.result}`);
      assert.ok(result.num_turns >= 2);
      assert.equal(result.stop_reason, 'end_turn');
      assert.ok(records.every((r) => r.model === model));
      // What Claude Code sends, kept honest: its betas reach the server, system blocks carry cache_control.
      const body = JSON.parse(exchanges[0]!.reqBody);
      assert.match(String(exchanges[0]!.reqHeaders['anthropic-beta']), /claude-code-20250219/);
      assert.equal(body.stream, true);
      assert.ok(
        body.system.some((b: any) => b.cache_control),
        'system blocks with cache_control are accepted',
      );
    });
  });
}

describe('claude -p with its defaults', () => {
  test('the full default tool set (about 80 KB, a system message inside messages) on an Anthropic upstream', async () => {
    const { exchanges } = await claude('Say hello.', ['--model', 'claude-4.7']);
    const body = JSON.parse(exchanges[0]!.reqBody);
    assert.ok(body.tools.length > 10);
    assert.equal(body.tools[0].name, 'Agent', 'Claude Code lists its subagent tool first');
    // The prompt names no tool: the emulator runs the harmless shell tool (echo demo), not the first tool.
    assert.deepEqual(toolUses(exchanges[0]!), ['Bash']);
    assert.ok(
      body.messages.some((m: any) => m.role === 'system'),
      'Claude Code sent its mid-conversation system message',
    );
  });

  test('the full default tool set on an OpenAI-compatible upstream (the system message folded into the prompt)', async () => {
    const { exchanges } = await claude('Say hello.', ['--model', 'deepseek-v3.2']);
    assert.ok(JSON.parse(exchanges[0]!.reqBody).tools.length > 10);
  });

  test('no --model: Claude Code sends its own default model id, which the catalog resolves', async () => {
    const { exchanges, records } = await claude('Say hello.', ['--tools', '']);
    const sent = JSON.parse(exchanges[0]!.reqBody).model;
    assert.match(sent, /^claude-opus-/, "Claude Code's own default id");
    assert.ok(
      records.every((r) => r.model === 'claude-4.7'),
      `${sent} resolved through the catalog alias and charged as claude-4.7`,
    );
  });
});

describe('claude -p on an exhausted package', () => {
  test("Claude Code stops after one request (x-should-retry: false) and shows the server's plain message; nothing charged", async () => {
    const empty = await h.account(0);
    const { r, result, mark } = await claudeRaw('Say hello.', ['--model', 'deepseek-v3.2', '--tools', ''], empty.key);
    assert.notEqual(r.code, 0);
    assert.equal(result.is_error, true);
    assert.equal(result.api_error_status, 429);
    assert.match(result.result, /package|balance|top-up/i, "the server's message reaches the user");
    const ex = h.inference(mark);
    assert.equal(ex.length, 1, 'no retry');
    assert.equal(ex[0]!.resHeaders['x-should-retry'], 'false');
    assert.equal((await h.usageRecords(empty.id)).length, 0);
  });
});

describe('claude -p on a thinking model that reports prompt-cache reads and writes', () => {
  test('the signed thinking block goes back with the tool result, and cache reads and writes are charged at their rates', async () => {
    const { result, exchanges, records } = await claude('Run `cat secret.txt` and tell me the secret word.', [
      '--model',
      'claude-think',
      '--tools',
      'Bash',
      '--allowedTools',
      'Bash',
    ]);
    assert.ok(result.result.includes(SECRET));
    assert.match(exchanges[0]!.resBody, /"signature_delta"/, 'the first answer carries a signed thinking block');
    const second = JSON.parse(exchanges.find((e) => /"type":"tool_result"/.test(e.reqBody))!.reqBody);
    const assistant = second.messages.findLast((m: any) => m.role === 'assistant');
    const thinking = assistant.content.find((b: any) => b.type === 'thinking');
    assert.ok(thinking, 'Claude Code sends the thinking block back');
    assert.match(thinking.signature, /^emu-sig-/, 'with its signature');
    assert.ok(result.usage.cache_read_input_tokens > 0, 'Claude Code shows the cache reads');
    for (const r of records) {
      const u = r.usage;
      assert.ok(u.tokensCachedInput > 0 && u.tokensCacheWrite > 0);
      const uncached = u.tokensInput - u.tokensCachedInput - u.tokensCacheWrite;
      assert.equal(
        r.costCoins,
        Math.ceil(uncached * 10 + u.tokensCachedInput + (u.tokensCacheWrite * 25) / 2 + u.tokensOutput * 40),
        "rated at claude-think's input, cache-read, cache-write and output rates",
      );
    }
  });
});

describe('claude -p on a developer package that does not include Claude', () => {
  test("without --model, Claude Code's default id is served by the package's coding model (modelMap), tool round trip included", async () => {
    const dev = await h.subscriber(DEV_PACKAGE);
    const { result, exchanges, records } = await claude(
      'Run `cat secret.txt` and tell me the secret word.',
      ['--tools', 'Bash', '--allowedTools', 'Bash'],
      dev,
    );
    assert.match(JSON.parse(exchanges[0]!.reqBody).model, /^claude-/, 'Claude Code sent its own default id');
    const shape = exchanges
      .map((e) => {
        const b = JSON.parse(e.reqBody);
        return `${b.model}/${b.tools?.length ?? 0} tools/${b.messages.length} msgs`;
      })
      .join(', ');
    assert.ok(exchanges.length >= 2, `the tool call and the answer: ${shape}`);
    assert.ok(
      records.every((r) => r.model === 'deepseek-v3.2'),
      "served and charged as the package's model",
    );
    assert.match(exchanges[0]!.resBody, /"model":"deepseek-v3.2"/, 'the response names the model actually used');
    assert.ok(result.result.includes(SECRET), `${result.result} (${shape})`);
  });
});
