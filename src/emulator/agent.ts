/**
 * The emulator as an agent's counterpart, shared by the OpenAI chat and Anthropic dialects:
 * - when tools are offered and the last turn is the user's, it calls one: the tool named by the
 *   `tool=<name>` directive, else one whose name is a word of the prompt ("run the Bash tool"), else one
 *   a verb of the prompt points to ("run" -> Bash, "read" -> Read, "write" -> Write, ...), else a harmless
 *   default (see `defaultTool`), else none (a text answer);
 *   its arguments come from the tool's schema, `required` properties only (all with `toolArgs=all`), a
 *   `command` taking the prompt's first `backticked` text (or "echo demo"), a path the prompt's first /absolute/path;
 * - when the last turn is a tool result, it answers from it: "The tool returned: <first 200 chars>";
 * - with a JSON schema (response_format, output_config.format) the answer is JSON valid for it;
 * - with the `recall` directive, a last user turn holding `[recall NAME]` markers is answered from the context:
 *   `Recalled: NAME=VALUE` with the last `NAME=VALUE` anywhere in the request (system, messages, tool results),
 *   `NAME=?` when it is not there: an answer that is right only if the context that held it reached the model
 *   (the cost benchmark's success check for context compression).
 */
import { argsJsonFromSchema, valueFromSchema, type ValueHints } from './tool-args.ts';

export interface OfferedTool {
  name: string;
  schema: unknown;
}

const VERBS: [RegExp, string[]][] = [
  [/\b(run|execute|shell|command|bash|terminal|ls|echo)\b/i, ['bash', 'shell', 'run_command', 'exec_command', 'execute']],
  [/\b(read|open|show|cat|view|look at)\b/i, ['read', 'read_file', 'view', 'open_file']],
  [/\b(write|create|save)\b/i, ['write', 'write_file', 'create_file']],
  [/\b(edit|change|modify|replace)\b/i, ['edit', 'edit_file', 'apply_patch']],
  [/\b(search|find|grep)\b/i, ['grep', 'glob', 'search', 'find']],
  [/\b(fetch|download|url|http)\b/i, ['webfetch', 'fetch', 'web_fetch']],
];

const SHELL_TOOLS = ['bash', 'shell', 'exec_command', 'run_command', 'execute', 'run_shell_command', 'local_shell'];
const READ_TOOLS = ['read', 'read_file', 'view', 'open_file'];
/**
 * Tools never called by default: they spawn agents, change files, reach the network, ask the user or
 * change the agent's mode (Claude Code lists `Agent`/`Task` first, and a subagent run fails offline).
 */
const NOT_BY_DEFAULT =
  /^(agent|task|.*spawn.*|.*subagent.*|.*delegate.*|write.*|edit.*|multiedit|notebookedit|apply_patch|.*delete.*|.*remove.*|kill.*|.*fetch.*|.*search.*|web.*|ask.*|(enter|exit)planmode|update_plan|todo.*|skill|slashcommand|write_stdin|.*mcp.*)$/i;

/**
 * The tool called when the prompt names none and no verb points to one: a shell tool (it runs `echo demo`,
 * or the prompt's backticked command), else a read tool when the prompt holds an /absolute/path, else the
 * first tool not in NOT_BY_DEFAULT, else none, and the answer is text.
 */
export function defaultTool(tools: OfferedTool[], prompt: string): OfferedTool | undefined {
  const byLower = new Map(tools.map((t) => [t.name.toLowerCase(), t]));
  for (const n of SHELL_TOOLS) if (byLower.has(n)) return byLower.get(n);
  if (/(?:^|\s)\/[\w.\-/]+/.test(prompt)) for (const n of READ_TOOLS) if (byLower.has(n)) return byLower.get(n);
  return tools.find((t) => !NOT_BY_DEFAULT.test(t.name));
}

export function pickAgentTool(
  tools: OfferedTool[],
  prompt: string,
  forced: string | undefined,
  directive: string | undefined,
  allArgs = false,
): { name: string; argsJson: string } | undefined {
  if (tools.length === 0) return undefined;
  const byLower = new Map(tools.map((t) => [t.name.toLowerCase(), t]));
  let chosen: OfferedTool | undefined;
  if (forced !== undefined) chosen = tools.find((t) => t.name === forced);
  else {
    if (directive !== undefined) chosen = byLower.get(directive.toLowerCase());
    if (chosen === undefined) {
      const words = new Set(prompt.toLowerCase().match(/[a-z0-9_]+/g) ?? []);
      chosen = tools.find((t) => words.has(t.name.toLowerCase()));
    }
    for (const [verb, names] of VERBS) {
      if (chosen !== undefined) break;
      if (!verb.test(prompt)) continue;
      for (const n of names) {
        chosen = byLower.get(n);
        if (chosen !== undefined) break;
      }
    }
    chosen ??= defaultTool(tools, prompt);
  }
  if (chosen === undefined) return undefined;
  return { name: chosen.name, argsJson: argsJsonFromSchema(chosen.schema, { ...hintsFrom(prompt), requiredOnly: !allArgs }) };
}

/** String values an agent's tools can use, taken from the prompt. */
export function hintsFrom(prompt: string): ValueHints {
  const ticked = /`([^`\n]+)`/.exec(prompt)?.[1];
  const path = /(?:^|\s)(\/[\w.\-/]+)/.exec(prompt)?.[1] ?? (ticked?.startsWith('/') ? ticked : undefined);
  const command = ticked ?? 'echo demo';
  const file = path ?? '/tmp/tokengrid-demo.txt';
  return {
    strings: {
      command,
      cmd: command,
      script: command,
      file_path: file,
      path: file,
      filename: file,
      file,
      url: 'https://example.com/',
      pattern: 'demo',
      query: 'demo',
      content: 'demo',
      description: 'demo',
    },
  };
}

export const TOOL_RESULT_CHARS = 200;

export function toolResultAnswer(result: string): string {
  const text = result.length > TOOL_RESULT_CHARS ? `${result.slice(0, TOOL_RESULT_CHARS)}...` : result;
  return `The tool returned: ${text}`;
}

/** JSON for a schema (json_schema) or any object (json_object, schema undefined). */
export function jsonAnswer(schema: unknown): string {
  if (schema === undefined) return JSON.stringify({ answer: 'demo' });
  return JSON.stringify(valueFromSchema(schema));
}

/** Splits text into stream pieces (whitespace kept with the next piece, at most 8 non-space chars each). */
export function textPieces(text: string): string[] {
  return text.match(/\s*\S{1,8}|\s+$/g) ?? [];
}

const RECALL = /\[recall ([\w.-]{1,64})\]/g;

function lastValue(name: string, texts: readonly string[]): string | undefined {
  const re = new RegExp(`(?:^|[^\\w.-])${name.replace(/[.-]/g, '\\$&')}=([\\w.:/-]+)`, 'g');
  for (let i = texts.length - 1; i >= 0; i--) {
    let found: string | undefined;
    for (const m of texts[i]!.matchAll(re)) found = m[1];
    if (found !== undefined) return found;
  }
  return undefined;
}

/** The `recall` directive's answer to `question` over the request's texts in order; undefined without markers. */
export function recallAnswer(question: string, texts: readonly string[]): string | undefined {
  const names = [...question.matchAll(RECALL)].map((m) => m[1]!);
  if (names.length === 0) return undefined;
  return `Recalled: ${names.map((n) => `${n}=${lastValue(n, texts) ?? '?'}`).join('; ')}`;
}
