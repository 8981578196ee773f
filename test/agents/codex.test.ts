/**
 * Codex (`codex exec`, the @openai/codex release pinned in test/agents/package.json) run non-interactively
 * against the real server: a custom model provider in $CODEX_HOME/config.toml (base_url = the recording
 * proxy's /v1, env_key = the variable holding the demo key, wire_api = "responses"), a read-only sandbox,
 * a temp HOME. The emulator plays the model: asked to run a command, it calls Codex's exec_command tool;
 * Codex runs it and sends the output back as a function_call_output; the emulator answers. Every request
 * Codex makes (all of them POST /v1/responses, streaming) is charged exactly once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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

function configToml(model: string | undefined, baseUrl: string): string {
  return [
    ...(model === undefined ? [] : [`model = "${model}"`]),
    'model_provider = "tokengrid"',
    'approval_policy = "never"',
    'sandbox_mode = "read-only"',
    // Nothing beyond the server: no update check, no analytics, no feedback upload, no apps or plugins sync.
    'check_for_update_on_startup = false',
    '',
    '[analytics]',
    'enabled = false',
    '',
    '[feedback]',
    'enabled = false',
    '',
    '[features]',
    'apps = false',
    'plugins = false',
    '',
    '[model_providers.tokengrid]',
    'name = "TokenGrid"',
    `base_url = "${baseUrl}/v1"`,
    'env_key = "TOKENGRID_API_KEY"',
    'wire_api = "responses"',
    // A failed request is a test failure, not something to retry for minutes.
    'request_max_retries = 0',
    'stream_max_retries = 0',
    '',
  ].join('\n');
}

interface CodexRun {
  events: any[];
  exchanges: Exchange[];
  records: any[];
}

async function codex(
  model: string | undefined,
  prompt: (work: string) => string,
  account = { id: h.srv.demoAccountId, key: h.srv.demoKey },
): Promise<CodexRun> {
  const { r, events, mark, before } = await codexRaw(model, prompt, account.key, account.id);
  assert.equal(r.code, 0, describeRun(r));
  assert.ok(
    events.some((e) => e.type === 'turn.completed'),
    describeRun(r),
  );
  assert.ok(!events.some((e) => e.type === 'turn.failed' || e.type === 'error'), describeRun(r));
  const { completed, records } = await h.assertChargedOnce(mark, before, account.id);
  assert.deepEqual(trap.hits, [], 'Codex reached for no other host');
  return { events, exchanges: completed, records };
}

/** One `codex exec --json` run with `key`; returns the process result and its JSON events. */
async function codexRaw(model: string | undefined, prompt: (work: string) => string, key: string, accountId = h.srv.demoAccountId) {
  const box = sandbox(trap);
  const codexHome = join(box.home, '.codex');
  mkdirSync(codexHome);
  writeFileSync(join(codexHome, 'config.toml'), configToml(model, h.url));
  const mark = h.mark();
  const before = (await h.usageRecords(accountId)).length;
  try {
    const r = await run(BIN.codex, ['exec', '--skip-git-repo-check', '--ephemeral', '--json', '--color', 'never', '-C', box.work, prompt(box.work)], {
      cwd: box.work,
      timeoutMs: RUN_TIMEOUT_MS,
      env: { ...box.env, CODEX_HOME: codexHome, TOKENGRID_API_KEY: key },
    });
    const events: any[] = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l));
    return { r, events, mark, before };
  } finally {
    box.cleanup();
  }
}

for (const model of Object.keys(AGENT_MODELS)) {
  describe(`codex exec on ${model}`, () => {
    test('a turn that needs a tool: Codex runs the command the model asks for and sends its output back', async () => {
      const { events, exchanges, records } = await codex(model, () => 'Run `cat secret.txt` and tell me the secret word.');
      assert.ok(exchanges.length >= 2, `the tool call and the answer (${exchanges.length} requests)`);
      assert.ok(exchanges.every((e) => e.path === '/v1/responses'));
      const cmd = events.find((e) => e.type === 'item.completed' && e.item.type === 'command_execution');
      assert.ok(cmd, 'Codex ran a command');
      assert.equal(cmd.item.exit_code, 0, `the command succeeded: ${JSON.stringify(cmd.item)}`);
      assert.ok(cmd.item.aggregated_output.includes(SECRET), 'the command read the work directory');
      const withOutput = exchanges.find((e) => /"type":"function_call_output"/.test(e.reqBody));
      assert.ok(withOutput, 'a later request carries the function_call_output');
      assert.ok(withOutput.reqBody.includes(SECRET));
      const answer = events.findLast((e) => e.type === 'item.completed' && e.item.type === 'agent_message');
      assert.ok(answer?.item.text.length > 0, 'a final message');
      const upstream = h.srv.app.emulator!.lastRequest(AGENT_MODELS[model]!.upstreamPath);
      assert.ok(JSON.stringify(upstream?.body).includes(SECRET), 'the command output reached the upstream in its dialect');
      if (AGENT_MODELS[model]!.answersFromToolResult)
        assert.ok(answer.item.text.includes(SECRET), `the final message comes from the command output: ${answer.item.text}`);
      const usage = events.find((e) => e.type === 'turn.completed').usage;
      assert.equal(
        usage.input_tokens,
        records.reduce((s, r) => s + r.usage.tokensInput, 0),
        "the turn's input tokens are the sum charged",
      );
      assert.equal(
        usage.output_tokens,
        records.reduce((s, r) => s + r.usage.tokensOutput, 0),
        "the turn's output tokens are the sum charged",
      );
      // What Codex sends: streaming Responses requests with its tools, store false.
      const body = JSON.parse(exchanges[0]!.reqBody);
      assert.equal(body.stream, true);
      assert.equal(body.store, false);
      assert.ok(body.tools.some((t: any) => t.name === 'exec_command'));
    });
  });
}

describe('codex exec on an exhausted package', () => {
  test('Codex stops after one request (insufficient_quota is final for it); nothing charged', async () => {
    const empty = await h.account(0);
    const { r, events, mark } = await codexRaw('deepseek-v3.2', () => 'Say hello.', empty.key);
    assert.notEqual(r.code, 0);
    assert.ok(
      events.some((e) => e.type === 'turn.failed'),
      describeRun(r),
    );
    const ex = h.inference(mark);
    assert.equal(ex.length, 1, 'no retry');
    assert.equal(ex[0]!.status, 429);
    assert.equal(ex[0]!.resHeaders['x-should-retry'], 'false');
    assert.equal((await h.usageRecords(empty.id)).length, 0);
  });
});

describe('codex exec on a thinking model that reports prompt-cache reads', () => {
  test('reasoning items and cached tokens reach Codex, and the turn completes its tool round trip', async () => {
    const { events, exchanges, records } = await codex('claude-think', () => 'Run `cat secret.txt` and tell me the secret word.');
    assert.ok(exchanges.length >= 2);
    assert.match(exchanges[0]!.resBody, /"type":"reasoning"/, 'the first answer has a reasoning item');
    const answer = events.findLast((e) => e.type === 'item.completed' && e.item.type === 'agent_message');
    assert.ok(answer.item.text.includes(SECRET));
    const usage = events.find((e) => e.type === 'turn.completed').usage;
    assert.equal(
      usage.cached_input_tokens,
      records.reduce((s, r) => s + r.usage.tokensCachedInput, 0),
      'the cached tokens Codex shows are the ones charged',
    );
    assert.ok(usage.cached_input_tokens > 0);
    // Not asserted, reported: the reasoning item carries no encrypted_content (the Anthropic signature), so
    // when Codex replays it (store: false) the thinking block does not reach the Anthropic upstream again.
  });
});

describe('codex exec on a developer package that does not include GPT', () => {
  let lastDevRun: Exchange[] | undefined;
  // Codex's default model id (gpt-6.2-sol in 0.171.0) comes with its "code mode": the tools arrive in an
  // additional_tools item and the one top-level tool is a custom `exec` that runs JavaScript calling the
  // nested tools. The emulator answers it with placeholder input ("demo"), so the script fails; the round
  // trip (call, Codex runs it, the output goes back, the model answers) still happens and is what is checked.
  test("without a model in config.toml, Codex's default id is served by the package's coding model (modelMap) through a tool round trip", async () => {
    const dev = await h.subscriber(DEV_PACKAGE);
    const { events, exchanges, records } = await codex(undefined, () => 'Run `cat secret.txt` and tell me the secret word.', dev);
    const sent = JSON.parse(exchanges[0]!.reqBody).model;
    assert.match(sent, /^gpt-/, `Codex sent its own default id (${sent})`);
    assert.ok(exchanges.length >= 2, `the tool call and the answer (${exchanges.length} requests)`);
    assert.ok(
      records.every((r) => r.model === 'deepseek-v3.2'),
      "served and charged as the package's model",
    );
    lastDevRun = exchanges;
    assert.ok(
      exchanges.slice(1).some((e) => /"type":"(custom_tool_call_output|function_call_output)"/.test(e.reqBody)),
      'the tool output goes back',
    );
    assert.ok(
      events.some((e) => e.type === 'item.completed' && e.item.type === 'agent_message'),
      'a final message',
    );
  });

  // Issue 13 item 3: the model actually used is visible in the response, as /v1/chat/completions and
  // /v1/messages show it: not the id Codex sent (gpt-6.2-sol) but the package's model.
  test('the Responses API names the model actually used', () => {
    assert.ok(lastDevRun, 'the run above happened');
    assert.match(lastDevRun[0]!.resBody, /"model":"deepseek-v3.2"/);
  });
});
