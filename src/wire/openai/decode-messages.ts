import type { ChatMessage, ContentPart } from '../types.ts';
import { asArray, asObj, at, describeValue, fail, idx, isAbsent, optString, reqNonEmptyString, reqString, type Obj } from './decode-reader.ts';

/** OpenAI chat `messages` → canonical messages. `developer` (o1 and later) is a system prompt. */
export function decodeMessages(v: unknown, param: string): ChatMessage[] {
  if (isAbsent(v)) fail(param, `Missing required parameter: '${param}'.`);
  const arr = asArray(v, param);
  if (arr.length === 0) fail(param, `Invalid value for '${param}': expected a non-empty array.`);
  return arr.map((m, i) => decodeMessage(m, idx(param, i)));
}

function decodeMessage(v: unknown, path: string): ChatMessage {
  const m = asObj(v, path);
  const role = m['role'];
  let msg: ChatMessage;
  switch (role) {
    case 'system':
    case 'developer':
      msg = { role: 'system', content: decodeTextContent(m['content'], at(path, 'content'), false) };
      break;
    case 'user':
      msg = { role: 'user', content: decodeUserContent(m['content'], at(path, 'content')) };
      break;
    case 'assistant':
      msg = { role: 'assistant', content: decodeAssistant(m, path) };
      break;
    case 'tool':
      msg = { role: 'tool', content: [decodeToolResult(m, path)] };
      break;
    default:
      if (role === 'function') {
        fail(
          at(path, 'role'),
          `Invalid value for '${at(path, 'role')}': the deprecated 'function' role is not supported; use 'tool' messages with tool_call_id.`,
        );
      }
      if (isAbsent(role)) fail(at(path, 'role'), `Missing required parameter: '${at(path, 'role')}'.`);
      fail(
        at(path, 'role'),
        `Invalid value for '${at(path, 'role')}': expected one of 'system', 'developer', 'user', 'assistant', 'tool', got ${describeValue(role)}.`,
      );
  }
  const name = optString(m, 'name', path);
  if (name !== undefined) msg.name = name;
  return msg;
}

/** A string, or an array of text parts (assistant messages may also hold `refusal` parts). */
function decodeTextContent(v: unknown, param: string, allowNull: boolean): ContentPart[] {
  if (typeof v === 'string') return [{ type: 'text', text: v }];
  if (isAbsent(v)) {
    if (allowNull) return [];
    fail(param, `Missing required parameter: '${param}'.`);
  }
  const parts = asArray(v, param);
  return parts.map((p, i) => {
    const pp = idx(param, i);
    const part = asObj(p, pp);
    if (part['type'] === 'text') return { type: 'text', text: reqString(part, 'text', pp) };
    if (allowNull && part['type'] === 'refusal') return { type: 'text', text: reqString(part, 'refusal', pp) };
    return fail(at(pp, 'type'), `Invalid value for '${at(pp, 'type')}': expected 'text' here, got ${describeValue(part['type'])}.`);
  });
}

function decodeUserContent(v: unknown, param: string): ContentPart[] {
  if (typeof v === 'string') return [{ type: 'text', text: v }];
  if (isAbsent(v)) fail(param, `Missing required parameter: '${param}'.`);
  const parts = asArray(v, param);
  return parts.map((p, i) => decodeUserPart(p, idx(param, i)));
}

function decodeUserPart(v: unknown, path: string): ContentPart {
  const part = asObj(v, path);
  const type = part['type'];
  if (type === 'text') return { type: 'text', text: reqString(part, 'text', path) };
  if (type === 'image_url') return decodeImage(part, path);
  if (isAbsent(type)) fail(at(path, 'type'), `Missing required parameter: '${at(path, 'type')}'.`);
  return fail(
    at(path, 'type'),
    `Invalid value for '${at(path, 'type')}': content part type ${describeValue(type)} is not supported (use 'text' or 'image_url').`,
  );
}

function decodeImage(part: Obj, path: string): ContentPart {
  const raw = part['image_url'];
  const param = at(path, 'image_url');
  // Some clients (and vLLM's docs) send image_url as a bare string instead of {url}.
  const url = typeof raw === 'string' ? raw : reqNonEmptyString(asObj(raw, param), 'url', param);
  if (url === '') fail(param, `Invalid value for '${param}': must not be empty.`);
  const out: ContentPart = { type: 'image', url };
  const media = /^data:([^;,]+)[;,]/.exec(url);
  if (media?.[1] !== undefined) out.mediaType = media[1];
  return out;
}

function decodeAssistant(m: Obj, path: string): ContentPart[] {
  const content = decodeTextContent(m['content'], at(path, 'content'), true);
  const calls = m['tool_calls'];
  if (isAbsent(calls)) return content;
  const param = at(path, 'tool_calls');
  asArray(calls, param).forEach((c, i) => content.push(decodeToolCall(c, idx(param, i))));
  return content;
}

function decodeToolCall(v: unknown, path: string): ContentPart {
  const call = asObj(v, path);
  const type = call['type'];
  if (!isAbsent(type) && type !== 'function') {
    fail(at(path, 'type'), `Invalid value for '${at(path, 'type')}': expected 'function', got ${describeValue(type)}.`);
  }
  const id = reqNonEmptyString(call, 'id', path);
  const fnPath = at(path, 'function');
  const fn = asObj(call['function'], fnPath);
  const name = reqNonEmptyString(fn, 'name', fnPath);
  const args = fn['arguments'];
  // Arguments are JSON text; some clients send the parsed object, which we re-serialise once.
  const argumentsJson = isAbsent(args) ? '{}' : typeof args === 'string' ? args : JSON.stringify(args);
  return { type: 'tool_call', id, name, argumentsJson };
}

function decodeToolResult(m: Obj, path: string): ContentPart {
  const toolCallId = reqNonEmptyString(m, 'tool_call_id', path);
  const parts = decodeTextContent(m['content'], at(path, 'content'), false);
  let content = '';
  for (const p of parts) if (p.type === 'text') content += p.text;
  return { type: 'tool_result', toolCallId, content };
}
