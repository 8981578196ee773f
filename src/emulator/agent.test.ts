import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hintsFrom, jsonAnswer, pickAgentTool, recallAnswer, textPieces, toolResultAnswer } from './agent.ts';
import { valueFromSchema } from './tool-args.ts';

const schema = (props: Record<string, unknown>): unknown => ({ type: 'object', properties: props });
const claudeCodeTools = ['Task', 'Bash', 'Glob', 'Grep', 'Read', 'Edit', 'Write', 'WebFetch'].map((name) => ({
  name,
  schema:
    name === 'Bash'
      ? { ...(schema({ command: { type: 'string' }, timeout: { type: 'number' }, run_in_background: { type: 'boolean' } }) as object), required: ['command'] }
      : name === 'Read'
        ? { ...(schema({ file_path: { type: 'string' } }) as object), required: ['file_path'] }
        : schema({ content: { type: 'string' } }),
}));
// Codex's function tools (0.171): exec_command first, with optional workdir and shell.
const codexTools = [
  {
    name: 'exec_command',
    schema: {
      type: 'object',
      properties: { cmd: { type: 'string' }, workdir: { type: 'string' }, shell: { type: 'string' }, yield_time_ms: { type: 'number' } },
      required: ['cmd'],
    },
  },
  { name: 'write_stdin', schema: { type: 'object', properties: { session_id: { type: 'number' }, chars: { type: 'string' } }, required: ['session_id'] } },
  { name: 'update_plan', schema: { type: 'object', properties: { plan: { type: 'array', items: { type: 'string' } } }, required: ['plan'] } },
];

describe('the emulator picks a tool like an agent expects', () => {
  test('a forced tool wins, then the tool directive, then a tool named in the prompt, then a verb of the prompt, then a harmless default', () => {
    assert.equal(pickAgentTool(claudeCodeTools, 'run it', 'Write', 'Read')?.name, 'Write');
    assert.equal(pickAgentTool(claudeCodeTools, 'run it', undefined, 'read')?.name, 'Read');
    assert.equal(pickAgentTool(claudeCodeTools, 'use Grep on this', undefined, undefined)?.name, 'Grep');
    assert.equal(pickAgentTool(claudeCodeTools, 'please run the tests', undefined, undefined)?.name, 'Bash');
    assert.equal(pickAgentTool(claudeCodeTools, 'Read /etc/hosts', undefined, undefined)?.name, 'Read');
    assert.equal(pickAgentTool(claudeCodeTools, 'write a poem to a file', undefined, undefined)?.name, 'Write');
    // Nothing matches: not Task/Agent (Claude Code's first tool, a subagent), but the shell running `echo demo`.
    assert.equal(pickAgentTool(claudeCodeTools, 'hello there', undefined, undefined)?.name, 'Bash');
    assert.equal(pickAgentTool([], 'run', undefined, undefined), undefined);
  });

  test('arguments come from the prompt: a backticked command, an absolute path; "echo demo" otherwise', () => {
    assert.deepEqual(JSON.parse(pickAgentTool(claudeCodeTools, 'run `git status -s` now', undefined, undefined)!.argsJson), { command: 'git status -s' });
    assert.deepEqual(JSON.parse(pickAgentTool(claudeCodeTools, 'run something', undefined, undefined)!.argsJson), { command: 'echo demo' });
    assert.deepEqual(
      JSON.parse(pickAgentTool(claudeCodeTools, 'run something', undefined, undefined, true)!.argsJson),
      { command: 'echo demo', timeout: 42, run_in_background: true },
      'toolArgs=all',
    );
    assert.deepEqual(JSON.parse(pickAgentTool(claudeCodeTools, 'read /tmp/notes.md please', undefined, undefined)!.argsJson), { file_path: '/tmp/notes.md' });
    assert.equal(hintsFrom('no path').strings?.['file_path'], '/tmp/tokengrid-demo.txt');
  });

  test('with no tool named or pointed to: a shell tool, else Read of a path in the prompt, else a tool that changes nothing, else text', () => {
    assert.deepEqual(
      pickAgentTool(codexTools, 'hello', undefined, undefined),
      { name: 'exec_command', argsJson: '{"cmd":"echo demo"}' },
      'no workdir, no shell',
    );
    const noShell = claudeCodeTools.filter((t) => t.name !== 'Bash');
    assert.deepEqual(pickAgentTool(noShell, 'what is in /work/a.txt?', undefined, undefined), { name: 'Read', argsJson: '{"file_path":"/work/a.txt"}' });
    assert.equal(
      pickAgentTool(noShell, 'hello', undefined, undefined)?.name,
      'Glob',
      'Task first, then Glob: the first that spawns, writes, fetches or asks nothing',
    );
    const risky = ['Agent', 'Task', 'Write', 'Edit', 'WebFetch', 'WebSearch', 'AskUserQuestion', 'TodoWrite', 'ExitPlanMode', 'apply_patch', 'spawn_agent'].map(
      (name) => ({ name, schema: schema({}) }),
    );
    assert.equal(pickAgentTool(risky, 'hello', undefined, undefined), undefined, 'only risky tools: a text answer');
    assert.equal(pickAgentTool(risky, 'write it down', undefined, undefined)?.name, 'Write', 'a verb still picks its tool');
    assert.equal(
      pickAgentTool([{ name: 'get_weather', schema: schema({}) }], 'Weather in Paris?', undefined, undefined)?.name,
      'get_weather',
      'a lone harmless tool is called',
    );
  });

  test('a tool result is answered with its first 200 characters', () => {
    assert.equal(toolResultAnswer('ok'), 'The tool returned: ok');
    assert.equal(toolResultAnswer('x'.repeat(300)), `The tool returned: ${'x'.repeat(200)}...`);
  });

  test('text pieces rebuild the text exactly', () => {
    for (const text of ['The tool returned: a  b\nc ', '{"a":"bcdefghijklmnop","n":[1,2]}', '', '   ']) assert.equal(textPieces(text).join(''), text);
  });
});

describe('values from JSON schemas', () => {
  test('nested objects, arrays with minItems, enums, const, bounds, formats, $ref and allOf', () => {
    const s = {
      type: 'object',
      required: ['a', 'list', 'ref', 'merged'],
      $defs: { Point: { type: 'object', properties: { x: { type: 'integer', minimum: 100 }, y: { type: 'number', maximum: 1 } } } },
      properties: {
        a: { type: 'object', properties: { b: { type: 'object', properties: { c: { type: 'boolean' } } } } },
        list: { type: 'array', minItems: 2, items: { type: 'string', enum: ['x', 'y'] } },
        ref: { $ref: '#/$defs/Point' },
        merged: { allOf: [{ type: 'object', properties: { p: { const: 7 } } }, { properties: { q: { type: 'string', format: 'date-time' } } }] },
        maybe: { type: ['null', 'string'], minLength: 8 },
        mail: { type: 'string', format: 'email' },
      },
    };
    assert.deepEqual(valueFromSchema(s), {
      a: { b: { c: true } },
      list: ['x', 'x'],
      ref: { x: 100, y: 1 },
      merged: { p: 7, q: '2026-01-01T00:00:00Z' },
      maybe: 'demoooooo'.slice(0, 8),
      mail: 'demo@example.com',
    });
  });

  test('json answers: a schema gives its value, no schema an object', () => {
    assert.deepEqual(JSON.parse(jsonAnswer({ type: 'object', properties: { n: { type: 'integer' } } })), { n: 42 });
    assert.deepEqual(JSON.parse(jsonAnswer(undefined)), { answer: 'demo' });
  });
});

describe('recall directive answer', () => {
  test('answers each [recall NAME] with the last NAME=VALUE in the context, ? when it is not there', () => {
    const texts = [
      'system: region=cn-north-1',
      'tool: build_id=1111 ok',
      'tool: build_id=48213 passed; x.build_id=9',
      'what? [recall build_id] [recall region] [recall missing_key]',
    ];
    assert.equal(recallAnswer(texts[3]!, texts), 'Recalled: build_id=48213; region=cn-north-1; missing_key=?');
    assert.equal(recallAnswer('no markers here', texts), undefined);
  });
});
